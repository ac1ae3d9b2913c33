"""A pushed change (the fire panel, through the ingest API) to N webhooks, beside its peers in the same run.

statusd: a status push POSTed to /api/v1/readings of the real daemon with N webhook
channels; the figures are the push → the first request leaving (the kernel's time of
its bytes crossing `lo`, bench/wire.py: issue 15's "first request leaving"), and → the
first and the last request arriving at the receivers (their process read it; each
answers 150 ms after a request arrives, as in fanout.py). The peers
send the same N POSTs to receivers that answer alike: an unlimited aiohttp gather
(signed as statusd signs, the floor for Python) and Apprise (the library, json://).
The ratio statusd / gather is issue 15's fan-out figure (128 webhooks within 1.3×).

    python bench/fanout_peers.py --counts 1 8 32 128 --pushes 5
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from common import (
    HOOK_DELAY,
    REPO,
    SECRET,
    SECRET_ENV,
    ArrivalLog,
    Hooks,
    RunningDaemon,
    Summary,
    machine,
    stop,
    webhook,
    write_config,
)
from fanout import _arrivals
from wire import Wire

FIRST_MS = 10.0  # issue 15: ingest push -> first request leaving
GATHER_RATIO = 1.3  # issue 15: 128 webhooks within 1.3x of an unlimited gather
COUNTS = (1, 8, 32, 128)
SETTLE = 1.0
AFTER = 0.3


@dataclass(frozen=True)
class Point:
    """One N: statusd's first and last arrival after a push, and the peers' last arrival (ms)."""

    count: int
    leaving: Summary | None  # None: no packet socket (not root)
    first: Summary
    last: Summary
    gather: Summary
    apprise: Summary | None


def _post(url: str, body: dict[str, Any], token: str) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202, answer.status


def _statusd(count: int, pushes: int, work: Path) -> tuple[list[float], list[float], list[float]]:
    leavings: list[float] = []
    firsts, lasts = [], []
    with Hooks(count, work / "hooks") as hooks, ExitStack() as stack:
        wire = _wire(stack)
        ports = {int(url.rsplit(":", 1)[1].split("/", 1)[0]) for url in hooks.urls}
        config = write_config(work, {f"hook{i:03d}": webhook(u) for i, u in enumerate(hooks.urls)},
                              status="main:\n  level: open\n")
        _with_panel(config)
        with RunningDaemon(config, work / "state") as daemon:
            time.sleep(SETTLE)
            for n in range(pushes):
                level = ("closed", "open")[n % 2]
                seen = [len(log.poll()) for log in hooks.logs]
                began = time.time()
                _post(f"{daemon.url}/api/v1/readings", {"kind": "status", "site": "main", "level": level,
                                                         "reason": f"Push {n}."}, SECRET)
                first, last = _arrivals(hooks, seen, level)
                firsts.append((first - began) * 1000)
                lasts.append((last - began) * 1000)
                if wire is not None and (left := wire.first(ports, began)) is not None:
                    leavings.append((left - began) * 1000)
                time.sleep(AFTER)
    return leavings, firsts, lasts


def _wire(stack: ExitStack) -> Wire | None:
    """The loopback capture, for as long as `stack`; None where this user may not open a packet socket."""
    try:
        return stack.enter_context(Wire())
    except PermissionError:
        return None


def _with_panel(config: Path) -> None:
    """The fire panel's feed: status pushes with the receivers' secret as its token."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    data = yaml.load(config.read_text(encoding="utf-8"))
    data["feeds"] = {"panel": {"type": "http", "token": {"env": SECRET_ENV}, "allow": ["status"]}}
    with config.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)


class PlainHooks:
    """N receivers that take any POST, log its arrival and answer 150 ms later (for the peers)."""

    def __init__(self, count: int, directory: Path) -> None:
        self.count, self.directory = count, directory
        self.proc: subprocess.Popen[bytes] | None = None
        self.urls: list[str] = []
        self.logs: list[ArrivalLog] = []

    def __enter__(self) -> Self:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, __file__, "receivers", "--count", str(self.count),
                                      "--dir", str(self.directory)], cwd=REPO,
                                     env={**os.environ, "PYTHONPATH": str(REPO)})
        ready = self.directory / "urls.json"
        deadline = time.monotonic() + 20
        while not ready.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                stop(self.proc)
                raise RuntimeError("the plain receivers did not start")
            time.sleep(0.02)
        self.urls = json.loads(ready.read_text())
        self.logs = [ArrivalLog(self.directory / f"hook-{i:03d}.jsonl") for i in range(self.count)]
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)


def _signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Statusd-Signature": f"sha256={digest}"}


