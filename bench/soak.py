"""Soak: the daemon under steady load, sampled for growth (memory, file descriptors, store).

Readings at 50/s (queue readings with `throughput_per_hour`, and seats), a status change
every few seconds, and 200 live-banner (SSE) clients that disconnect and reconnect; the
daemon's VmRSS, open file descriptors and store size are sampled every few seconds. The
growth per hour is the least-squares slope after the warm-up (the first quarter).

    python bench/soak.py                        # about two minutes
    STATUSD_SOAK_SECONDS=1200 python bench/soak.py  # twenty minutes
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from common import SECRET, SECRET_ENV, Hooks, machine, webhook, write_config

from statusd import loading as config_module
from statusd.config.load import Config
from statusd.outbox.sqlite import SqliteStore as Store
from statusd.sources.status import edit as status_edit
from statusd.sources.status import entry as desk
from tests.support.daemon import Daemon

DURATION_ENV = "STATUSD_SOAK_SECONDS"
TOKEN_ENV, TOKEN = "BENCH_FEED_TOKEN", "bench-feed-token-3a9d"
READINGS_PER_S = 50
SSE_CLIENTS = 200
CHANGE_EVERY = (2.0, 5.0)
SAMPLE_EVERY = 5.0
# Targets: roughly flat after warm-up. Allowances per hour for noise in a short run.
RSS_TARGET_MB_H = 5.0
FD_TARGET_H = 5.0


@dataclass(frozen=True)
class Sample:
    """The daemon at one moment."""

    at: float
    rss_mb: float
    fds: int
    store_kb: float  # the database's logical size
    wal_kb: float  # the write-ahead log file, which SQLite reuses once checkpointed


@dataclass
class Load:
    """What the load generator did."""

    readings: int = 0
    refused: int = 0
    changes: int = 0
    sse_connects: int = 0
    sse_events: int = 0
    errors: list[str] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)


def sample(pid: int, state: Path) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    wal = state / "statusd.db-wal"
    return Sample(time.monotonic(), rss_kb / 1024, fds, _logical_kb(state / "statusd.db"),
                  wal.stat().st_size / 1024 if wal.exists() else 0.0)


def _logical_kb(path: Path) -> float:
    """The database's own size, WAL content included (what the files settle to once checkpointed)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pages, size = db.execute("PRAGMA page_count").fetchone()[0], db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()
    return float(pages * size) / 1024


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares growth per hour of (seconds, value) points; 0 for fewer than two."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else 3600 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def _config(directory: Path, urls: list[str]) -> Path:
    """The shipped config, two webhooks, an HTTP feed without a rate limit, always open."""
    from ruamel.yaml import YAML

    path = write_config(directory, {f"hook-{i + 1}": webhook(url) for i, url in enumerate(urls)},
                        status="main:\n  level: open\n")
    yaml = YAML(typ="rt")
    data = yaml.load(path.read_text(encoding="utf-8"))
    data["feeds"] = {"counters": {"type": "http", "token": {"env": TOKEN_ENV}, "max_rate": 0}}
    for site in data["sites"].values():
        site["hours"] = {"mo-su": "00:00-23:59"}  # sensor posts are said only while open
    data["rules"] = {"min_interval": "0s"}
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    return path


async def _readings(url: str, stop: asyncio.Event, load: Load) -> None:
    """READINGS_PER_S readings a second: queue readings with throughput, and seats.

    The figures wander as real ones do (a random walk), so bands are crossed now and then.
    """
    headers = {"Authorization": f"Bearer {TOKEN}"}
    rng = random.Random(1)
    length, occupied = 30.0, 120.0
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as session:
        tick = 0
        next_at = time.monotonic()
        while not stop.is_set():
            tick += 1
            length = min(150.0, max(0.0, length + rng.uniform(-1.0, 1.0)))
            occupied = min(240.0, max(0.0, occupied + rng.uniform(-1.5, 1.5)))
            if tick % 2:
                body: dict[str, Any] = {"kind": "queue", "site": "main", "queue": "entrance",
                                        "length": round(length), "throughput_per_hour": rng.randrange(150, 250)}
            else:
                body = {"kind": "seats", "site": "main", "zone": "floor2", "occupied": round(occupied),
                        "capacity": 240}
            try:
                async with session.post(f"{url}/api/v1/readings", json=body) as answer:
                    await answer.read()
                    load.readings += answer.status == 202
                    load.refused += answer.status != 202
            except (aiohttp.ClientError, TimeoutError) as err:
                load.errors.append(f"reading: {err!r}")
            next_at += 1 / READINGS_PER_S
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def _changes(config: Config, stop: asyncio.Event, load: Load) -> None:
    """A status change every few seconds, written as `statusd set` writes it."""
    rng = random.Random(2)
    targets, levels = ("main/wifi", "main/cafe", "annexe/printing"), ("open", "limited", "closed")
    while not stop.is_set():
        target, level = rng.choice(targets), rng.choice(levels)
        messages = [f"en:Soak change {load.changes}."] if level != "open" else []
        found, entry = desk.build(config, target, level, messages, None, None, "soak", datetime.now(UTC))
        await asyncio.to_thread(status_edit.set_entry, config.status_file, config, found, entry)
        load.changes += 1
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(*CHANGE_EVERY))
        except TimeoutError:
            pass


