"""What only the PostgreSQL store has to answer for: cut connections, stalls, several stores on one database."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from statusd.compose.message import Message
from statusd.errors import StoreError
from statusd.events import Event, EventKind
from statusd.model import Announced, Level, Target
from statusd.outbox.facade import AsyncStore
from statusd.outbox.postgres import PostgresStore
from statusd.outbox.store import Planned
from tests.support.postgres import PASSWORD, PostgresServer

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def event(n: int, target: str = "main") -> Event:
    return Event(EventKind.STATUS_CHANGED, Target.parse(target), Level.CLOSED if n % 2 else Level.OPEN, Level.OPEN,
                 {"fr": f"m{n}"}, NOW, "alice", f"r{n}")


def planned(ev: Event, channel: str = "rec") -> Planned:
    return Planned(channel, Message(f"t {ev.id}", "fr", None, ev.id, ev.kind.value, str(ev.target), ev.level.value))


def said(ev: Event) -> dict[str, Announced]:
    return {str(ev.target): Announced(ev.level.value, ev.revision, "", ev.id, 0.0)}


@pytest.fixture
def pg(postgres_server: PostgresServer, postgres_database: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_server.dsn(postgres_database, password=False), PASSWORD, timeout=2.0)
    store.migrate()
    yield store
    store.close()


class TestCutConnection:
    """A backend killed under the store (a cut network, a server restart) is trouble once, then recovers."""

    def test_cut_shows_as_trouble_and_the_next_write_recovers(
            self, pg: PostgresStore, postgres_server: PostgresServer, postgres_database: str) -> None:
        pg.probe()
        assert postgres_server.terminate(postgres_database) >= 1
        with pytest.raises(StoreError) as caught:
            pg.probe()
        assert pg.trouble is not None and pg.trouble.startswith(f"the store {pg.label} cannot record: ")
        assert PASSWORD not in pg.trouble and PASSWORD not in str(caught.value)
        pg.probe()
        assert pg.trouble is None

    def test_a_cut_mid_transaction_records_nothing_half(
            self, pg: PostgresStore, postgres_server: PostgresServer, postgres_database: str,
            monkeypatch: pytest.MonkeyPatch) -> None:
        first = event(1)
        original = pg._insert_deliveries

        def cut_after_the_event(*args: object, **kwargs: object) -> None:
            postgres_server.terminate(postgres_database)
            original(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(pg, "_insert_deliveries", cut_after_the_event)
        with pytest.raises(StoreError):
            pg.record([(first, [planned(first)])], said(first), deadline=60.0)
        monkeypatch.undo()
        assert not pg.has_event(first.id) and pg.announced() == {} and pg.next_due("rec") is None
        assert pg.record([(first, [planned(first)])], said(first), deadline=60.0) == [first.id]
        assert pg.next_due("rec") is not None


class TestNeverBlocksTheLoop:
    """A stalled server holds up the store's thread only: the event loop answers meanwhile."""

    async def test_a_lock_held_elsewhere_times_out_as_trouble_while_the_loop_runs(
            self, pg: PostgresStore, postgres_server: PostgresServer, postgres_database: str) -> None:
        first = event(1)
        pg.record([(first, [planned(first)])], said(first), deadline=60.0)
        blocker = psycopg.connect(postgres_server.dsn(postgres_database))
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE")
        facade = AsyncStore(pg, timeout=0.5)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        with pytest.raises(StoreError, match="gave no answer within 0.5 s"):
            await facade.next_due("rec")
        waited = time.monotonic() - started
        assert facade.trouble is not None
        blocker.rollback()
        blocker.close()
        ticker.cancel()
        assert 0.4 < waited < 1.5 and ticks > 20  # the loop ran all along
        for _ in range(100):  # the stalled call ends (statement timeout or the lock released)
            if await facade.next_due("rec") is not None:
                break
        assert facade.trouble is None
        await facade.close()


class TestTwoStoresOneDatabase:
    """Two daemons' stores on one database: recorded events never collide, nothing is lost."""

    def test_concurrent_recording_keeps_every_event_once(
            self, pg: PostgresStore, postgres_server: PostgresServer, postgres_database: str) -> None:
        other = PostgresStore(postgres_server.dsn(postgres_database, password=False), PASSWORD, timeout=5.0)
        events = [event(n, target=f"main/s{n % 3}") for n in range(40)]
        errors: list[BaseException] = []

        def write(store: PostgresStore, share: list[Event]) -> None:
            try:
                for ev in share:
                    store.record([(ev, [planned(ev), planned(ev, "hook")])], said(ev), deadline=60.0)
            except BaseException as err:
                errors.append(err)

        # Both record every event, in opposite orders: each event goes in once, with its two deliveries.
        threads = [threading.Thread(target=write, args=(pg, events)),
                   threading.Thread(target=write, args=(other, list(reversed(events))))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        other.close()
        assert errors == []
        recent = pg.recent(100)
        assert sorted(ev.id for ev, _, _ in recent) == sorted(ev.id for ev in events)
        assert all(len(deliveries) == 2 for _, _, deliveries in recent)
        created = [d.created_at for _, _, ds in recent for d in ds if d.channel == "rec"]
        assert len(set(created)) == len(created)  # never the same microsecond twice on one channel
