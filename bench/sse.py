"""SSE fan-out: one change to N concurrent /events subscribers, and the daemon's memory.

A light client swarm, in `--procs` processes of its own, opens N raw TCP streams to
the real daemon on 127.0.0.1 (bare non-blocking sockets read by `loop.add_reader`
callbacks, lighter than asyncio transports: one GET each, and nothing parsed on the hot
path but a search for the frame marker) and waits until each has read its first
event, the current snapshot. Then one `statusd set` closes the main site, and every
stream notes the wall time at which the bytes of the next `event: status` reached it.

Delays are measured from three clocks: the event's id (the daemon's millisecond clock
when `Hub.publish` ran), the snapshot's `generated_at` (a little earlier: when the
daemon took the picture), and `statusd set` returning (includes the file watch).
The swarm also records the kernel's receive timestamp of those bytes (SO_TIMESTAMPNS):
publish → kernel is the daemon's own share, publish → read adds the swarm's scheduling
on the same 2 cores. Figures: min / p50 / p99 / max over all streams (nearest rank), and
the daemon's VmRSS (and VmHWM). The target (p99 < 500 ms) applies to publish → read.

    python bench/sse.py --subscribers 5000 [--procs 2] [--runs 3] [--pin]
    python bench/sse.py swarm --port P --count N --out DIR --name NAME   (run by the above)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from common import RunningDaemon, machine, write_config

from tests.support.swarm import SO_TIMESTAMPNS, kernel_time

P99_TARGET_MS = 500.0
RSS_TARGET_MB = 300.0
HOST = "127.0.0.1"
CONNECT_TIMEOUT = 120.0  # for the whole swarm to be connected and to have read its first event
DELIVERY_TIMEOUT = 30.0
SETTLE = 1.0  # after the last connection, so that the change meets an idle daemon
CONNECTING_AT_ONCE = 256  # handshakes in flight, so the listen backlog never overflows
STOP_TIMEOUT = 10.0
KEEP = 1 << 20  # bytes of the changed event a stream keeps, to read its id and generated_at
MARK = b"\nevent: status\n"
RECV_SIZE = 1 << 18
ANCILLARY_SIZE = socket.CMSG_SPACE(16)
CHANNELS = {"console": {"type": "console", "language": "en"}}


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- the swarm (its own processes) -----------------------------------------------------------------

class Swarm:
    """Counts of one swarm process's streams, and the moment they have all heard the change."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.request = b"GET /events HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n" % (
            HOST.encode(), port)
        self.ready = 0
        self.settled = 0  # streams that got the change or were closed
        self.all_settled = asyncio.Event()

    def settle(self) -> None:
        self.settled += 1
        if self.settled >= self.ready:
            self.all_settled.set()


