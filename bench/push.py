"""Web Push: one closure to 10,000 and 50,000 subscriptions, and what it does to the other channels.

The local push service (tests/support/fakes/push.py) runs in its own process and
answers every message 50 ms after it arrives, checking each VAPID header (decryption
is left out here: it would cost the push service, not the daemon). Measured: the time
from `statusd set` writing status.yaml to the last message accepted; the daemon's CPU seconds
over the batch and its peak RSS (VmHWM); and a webhook channel's latency (status.yaml written
→ the receiver has the message) for flips of another site, without a batch running and
while one is.

    python bench/push.py --subscriptions 10000 --subscriptions 50000
    python bench/push.py serve --count N --delay 0.05 --state DIR --key FILE --dir DIR   (the push service)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import REPO, Hooks, RunningDaemon, Summary, machine, stop, webhook, write_config

from statusd.channels.webpush_keys import generate
from tests.support.daemon import Daemon

DELAY = 0.05
CONNECTIONS = 100
SETTLE = 1.0
BASELINE_FLIPS = 6
BATCH_TIMEOUT = 600.0
TICK = 100.0  # clock ticks a second (USER_HZ) in /proc/PID/stat


@dataclass(frozen=True)
class Result:
    subscriptions: int
    to_last: float           # seconds from `set` returning to the last accepted message
    accepted: int
    cpu: float               # daemon CPU seconds over the batch
    peak_rss_mb: float
    quiet: Summary           # webhook latency, ms, no batch running
    busy: Summary            # webhook latency, ms, during the batch


def measure(count: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="statusd-bench-push-") as tmp:
        directory = Path(tmp)
        key = directory / "vapid.pem"
        key.write_text(generate()[0], encoding="ascii")
        state = directory / "state"
        with PushProcess(count, key, state, directory / "push") as push, Hooks(1, directory / "hooks") as hooks:
            channels: dict[str, dict[str, Any]] = {
                "push-fr": {"type": "webpush", "language": "fr", "vapid_key": {"file": str(key)},
                            "subject": "mailto:bench@library.example", "connections": CONNECTIONS,
                            "loopback_endpoints": True},
                "hook": webhook(hooks.urls[0]),
            }
            config = write_config(directory, channels, status="main:\n  level: open\nannexe:\n  level: open\n")
            with RunningDaemon(config, state) as daemon:
                time.sleep(SETTLE)
                flips = iter(range(10_000))
                quiet = [_hook_flip(daemon, hooks, next(flips)) for _ in range(BASELINE_FLIPS)]
                pid = daemon.proc.pid if daemon.proc else 0
                cpu0 = _cpu(pid)
                daemon.cli("set", "main", "closed", "-m", "fr:Fermé : banc d'essai.")
                returned = _written(daemon)
                busy: list[float] = []
                while push.stats()["accepted"] < count and time.time() - returned < BATCH_TIMEOUT:
                    busy.append(_hook_flip(daemon, hooks, next(flips)))
                stats = push.stats()
                cpu = _cpu(pid) - cpu0
                peak = _status(pid)["VmHWM"]
        return Result(count, stats["last"] - returned, stats["accepted"], cpu, int(peak.split()[0]) / 1024,
                      Summary.of(quiet), Summary.of(busy or [float("nan")]))


def _hook_flip(daemon: Daemon, hooks: Hooks, n: int) -> float:
    """Flip the annexe (no push subscriptions) and return ms until the webhook receiver has it."""
    level = "closed" if n % 2 == 0 else "open"
    seen = len(hooks.logs[0].poll())
    daemon.cli("set", "annexe", level, "-m", f"en:Bench {n}: {level}.")
    returned = _written(daemon)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        fresh = [a for a in hooks.logs[0].poll()[seen:] if a["body"].get("level") == level]
        if fresh:
            return (float(fresh[0]["received_at"]) - returned) * 1000
        time.sleep(0.005)
    raise TimeoutError(f"the webhook did not get flip {n} within 30 s")


def _written(daemon: Daemon) -> float:
    """When the new status.yaml was written (its mtime; its ctime also moves with the chmod that
    follows the rename, which under load can come after the daemon has already acted)."""
    return daemon.config.with_name("status.yaml").stat().st_mtime_ns / 1e9


def _cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


class PushProcess:
    """The push service as its own process, with `count` subscriptions written into push.sqlite."""

    def __init__(self, count: int, key: Path, state: Path, directory: Path) -> None:
        self.count, self.key, self.state, self.directory = count, key, state, directory
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> PushProcess:
        self.directory.mkdir(parents=True)
        command = [sys.executable, __file__, "serve", "--count", str(self.count), "--delay", str(DELAY),
                   "--state", str(self.state), "--key", str(self.key), "--dir", str(self.directory)]
        self.proc = subprocess.Popen(command, cwd=REPO, stderr=(self.directory / "err").open("wb"))
        ready = self.directory / "url"
        deadline = time.monotonic() + 300
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop(self.proc)
                raise RuntimeError(f"the push service did not start:\n{(self.directory / 'err').read_text()}")
            time.sleep(0.05)
        self.url = ready.read_text(encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
        time.sleep(0.1)
        return data


async def _serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from statusd.channels.webpush_keys import load, public_key
    from statusd.channels.webpush_store import Subscription, Subscriptions, store_file
    from tests.support.fakes.push import PushService, b64url

    public = public_key(load(args.key.read_text(encoding="ascii")).private_key)
    service = PushService(vapid_public=public, delay=args.delay, decrypt=False)
    await service.start()
    browsers = [service.subscribe() for _ in range(args.count)]
    store = Subscriptions(store_file(args.state))
    store.subscribe_many((Subscription(service.endpoint(b), b.p256dh, b64url(b.auth), "main", "status", "fr")
                          for b in browsers), "2026-12-02")
    store.close()

    async def stats(request: web.Request) -> web.Response:
        times = [r.at for r in service.received]
        return web.json_response({"accepted": len(times), "last": max(times, default=0.0),
                                  "refused": dict(service.refused)})

    control = web.Application()
    control.router.add_get("/_stats", stats)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    (args.dir / "url.part").write_text(f"http://127.0.0.1:{runner.addresses[0][1]}", encoding="utf-8")
    (args.dir / "url.part").rename(args.dir / "url")
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, done.set)
    await done.wait()
    await runner.cleanup()
    await service.stop()


def rows(results: list[Result]) -> list[tuple[str, str, str]]:
    table = []
    for r in results:
        n = f"{r.subscriptions:,}"
        table += [
            (f"push {n}: set → last accepted", f"{r.to_last:.1f} s ({r.accepted:,} accepted)",
             f"push service answers in {DELAY * 1000:.0f} ms, {CONNECTIONS} connections"),
            (f"push {n}: daemon CPU over the batch", f"{r.cpu:.1f} s ({100 * r.cpu / max(r.to_last, 1e-9):.0f} % "
                                                      "of a core)", "fan-out in its own thread and loop"),
            (f"push {n}: daemon peak RSS", f"{r.peak_rss_mb:.0f} MB", "VmHWM"),
            (f"push {n}: webhook, no batch", _ms(r.quiet), "status.yaml written → webhook has it"),
            (f"push {n}: webhook, during the batch", _ms(r.busy), "target: no worse beyond noise"),
        ]
    return table


def _ms(s: Summary) -> str:
    return f"{s.median:.0f} ms (min {s.min:.0f}, p90 {s.p90:.0f}, max {s.max:.0f}, n={s.count})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/push.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve")
    serve.add_argument("--count", type=int, required=True)
    serve.add_argument("--delay", type=float, default=DELAY)
    serve.add_argument("--state", type=Path, required=True)
    serve.add_argument("--key", type=Path, required=True)
    serve.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--subscriptions", type=int, action="append")
    args = parser.parse_args(argv)
    if args.command == "serve":
        asyncio.run(_serve(args))
        return 0
    results = [measure(n) for n in args.subscriptions or [10_000, 50_000]]
    print(f"Web Push; {machine()}")
    for figure, value, note in rows(results):
        print(f"{figure:<44} {value:>48}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