async def _sse_client(url: str, number: int, stop: asyncio.Event, load: Load) -> None:
    """One banner: listens for a while, disconnects, reconnects."""
    rng = random.Random(100 + number)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            try:
                async with session.get(f"{url}/events?site=main") as answer:
                    load.sse_connects += 1
                    until = time.monotonic() + rng.uniform(2.0, 12.0)
                    while time.monotonic() < until and not stop.is_set():
                        line = await asyncio.wait_for(answer.content.readline(), timeout=until - time.monotonic())
                        load.sse_events += line.startswith(b"data:")
            except TimeoutError:
                pass  # our own listening time ran out: reconnect
            except aiohttp.ClientError as err:
                load.errors.append(f"sse: {err!r}")
                await asyncio.sleep(1.0)


async def _sampler(pid: int, state: Path, stop: asyncio.Event, samples: list[Sample]) -> None:
    while not stop.is_set():
        samples.append(sample(pid, state))
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)
        except TimeoutError:
            pass


async def _drive(daemon: Daemon, config: Config, seconds: float, samples: list[Sample], sse: int) -> Load:
    load, stop = Load(), asyncio.Event()
    assert daemon.proc is not None
    async with asyncio.TaskGroup() as group:
        group.create_task(_sampler(daemon.proc.pid, daemon.state_dir, stop, samples))
        group.create_task(_readings(daemon.url, stop, load))
        group.create_task(_changes(config, stop, load))
        for number in range(sse):
            group.create_task(_sse_client(daemon.url, number, stop, load))
        await asyncio.sleep(seconds)
        stop.set()
    return load


@dataclass(frozen=True)
class Result:
    seconds: float
    load: Load
    first: Sample
    last: Sample
    rss_h: float
    fds_h: float
    store_h: float
    wal_h: float
    samples: list[Sample]


def measure(seconds: float, sse: int = SSE_CLIENTS) -> Result:
    with tempfile.TemporaryDirectory(prefix="statusd-soak-") as tmp:
        directory = Path(tmp)
        with Hooks(2, directory / "hooks", delay=0.05) as hooks:
            path = _config(directory, hooks.urls)
            config = config_module.load(path)
            daemon = Daemon(path, directory / "state", env={SECRET_ENV: SECRET, TOKEN_ENV: TOKEN})
            daemon.start(timeout=20)
            samples: list[Sample] = []
            try:
                load = asyncio.run(_drive(daemon, config, seconds, samples, sse))
                if daemon.proc is not None and daemon.proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited during the soak:\n{daemon.logs()[-3000:]}")
                store = Store(daemon.state_dir / "statusd.db", readonly=True)
                try:
                    load.events = Counter(e.kind.value for e in store.newest_events(1_000_000))
                finally:
                    store.close()
            finally:
                daemon.kill()
    warm = [s for s in samples if s.at - samples[0].at >= seconds / 4]
    return Result(
        seconds=seconds, load=load, first=warm[0], last=samples[-1],
        rss_h=slope_per_hour([(s.at, s.rss_mb) for s in warm]),
        fds_h=slope_per_hour([(s.at, float(s.fds)) for s in warm]),
        store_h=slope_per_hour([(s.at, s.store_kb) for s in warm]),
        wal_h=slope_per_hour([(s.at, s.wal_kb) for s in warm]),
        samples=samples,
    )


def rows(result: Result) -> list[tuple[str, str, str]]:
    load = result.load
    return [
        (f"soak load over {result.seconds:.0f} s",
         f"{load.readings} readings, {load.changes} changes, {load.sse_connects} SSE connects", ""),
        ("soak events recorded", ", ".join(f"{n} {kind}" for kind, n in load.events.most_common()), ""),
        ("soak RSS after warm-up → end", f"{result.first.rss_mb:.1f} → {result.last.rss_mb:.1f} MB", ""),
        ("soak RSS growth", f"{result.rss_h:+.1f} MB/h", f"flat (< {RSS_TARGET_MB_H:g} MB/h)"),
        ("soak open fds after warm-up → end", f"{result.first.fds} → {result.last.fds}", ""),
        ("soak fd growth", f"{result.fds_h:+.1f} /h", f"flat (< {FD_TARGET_H:g} /h)"),
        ("soak store after warm-up → end", f"{result.first.store_kb:.0f} → {result.last.store_kb:.0f} KB"
         f" (+ WAL {result.first.wal_kb:.0f} → {result.last.wal_kb:.0f} KB)", ""),
        ("soak store growth", f"{result.store_h / 1024:+.2f} MB/h (WAL {result.wal_h / 1024:+.2f} MB/h)",
         "bounded by delivery.history"),
        ("soak errors", f"{len(load.errors)} client errors, {load.refused} readings refused", "0"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get(DURATION_ENV) or 120),
                        help=f"how long (default ${DURATION_ENV} or 120)")
    parser.add_argument("--samples", action="store_true", help="print every sample too")
    parser.add_argument("--sse", type=int, default=SSE_CLIENTS, help=f"SSE clients (default {SSE_CLIENTS})")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"soak; {machine()}")
    result = measure(args.seconds, args.sse)
    for name, value, target in rows(result):
        print(f"{name:<40} {value:>48}  {target}")
    if args.samples:
        for s in result.samples:
            print(f"  t={s.at - result.samples[0].at:6.1f} s  rss={s.rss_mb:6.1f} MB  fds={s.fds}"
                  f"  store={s.store_kb:.0f} KB  wal={s.wal_kb:.0f} KB")
    for error in result.load.errors[:5]:
        print(f"  {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