class Stream:
    """One /events stream on a bare non-blocking socket: ready at its first `event: status`,
    timed at its second.

    Lighter than an asyncio transport and protocol: the event loop calls `readable`, which
    makes one `recvmsg` and searches the new bytes for the frame marker, nothing else. The
    kernel's receive timestamp comes with the bytes (SO_TIMESTAMPNS), so the figures can
    also say when the change reached this machine, however busy the swarm itself was.
    """

    __slots__ = ("at", "buffer", "kernel", "lost", "ready", "received", "scan", "sock", "swarm")

    def __init__(self, swarm: Swarm, sock: socket.socket) -> None:
        self.swarm = swarm
        self.sock = sock
        self.buffer = b""
        self.scan = 0  # where to look for the next marker
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.received: float | None = None  # wall time this process read the change
        self.kernel: float | None = None  # wall time the kernel received those bytes
        self.at = -1  # the changed event's marker in `buffer`
        self.lost = False

    def readable(self) -> None:
        now = time.time()  # first: what follows must not count as delivery delay
        try:
            data, ancillary, _, _ = self.sock.recvmsg(RECV_SIZE, ANCILLARY_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            self._closed(err)
            return
        if not data:
            self._closed(None)
            return
        if self.received is not None:
            if len(self.buffer) < KEEP:
                self.buffer += data  # the rest of the changed event, read after the run
            return
        self.buffer += data
        at = self.buffer.find(MARK, self.scan)
        if at < 0:
            self.scan = max(0, len(self.buffer) - len(MARK))
            return
        if not self.ready.done():
            # The current snapshot: keep only what follows its marker.
            self.buffer = self.buffer[at + len(MARK):]
            self.ready.set_result(None)
            self.swarm.ready += 1
            at = self.buffer.find(MARK)
            if at < 0:
                self.scan = max(0, len(self.buffer) - len(MARK))
                return
        self.received, self.at = now, at
        self.kernel = kernel_time(ancillary)
        self.swarm.settle()

    def _closed(self, err: OSError | None) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the first event: {err!r}"))
        elif self.received is None:
            self.lost = True
            self.swarm.settle()

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()

    def arrival(self) -> tuple[float, float | None, int, str] | None:
        """(read, kernel received, event id, generated_at) of the changed event; parsed after the run."""
        if self.received is None:
            return None
        line = self.buffer.rfind(b"id: ", 0, self.at)
        event_id = int(self.buffer[line + 4:self.at])
        key = b'"generated_at":"'
        start = self.buffer.find(key, self.at) + len(key)
        end = self.buffer.find(b'"', start)
        if start < len(key) or end < 0:
            return self.received, self.kernel, event_id, ""  # the event was cut short
        return self.received, self.kernel, event_id, self.buffer[start:end].decode()


async def _open(loop: asyncio.AbstractEventLoop, swarm: Swarm, port: int, gate: asyncio.Semaphore,
                streams: list[Stream]) -> None:
    async with gate:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        stream = Stream(swarm, sock)
        streams.append(stream)
        await asyncio.wait_for(loop.sock_connect(sock, (HOST, swarm.port)), CONNECT_TIMEOUT)
        sock.send(swarm.request)  # a few dozen bytes into an empty socket buffer: never partial
        loop.add_reader(sock.fileno(), stream.readable)
        await asyncio.wait_for(stream.ready, CONNECT_TIMEOUT)


async def _swarm(port: int, count: int, out: Path, name: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    swarm = Swarm(port)
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    streams: list[Stream] = []
    try:
        opened = await asyncio.wait_for(
            asyncio.gather(*(_open(loop, swarm, port, gate, streams) for _ in range(count)),
                           return_exceptions=True),
            CONNECT_TIMEOUT + 5)
        errors = [repr(e) for e in opened if isinstance(e, BaseException)]
        _write(out / f"{name}.ready.json", {"ready": swarm.ready, "errors": errors[:5],
                                            "failed": len(errors)})
        if swarm.settled >= swarm.ready:
            swarm.all_settled.set()
        waiting = [asyncio.ensure_future(swarm.all_settled.wait()), asyncio.ensure_future(stop.wait())]
        await asyncio.wait(waiting, timeout=CONNECT_TIMEOUT + DELIVERY_TIMEOUT,
                           return_when=asyncio.FIRST_COMPLETED)
        for task in waiting:
            task.cancel()
        await asyncio.sleep(0.2)  # the rest of each changed event (its id and generated_at)
        arrivals = [a for a in (s.arrival() for s in streams) if a is not None]
        _write(out / f"{name}.arrivals.json", {"ready": swarm.ready, "arrivals": arrivals,
                                               "lost": sum(s.lost for s in streams)})
    finally:
        for stream in streams:
            stream.close()


def _write(path: Path, data: object) -> None:
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(data), encoding="utf-8")
    partial.rename(path)  # the parent never reads half a file


# -- the measurement -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Delays:
    """min / p50 / p99 / max of delivery delays, in ms."""

    min: float
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Delays:
        ordered = sorted(values)
        return cls(ordered[0], _rank(ordered, 0.50), _rank(ordered, 0.99), ordered[-1])

    def text(self) -> str:
        return f"{self.min:.0f} / {self.p50:.0f} / {self.p99:.0f} / {self.max:.0f} ms"


def _rank(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q of the values at or below it."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class Result:
    """Delivery delays of one change to `subscribers` streams, and the daemon's memory."""

    subscribers: int
    procs: int
    pinned: bool
    received: int
    lost: int
    event_ids: int  # distinct ids among the arrivals: 1 when every stream got the same change
    from_publish: Delays  # to the swarm reading the bytes
    to_kernel: Delays | None  # to the swarm's kernel receiving them (None: no timestamps)
    from_generated: Delays | None
    from_set: Delays
    rss_mb: float
    peak_rss_mb: float
    connect_s: float

    @property
    def ok(self) -> bool:
        return (self.received == self.subscribers and self.event_ids == 1
                and self.from_publish.p99 < P99_TARGET_MS and self.peak_rss_mb < RSS_TARGET_MB)


def _rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _wait_file(path: Path, procs: list[subprocess.Popen[bytes]], timeout: float, err: Path) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            data: dict = json.loads(path.read_text(encoding="utf-8"))  # type: ignore[type-arg]
            return data
        exited = [p for p in procs if p.poll() not in (None, 0)]
        if exited:
            raise RuntimeError(f"a swarm process exited with {exited[0].returncode}:\n"
                               f"{err.read_text()[-3000:]}")
        time.sleep(0.02)
    raise RuntimeError(f"no {path.name} from the swarm within {timeout:g} s:\n{err.read_text()[-3000:]}")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


def measure(subscribers: int = 5000, procs: int = 2, pin: bool = False) -> Result:
    """Start the daemon and the swarm, make one change, and collect every subscriber's delay.

    `pin` keeps the daemon on CPU 0 and the swarm on the others: a diagnostic that shows
    the daemon's own share of the delay, as if the clients were on other machines.
    """
    raise_fd_limit()  # the daemon inherits it: it holds one socket per subscriber
    shares = [subscribers // procs + (i < subscribers % procs) for i in range(procs)]
    with tempfile.TemporaryDirectory(prefix="statusd-bench-sse-") as tmp:
        work = Path(tmp)
        config = write_config(work, CHANNELS, status="main:\n  level: open\n")
        with RunningDaemon(config, work / "state") as daemon:
            assert daemon.proc is not None
            pid = daemon.proc.pid
            cpus = sorted(os.sched_getaffinity(0))
            if pin and len(cpus) > 1:
                os.sched_setaffinity(pid, cpus[:1])
            err = work / "swarm.err"
            started = time.monotonic()
            swarms: list[subprocess.Popen[bytes]] = []
            try:
                with err.open("wb") as errors:
                    for i, share in enumerate(shares):
                        swarms.append(subprocess.Popen(
                            [sys.executable, __file__, "swarm", "--port", str(daemon.port),
                             "--count", str(share), "--out", str(work), "--name", f"swarm-{i}"],
                            stdout=subprocess.DEVNULL, stderr=errors, cwd=work))
                        if pin and len(cpus) > 1:
                            os.sched_setaffinity(swarms[-1].pid, cpus[1:])
                ready = [_wait_file(work / f"swarm-{i}.ready.json", swarms, CONNECT_TIMEOUT + 10, err)
                         for i in range(procs)]
                connect_s = time.monotonic() - started
                if sum(r["ready"] for r in ready) < subscribers:
                    raise RuntimeError(f"only {sum(r['ready'] for r in ready)} of {subscribers} "
                                       f"subscribers connected: {[r['errors'] for r in ready]}")
                time.sleep(SETTLE)
                daemon.cli("set", "main", "closed", "-m", "en:Closed after a water leak.")
                returned = time.time()
                data = [_wait_file(work / f"swarm-{i}.arrivals.json", swarms, DELIVERY_TIMEOUT + 10, err)
                        for i in range(procs)]
                rss, peak = _rss(pid)
            finally:
                _stop(swarms)
    arrivals = [tuple(a) for d in data for a in d["arrivals"]]
    if not arrivals:
        raise RuntimeError("no subscriber received the change")
    publish = [(read - event_id / 1000) * 1000 for read, _, event_id, _ in arrivals]
    kernel = [(at - event_id / 1000) * 1000 for _, at, event_id, _ in arrivals if at is not None]
    generated = [(read - datetime.fromisoformat(gen).timestamp()) * 1000
                 for read, _, _, gen in arrivals if gen]
    after_set = [(read - returned) * 1000 for read, _, _, _ in arrivals]
    return Result(subscribers, procs, pin, len(arrivals), sum(d["lost"] for d in data),
                  len({event_id for _, _, event_id, _ in arrivals}), Delays.of(publish),
                  Delays.of(kernel) if kernel else None, Delays.of(generated) if generated else None,
                  Delays.of(after_set), rss, peak, connect_s)


def rows(result: Result) -> list[tuple[str, str, str]]:
    """(figure, value, target) lines for the report."""
    n = result.subscribers
    return [
        (f"SSE {n} subscribers ({result.procs} swarm processes{', pinned' if result.pinned else ''}): "
         "received the change",
         f"{result.received}/{n}, {result.lost} lost, {result.event_ids} id(s)", f"all {n}, one id"),
        ("SSE delay from publish (event id) to the client reading it: min/p50/p99/max",
         result.from_publish.text(),
         f"p99 < {P99_TARGET_MS:.0f} ms"),
        ("  ... publish to the bytes reaching the client's kernel (SO_TIMESTAMPNS)",
         result.to_kernel.text() if result.to_kernel else "n/a", "(server side only)"),
        ("SSE delay from snapshot generated_at",
         result.from_generated.text() if result.from_generated else "n/a", ""),
        ("SSE delay from `set` returning", result.from_set.text(), "(with the file watch)"),
        (f"daemon RSS with {n} streams (peak)", f"{result.rss_mb:.0f} MB ({result.peak_rss_mb:.0f} MB)",
         f"< {RSS_TARGET_MB:.0f} MB"),
        (f"time to connect {n} subscribers", f"{result.connect_s:.1f} s", ""),
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["swarm"]:
        parser = argparse.ArgumentParser(prog="bench/sse.py swarm")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--name", required=True)
        args = parser.parse_args(argv[1:])
        raise_fd_limit()
        asyncio.run(_swarm(args.port, args.count, args.out, args.name))
        return 0
    parser = argparse.ArgumentParser(prog="bench/sse.py", description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--procs", type=int, default=2, help="swarm processes")
    parser.add_argument("--runs", type=int, default=1, help="each with a fresh daemon")
    parser.add_argument("--pin", action="store_true",
                        help="diagnostic: daemon on CPU 0, swarm on the other CPUs")
    args = parser.parse_args(argv)
    print(f"statusd SSE fan-out; {machine()}; fd limit {raise_fd_limit()}")
    ok = True
    for run in range(1, args.runs + 1):
        result = measure(args.subscribers, args.procs, args.pin)
        print(f"-- run {run} of {args.runs}")
        for name, value, target in rows(result):
            print(f"{name:<70} {value:>30}  {target}")
        ok = ok and result.ok
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
