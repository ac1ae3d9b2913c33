"""AsyncStore: the daemon's store calls run on one thread, in order, bounded in time, cancellable."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from statusd.errors import StoreError
from statusd.outbox.facade import AsyncStore
from statusd.outbox.sqlite import SqliteStore

pytestmark = pytest.mark.unit


@pytest.fixture
def sqlite(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "statusd.db")


class TestOneThread:
    """Every call runs on the store's own thread, never the loop's, one after the other in call order."""

    async def test_calls_run_off_the_loop_in_order(self, sqlite: SqliteStore) -> None:
        facade = AsyncStore(sqlite)
        seen: list[tuple[int, str]] = []

        def note(_: object, n: int) -> int:
            seen.append((n, threading.current_thread().name))
            return n

        results = await asyncio.gather(*(facade.run(note, n) for n in range(50)))
        assert results == list(range(50)) and [n for n, _ in seen] == list(range(50))
        names = {name for _, name in seen}
        assert len(names) == 1 and names != {threading.current_thread().name}
        await facade.close()


class TestBounded:
    """A call with no answer in time is StoreError and trouble on the loop; trouble ends with the answer."""

    async def test_stalled_call(self, sqlite: SqliteStore) -> None:
        facade = AsyncStore(sqlite, timeout=0.2)
        release = threading.Event()
        stalled = asyncio.ensure_future(facade.run(lambda _: release.wait(5)))
        ticks = 0
        started = time.monotonic()
        while not stalled.done():
            ticks += 1
            await asyncio.sleep(0.01)
        with pytest.raises(StoreError, match="gave no answer within 0.2 s"):
            stalled.result()
        assert time.monotonic() - started < 1.0 and ticks >= 10  # the loop went on meanwhile
        assert facade.trouble is not None and "gave no answer" in facade.trouble
        release.set()
        assert await facade.announced() == {}
        assert facade.trouble is None
        await facade.close()

    async def test_a_failing_call_is_trouble_until_one_succeeds(self, sqlite: SqliteStore) -> None:
        facade = AsyncStore(sqlite)

        def fail(_: object) -> None:
            raise StoreError("connection refused")

        with pytest.raises(StoreError):
            await facade.run(fail)
        assert facade.trouble == f"the store {sqlite.label} cannot be used: connection refused"
        await facade.has_event("x")
        assert facade.trouble is None
        await facade.close()


class TestCancellation:
    """A task cancelled while its call is being answered ends cancelled all the same (shutdown must not hang)."""

    async def test_cancel_is_never_swallowed(self, sqlite: SqliteStore) -> None:
        facade = AsyncStore(sqlite)

        async def looping() -> None:
            while True:
                await facade.has_event("x")

        for n in range(150):  # cancelled at every point of the call's round trip, by and by
            task = asyncio.ensure_future(looping())
            await asyncio.sleep((n % 15) * 0.0002)
            task.cancel()
            done, _ = await asyncio.wait((task,), timeout=2.0)
            assert done and task.cancelled(), f"cancellation {n} was swallowed: the task runs on"
        await facade.close()
