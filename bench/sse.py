"""SSE fan-out: one change to N concurrent /events subscribers, and the daemon's memory.

A client swarm in a separate process (asyncio + aiohttp) opens N streams to the real
daemon on 127.0.0.1 and reads each past its first event (the current snapshot). Then
one `statusd set` closes the main site; every subscriber notes the wall time it read
the new event. Delays are measured from the snapshot's `generated_at` (the moment
the daemon published it) and from `statusd set` returning.

    python bench/sse.py --subscribers 5000
    python bench/sse.py swarm --url URL --count N --out FILE   (the swarm; run by the above)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
from common import RunningDaemon, Summary, machine, write_config

P99_TARGET_MS = 500.0
RSS_TARGET_MB = 300.0
CONNECT_TIMEOUT = 120.0  # for the whole swarm to be connected and to have read its first event
DELIVERY_TIMEOUT = 30.0
CONNECTING_AT_ONCE = 256  # handshakes in flight, so the listen backlog never overflows
CHANNELS = {"console": {"type": "console", "language": "en"}}


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- the swarm (its own process) -------------------------------------------------------------------

async def _subscriber(session: aiohttp.ClientSession, url: str, gate: asyncio.Semaphore,
                      ready: list[int], arrivals: list[tuple[float, str]]) -> None:
    """One stream: read past the first event, then note when the next one starts to arrive.

    Reads raw chunks and looks for the frame marker, parsing no JSON on the hot path: the
    swarm shares the machine with the daemon and must add as little delay as it can.
    """
    async with gate:
        response = await session.get(url, headers={"Accept": "text/event-stream"})
    try:
        buffer = b""
        while buffer.count(b"event: status") < 1:
            buffer += await response.content.readany()
        ready[0] += 1
        buffer = buffer[buffer.index(b"event: status") + 1:]
        while b"event: status" not in buffer:
            chunk = await response.content.readany()
            if not chunk:
                return
            buffer += chunk
        received = time.time()
        while not buffer.rstrip(b"\n").endswith(b"}") or not buffer.endswith(b"\n\n"):
            buffer += await response.content.readany()
        arrivals.append((received, _generated(buffer[buffer.index(b"event: status"):])))
    finally:
        response.release()


def _generated(frame: bytes) -> str:
    """The snapshot's generated_at, from the frame's data line."""
    start = frame.index(b'"generated_at":"') + len(b'"generated_at":"')
    return frame[start:frame.index(b'"', start)].decode()


async def _swarm(url: str, count: int, out: Path) -> None:
    ready, arrivals = [0], []  # type: ignore[var-annotated]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None, connect=CONNECT_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(_subscriber(session, url, gate, ready, arrivals))
                 for _ in range(count)]
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while ready[0] < count and time.monotonic() < deadline:
            failed = [t for t in tasks if t.done() and t.exception()]
            if failed:
                raise RuntimeError(f"{len(failed)} subscribers failed: {failed[0].exception()!r}")
            await asyncio.sleep(0.05)
        _write(out / "ready.json", {"ready": ready[0]})
        done = time.monotonic() + CONNECT_TIMEOUT + DELIVERY_TIMEOUT
        while len(arrivals) < ready[0] and time.monotonic() < done and not stop.is_set():
            await asyncio.sleep(0.05)
        _write(out / "arrivals.json", {"ready": ready[0], "arrivals": arrivals})
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _write(path: Path, data: object) -> None:
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(data), encoding="utf-8")
    partial.rename(path)  # the parent never reads half a file


# -- the measurement -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    """Delivery delays of one change to `subscribers` streams, in ms, and the daemon's memory."""

    subscribers: int
    received: int
    from_publish: Summary
    from_set: Summary
    p99_publish: float
    p99_set: float
    rss_mb: float
    peak_rss_mb: float
    connect_s: float