async def _gather(urls: list[str], level: str) -> None:
    import aiohttp

    body = json.dumps({"level": level, "site": "main"}).encode()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(url: str) -> None:
            async with session.post(url, data=body, headers=_signed(body)) as answer:
                await answer.read()

        await asyncio.gather(*(one(u) for u in urls))


def _apprise(urls: list[str], level: str) -> None:
    import apprise

    sender = apprise.Apprise()
    for url in urls:
        sender.add(url.replace("http://", "json://", 1))
    sender.notify(body=json.dumps({"level": level}), title=level)


def _peer(hooks: PlainHooks, send: Any, level: str) -> float:
    seen = [len(log.poll()) for log in hooks.logs]
    began = time.time()
    send(hooks.urls, level)
    deadline = time.monotonic() + 30
    last = 0.0
    for i, log in enumerate(hooks.logs):
        while len(log.poll()) <= seen[i]:
            if time.monotonic() > deadline:
                raise TimeoutError("a peer's request did not arrive")
            time.sleep(0.005)
        last = max(last, float(log.arrivals[seen[i]]["received_at"]))
    time.sleep(HOOK_DELAY + 0.05)  # the answers come back before the next round
    return (last - began) * 1000


def measure(counts: tuple[int, ...] = COUNTS, pushes: int = 5, with_apprise: bool = True) -> list[Point]:
    points = []
    for count in counts:
        with tempfile.TemporaryDirectory(prefix="statusd-bench-push-") as tmp:
            leavings, firsts, lasts = _statusd(count, pushes, Path(tmp))
            with PlainHooks(count, Path(tmp) / "plain") as plain:
                gathered = [_peer(plain, lambda u, lv: asyncio.run(_gather(u, lv)), ("closed", "open")[n % 2])
                            for n in range(pushes)]
                apprised = [_peer(plain, _apprise, ("closed", "open")[n % 2]) for n in range(pushes)] \
                    if with_apprise else []
        points.append(Point(count, Summary.of(leavings) if leavings else None, Summary.of(firsts), Summary.of(lasts), Summary.of(gathered),
                            Summary.of(apprised) if apprised else None))
    return points


def rows(points: list[Point]) -> list[tuple[str, str, str]]:
    table = []
    for p in points:
        ratio = p.last.median / p.gather.median
        # The target is the first request leaving; the receivers' reading of it is shown beside.
        timed = p.leaving or p.first
        table += [
            (f"push -> first request leaving, {p.count} webhook(s)",
             f"{p.leaving.median:.1f} ms (p90 {p.leaving.p90:.1f})" if p.leaving else "n/a (not root)",
             f"< {FIRST_MS:g} ms" + ("" if timed.median < FIRST_MS else "  MISSED")),
            (f"push -> first arrival, {p.count} webhook(s)", f"{p.first.median:.0f} ms (p90 {p.first.p90:.0f})",
             "" if p.leaving else f"< {FIRST_MS:g} ms (in place of leaving)"),
            (f"push -> last arrival, {p.count} webhook(s)", f"{p.last.median:.0f} ms (p90 {p.last.p90:.0f})",
             f"{ratio:.2f}x gather" + (f" (target <= {GATHER_RATIO}x)" if p.count == 128 else "")),
            (f"  peer: aiohttp gather, {p.count}", f"{p.gather.median:.0f} ms (p90 {p.gather.p90:.0f})", ""),
        ]
        if p.apprise is not None:
            table.append((f"  peer: Apprise json://, {p.count}", f"{p.apprise.median:.0f} ms "
                          f"(p90 {p.apprise.p90:.0f})", f"statusd {p.last.median / p.apprise.median:.2f}x"))
    return table


async def _receivers(count: int, directory: Path) -> None:
    from aiohttp import web

    runners = []
    urls = []
    for i in range(count):
        log = (directory / f"hook-{i:03d}.jsonl").open("a", buffering=1)

        async def handle(request: web.Request, log: Any = log, i: int = i) -> web.Response:
            arrived = time.time()
            body = await request.read()
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {}
            log.write(json.dumps({"received_at": arrived, "body": parsed}) + "\n")
            await asyncio.sleep(HOOK_DELAY)
            return web.json_response({"id": f"{i}-{arrived}"})

        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}/hook")
    (directory / "urls.json.part").write_text(json.dumps(urls))
    (directory / "urls.json.part").rename(directory / "urls.json")
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/fanout_peers.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    host = sub.add_parser("receivers")
    host.add_argument("--count", type=int, required=True)
    host.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--counts", type=int, nargs="*", default=list(COUNTS))
    parser.add_argument("--pushes", type=int, default=5)
    args = parser.parse_args(argv)
    if args.command == "receivers":
        asyncio.run(_receivers(args.count, args.dir))
        return 0
    print(machine())
    for figure, value, note in rows(measure(tuple(args.counts), args.pushes)):
        print(f"{figure:<44} {value:>24}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
