"""What the store's async facade costs the daemon: one store call, direct and through AsyncStore.

    python bench/store_calls.py                 # SQLite, and PostgreSQL when it is installed
    python bench/store_calls.py --calls 5000

For each store (a SQLite file; a throw-away PostgreSQL cluster on 127.0.0.1, as the
tests start it) it times `next_due` (a small indexed read) and `mark_retry` (a small
write) called directly, and awaited through AsyncStore (which runs the call on the
store's one thread). The difference of medians is the facade's per-call overhead:
the hop to the thread and back to the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from statusd.compose.message import Message
from statusd.events import Event, EventKind
from statusd.model import Level, Target
from statusd.outbox.contract import Store
from statusd.outbox.facade import AsyncStore
from statusd.outbox.postgres import PostgresStore
from statusd.outbox.sqlite import SqliteStore
from statusd.outbox.store import Planned
from tests.support.postgres import PASSWORD, PostgresServer, postgres_bindir

Row = tuple[str, str, str]


def _fill(store: Store) -> int:
    """One event with one pending delivery; its id."""
    ev = Event(EventKind.STATUS_CHANGED, Target.parse("main"), Level.CLOSED, Level.OPEN, {"en": "x"},
               datetime.now(UTC), "bench", "r1")
    text = Message("Main: closed.", "en", None, ev.id, ev.kind.value, "main", "closed")
    store.record([(ev, [Planned("b", text)])], {}, 3600.0)
    due = store.next_due("b")
    assert due is not None
    return due.id


def _micro(times: list[float]) -> float:
    return statistics.median(times) * 1e6


def _direct(call: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return _micro(times)


async def _awaited(call: Callable[[], Awaitable[object]], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return _micro(times)


def measure(name: str, store: Store, n: int) -> list[Row]:
    delivery = _fill(store)
    facade = AsyncStore(store)
    until = time.time() + 3600.0
    read = _direct(lambda: store.next_due("b"), n)
    write = _direct(lambda: store.mark_retry(delivery, until, "bench"), n)

    async def through() -> tuple[float, float]:
        r = await _awaited(lambda: facade.next_due("b"), n)
        w = await _awaited(lambda: facade.mark_retry(delivery, until, "bench"), n)
        return r, w

    read_async, write_async = asyncio.run(through())
    store.close()
    return [
        (f"{name}: next_due direct / through AsyncStore", f"{read:.0f} µs / {read_async:.0f} µs",
         f"overhead {read_async - read:.0f} µs"),
        (f"{name}: mark_retry direct / through AsyncStore", f"{write:.0f} µs / {write_async:.0f} µs",
         f"overhead {write_async - write:.0f} µs"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per figure (default 2000)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="statusd-bench-store-"))
    rows = measure("sqlite", SqliteStore(directory / "statusd.db"), args.calls)
    try:
        postgres_bindir()
    except RuntimeError as err:
        rows.append(("postgresql", "not measured", str(err)))
    else:
        cluster = Path(tempfile.mkdtemp(prefix="statusd-bench-pg-"))  # its own: the postgres user must enter it
        server = PostgresServer(cluster).start()
        try:
            database = server.create_database()
            store = PostgresStore(server.dsn(database, password=False), PASSWORD)
            store.migrate()
            rows += measure("postgresql", store, args.calls)
        finally:
            server.stop()
            shutil.rmtree(cluster, ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    for figure, value, note in rows:
        print(f"{figure:<{width}}  {value:<22}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
