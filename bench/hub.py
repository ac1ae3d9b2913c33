"""Live readers at scale: one change to 20,000 SSE readers through nginx + nchan fed by statusd's
`web.hub`, beside 5,000 readers straight on the daemon (and, like for like, 5,000 through
nginx), in one run.

nginx runs the shipped deploy/nginx/statusd.conf (tests/support/nginx.py: two workers,
worker_connections raised); the readers are tests/support/swarm.py processes on this
machine (HTTP/1.0 streams, bytes timed on arrival, parsed after the run). Each change
is a `statusd set`; the delay of each reader is from the snapshot's `generated_at` (the
daemon's clock when it took the picture, the same for both paths) to the moment the
reader's process read the event, and to the moment its kernel received the bytes
(SO_TIMESTAMPNS: the server side's share, whatever the swarm's own load). Figures:
p50 / p99 / max over all readers and changes.

    python bench/hub.py [--hub-readers 20000] [--direct-readers 5000] [--changes 3]
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from common import SECRET, SECRET_ENV, machine, write_config

from tests.support.daemon import Daemon
from tests.support.nginx import Nginx, unused_port
from tests.support.swarm import Readers

CHANNELS = {"console": {"type": "console", "language": "en"}}
LEVELS = ("closed", "limited", "open", "closed", "open")
PAUSE = 1.5  # between changes: each meets idle readers
READERS_PER_PROC = 5000


@dataclass(frozen=True)
class Route:
    """Delays of one path (through the hub, or straight from the daemon)."""

    name: str
    readers: int
    received: int  # (reader, change) pairs that arrived
    expected: int
    read: tuple[float, float, float]  # p50, p99, max to the reader's process reading it (ms)
    kernel: tuple[float, float, float]  # ... to the reader's kernel receiving it (SO_TIMESTAMPNS)
    connect_s: float


def _rank(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _stamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _swarm(name: str, url: str, readers: int, changes: int, daemon: Daemon, work: Path) -> Route:
    procs = max(1, math.ceil(readers / READERS_PER_PROC))
    began = time.monotonic()
    with Readers(url, readers, 1 + changes, work / f"{name}-{readers}", procs=procs) as swarm:
        connect = time.monotonic() - began
        time.sleep(PAUSE)
        for level in LEVELS[:changes]:
            message = [] if level == "open" else ["-m", f"en:{level} for the benchmark."]
            daemon.cli("set", "main", level, *message)
            time.sleep(PAUSE)
        streams: list[dict[str, Any]] = swarm.collect(60)
    events = [(when, kernel, _stamp(generated)) for s in streams
              for when, kernel, _, generated, _ in s["events"][1:] if generated]
    read = sorted((when - made) * 1000 for when, _, made in events)
    kernel = sorted((at - made) * 1000 for _, at, made in events)
    return Route(name, readers, len(events), readers * changes, _figures(read), _figures(kernel), connect)


def _figures(ordered: list[float]) -> tuple[float, float, float]:
    return _rank(ordered, 0.5), _rank(ordered, 0.99), ordered[-1]


def measure(hub_readers: int = 20000, direct_readers: int = 5000, changes: int = 3) -> list[Route]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the daemon inherits it
    per_worker = hub_readers // 2 + 2048  # reuseport spreads them evenly over the two workers
    if per_worker + 1024 > hard:
        raise RuntimeError(f"{hub_readers} readers need {per_worker + 1024} open files per nginx worker; "
                           f"the hard limit is {hard}")
    with tempfile.TemporaryDirectory(prefix="statusd-bench-hub-") as tmp:
        work = Path(tmp)
        export = work / "export"
        export.mkdir()
        (work / "nginx").mkdir()
        nginx = Nginx(work / "nginx", export, workers=2, connections=per_worker, shm="256m",
                      reuseport=True)
        config = write_config(work, CHANNELS, status="main:\n  level: open\n")
        with config.open("a", encoding="utf-8") as out:
            out.write(f"web:\n  export_dir: {export}\n  hub: '{nginx.hub_url}'\n")
        daemon = Daemon(config, work / "state", env={SECRET_ENV: SECRET})
        daemon.port = unused_port()
        nginx.nodes = [f"127.0.0.1:{daemon.port}"]
        with nginx:
            daemon.start(timeout=20)
            try:
                routes = [_swarm("hub", nginx.events_url(), hub_readers, changes, daemon, work)]
                if direct_readers != hub_readers:  # like for like: the hub at the daemon's count too
                    routes.append(_swarm("hub", nginx.events_url(), direct_readers, changes, daemon, work))
                routes.append(_swarm("direct", f"{daemon.url}/events", direct_readers, changes, daemon, work))
            finally:
                daemon.kill()
    return routes


def rows(paths: list[Route]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for p in paths:
        where = "through nginx+nchan (web.hub)" if p.name == "hub" else "straight from the daemon"
        out += [
            (f"SSE {p.readers} readers {where}: received", f"{p.received}/{p.expected}", "all"),
            ("  change (generated_at) → reader's kernel: p50 / p99 / max",
             "{:.0f} / {:.0f} / {:.0f} ms".format(*p.kernel), "(server side)"),
            ("  change (generated_at) → reader's process: p50 / p99 / max",
             "{:.0f} / {:.0f} / {:.0f} ms".format(*p.read), "(with the swarm's own scheduling)"),
            ("  time to connect them all", f"{p.connect_s:.1f} s", ""),
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/hub.py", description=__doc__.splitlines()[0])
    parser.add_argument("--hub-readers", type=int, default=20000)
    parser.add_argument("--direct-readers", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=3, choices=range(1, len(LEVELS) + 1))
    args = parser.parse_args(argv)
    print(machine())
    for figure, value, note in rows(measure(args.hub_readers, args.direct_readers, args.changes)):
        print(f"{figure:<64} {value:>24}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
