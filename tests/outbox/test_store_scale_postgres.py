"""On PostgreSQL too, a post's checks and the health report read a few pages however long the history.

PostgreSQL plans the store's joins itself (CROSS JOIN included) from its statistics,
so the order the SQL is written in does not hold there. Measured as the pages a
statement touches (EXPLAIN's shared buffers), with the statistics autovacuum keeps
(ANALYZE): the same for 200 and 2,000 old events, sent on two channels, a site's
posts among which its service's status was posted once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from statusd.events import Event, EventKind
from statusd.model import Level, Target
from statusd.outbox.dialect import placeholders
from statusd.outbox.postgres import PostgresStore
from statusd.outbox.records import Delivery
from tests.outbox.test_outbox_promises import NOW
from tests.support.postgres import PASSWORD, PostgresServer

pytestmark = pytest.mark.e2e

CHANNELS = ("rec", "other")


def grow(dsn: str, count: int) -> None:
    """`count` events, all sent on both channels: the service `main/wifi` once, then the site `main`."""
    events, deliveries = [], []
    for number in range(count):
        target, kind = ("main/wifi", "status_changed") if number == 0 else ("main", "seats_changed")
        ev = Event(EventKind(kind), Target.parse(target), (Level.CLOSED, Level.OPEN)[number % 2], Level.OPEN,
                   {"en": f"m{number}"}, NOW, "alice", f"r{number}")
        at = 1_000_000.0 + number * 60
        events.append((ev.id, kind, target, ev.level.value, at, ev.to_json()))
        for channel in CHANNELS:
            message = json.dumps({"text": f"text {number} " + "x" * 80, "language": "en", "link": None,
                                  "event_id": ev.id, "kind": kind, "target": target, "level": ev.level.value})
            deliveries.append((ev.id, channel, message, f"k{number}{channel}", at, at + 3600, f"r{number}",
                               at, at + 1, at + 1))
    with psycopg.connect(dsn, autocommit=True) as db, db.cursor() as cursor:
        cursor.executemany("INSERT INTO events (id, kind, target, level, author, created_at, body)"
                           " VALUES (%s, %s, %s, %s, 'alice', %s, %s)", events)
        cursor.executemany("INSERT INTO deliveries (event_id, channel, action, state, message, idempotency_key,"
                           " attempts, next_attempt, deadline, remote_id, created_at, updated_at, sent_at)"
                           " VALUES (%s, %s, 'post', 'sent', %s, %s, 1, %s, %s, %s, %s, %s, %s)", deliveries)
        db.execute("ANALYZE")


def pages(dsn: str, store: PostgresStore, call: Callable[[], object]) -> int:
    """The shared buffers the statements `call` runs touch, as EXPLAIN ANALYZE counts them."""
    ran: list[tuple[str, tuple[Any, ...]]] = []
    execute = store._db.execute

    def recording(sql: str, parameters: Any = ()) -> Any:
        ran.append((sql, tuple(parameters)))
        return execute(sql, parameters)

    store._db.execute = recording  # type: ignore[method-assign]
    try:
        call()
    finally:
        store._db.execute = execute  # type: ignore[method-assign]
    total = 0
    with psycopg.connect(dsn, autocommit=True) as db:
        for sql, parameters in ran:
            row = db.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + placeholders(sql), parameters).fetchone()
            assert row is not None
            plan = row[0][0]["Plan"]
            total += int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])
    return total


def checks(store: PostgresStore, due: Delivery) -> dict[str, Callable[[], object]]:
    return {
        "superseded_by": lambda: store.superseded_by(due),
        "unresolved_before": lambda: store.unresolved_before(due),
        "last_carried(main)": lambda: store.last_carried("rec", "main"),
        "last_carried(main/wifi)": lambda: store.last_carried("rec", "main/wifi"),
        "last_carried(annexe)": lambda: store.last_carried("rec", "annexe"),
        "retry_depth": store.retry_depth,
        "waiting": store.waiting,
        "last_outcome": lambda: store.last_outcome("rec"),
    }


@pytest.fixture
def grown(postgres_server: PostgresServer) -> Iterator[Callable[[int], tuple[str, PostgresStore, Delivery]]]:
    made: list[tuple[str, PostgresStore]] = []

    def make(count: int) -> tuple[str, PostgresStore, Delivery]:
        name = postgres_server.create_database()
        store = PostgresStore(postgres_server.dsn(name, password=False), PASSWORD, timeout=10.0)
        store.migrate()
        made.append((name, store))
        dsn = postgres_server.dsn(name)
        grow(dsn, count)
        newest = store._db.execute("SELECT id FROM events ORDER BY seq DESC LIMIT 1").fetchone()[0]
        due = store.post_for(newest, "rec")
        assert due is not None
        return dsn, store, due

    yield make
    for name, store in made:
        store.close()
        postgres_server.drop_database(name)


class TestChecksStayFlat:
    """From 200 to 2,000 old events, each check touches as many pages, give or take a few."""

    def test_flat(self, grown: Callable[[int], tuple[str, PostgresStore, Delivery]]) -> None:
        counts: dict[str, list[int]] = {}
        for size in (200, 2000):
            dsn, store, due = grown(size)
            for name, call in checks(store, due).items():
                counts.setdefault(name, []).append(pages(dsn, store, call))
        grew = {name: (small, large) for name, (small, large) in counts.items() if large > small + 8}
        assert grew == {}, f"pages touched at 200 and at 2,000 events: {grew}"