def _rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _wait_file(path: Path, proc: subprocess.Popen[bytes], timeout: float, err: Path) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            data: dict = json.loads(path.read_text(encoding="utf-8"))  # type: ignore[type-arg]
            return data
        if proc.poll() is not None:
            raise RuntimeError(f"the swarm exited with {proc.returncode}:\n{err.read_text()[-3000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"no {path.name} from the swarm within {timeout:g} s")


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def measure(subscribers: int = 5000) -> Result:
    """Start the daemon and the swarm, make one change, and collect every subscriber's delay."""
    raise_fd_limit()  # the daemon inherits it: it holds one socket per subscriber
    with tempfile.TemporaryDirectory(prefix="statusd-bench-sse-") as tmp:
        work = Path(tmp)
        config = write_config(work, CHANNELS, status="main:\n  level: open\n")
        with RunningDaemon(config, work / "state") as daemon:
            assert daemon.proc is not None
            pid = daemon.proc.pid
            err = work / "swarm.err"
            started = time.monotonic()
            with err.open("wb") as errors:
                swarm = subprocess.Popen(
                    [sys.executable, __file__, "swarm", "--url", f"{daemon.url}/events",
                     "--count", str(subscribers), "--out", str(work)],
                    stdout=subprocess.DEVNULL, stderr=errors, cwd=work)
            try:
                ready = _wait_file(work / "ready.json", swarm, CONNECT_TIMEOUT + 10, err)["ready"]
                connect_s = time.monotonic() - started
                if ready < subscribers:
                    raise RuntimeError(f"only {ready} of {subscribers} subscribers connected")
                daemon.cli("set", "main", "closed", "-m", "en:Closed after a water leak.")
                returned = time.time()
                rss, _ = _rss(pid)
                data = _wait_file(work / "arrivals.json", swarm, DELIVERY_TIMEOUT + 10, err)
                _, peak = _rss(pid)
            finally:
                if swarm.poll() is None:
                    swarm.terminate()
                    try:
                        swarm.wait(10)
                    except subprocess.TimeoutExpired:
                        swarm.kill()
    arrivals = data["arrivals"]
    if not arrivals:
        raise RuntimeError("no subscriber received the change")
    publish = [(at - datetime.fromisoformat(gen).timestamp()) * 1000 for at, gen in arrivals]
    after_set = [(at - returned) * 1000 for at, _ in arrivals]
    return Result(subscribers, len(arrivals), Summary.of(publish), Summary.of(after_set),
                  _p99(publish), _p99(after_set), rss, peak, connect_s)


def rows(result: Result) -> list[tuple[str, str, str]]:
    """(figure, value, target) lines for the report."""
    n = result.subscribers
    p, s = result.from_publish, result.from_set
    return [
        (f"SSE {n} subscribers: received the change", f"{result.received}/{n}", f"all {n}"),
        ("SSE delay from publish min / p50 / p99 / max",
         f"{p.min:.0f} / {p.median:.0f} / {result.p99_publish:.0f} / {p.max:.0f} ms",
         f"p99 < {P99_TARGET_MS:.0f} ms"),
        ("SSE delay from `set` returning min / p50 / p99 / max",
         f"{s.min:.0f} / {s.median:.0f} / {result.p99_set:.0f} / {s.max:.0f} ms", "(with the file watch)"),
        (f"daemon RSS with {n} streams (peak)", f"{result.rss_mb:.0f} MB ({result.peak_rss_mb:.0f} MB)",
         f"< {RSS_TARGET_MB:.0f} MB"),
        (f"time to connect {n} subscribers", f"{result.connect_s:.1f} s", ""),
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["swarm"]:
        parser = argparse.ArgumentParser(prog="bench/sse.py swarm")
        parser.add_argument("--url", required=True)
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--out", type=Path, required=True)
        args = parser.parse_args(argv[1:])
        raise_fd_limit()
        asyncio.run(_swarm(args.url, args.count, args.out))
        return 0
    parser = argparse.ArgumentParser(prog="bench/sse.py", description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    args = parser.parse_args(argv)
    result = measure(args.subscribers)
    print(f"statusd SSE fan-out; {machine()}; fd limit {raise_fd_limit()}")
    for name, value, target in rows(result):
        print(f"{name:<48} {value:>26}  {target}")
    ok = result.p99_publish < P99_TARGET_MS and result.peak_rss_mb < RSS_TARGET_MB
    return 0 if ok and result.received == result.subscribers else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
