"""A post's checks before it leaves, and the health report, cost the same after months of history.

Each post is checked against the channel's sent posts (`last_carried`: does the
channel show this already?) and its waiting ones (`unresolved_before`: is an
earlier post of the target still in doubt?). Those once read every delivery the
channel ever had, the first of them once per row (7 s a post on a store of
2,000 events to 128 channels). Measured here in SQLite's own steps (a progress
handler counts virtual-machine instructions): the same for 50 and for 500 old
posts, and what they answer is unchanged (the other outbox tests hold that).
The health report's reads (every /metrics scrape and /readyz) likewise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from statusd.compose.message import Message
from statusd.events import Event, EventKind
from statusd.model import Level, Target
from statusd.outbox.dialect import SQLITE
from statusd.outbox.records import Delivery, Planned
from statusd.outbox.schema import STEPS, VERSION
from statusd.outbox.sqlite import SqliteStore
from statusd.outbox.store import Store
from tests.outbox.test_outbox_promises import NOW, event, record

pytestmark = pytest.mark.unit

TARGETS = ("main", "annexe", "main/wifi")


def history(store: Store, count: int, start: int = 0) -> None:
    """`count` posts sent on channel `rec`, the targets in turn, then a new post of `main` waiting."""
    for number in range(start, start + count):
        level = (Level.CLOSED, Level.OPEN)[number % 2]
        record(store, event(TARGETS[number % len(TARGETS)], level, f"old{number}"), f"old {number}",
               at=1_000_000.0 + number)
        due = store.next_due("rec")
        assert due is not None
        store.mark_sent(due.id, f"r{due.id}", None)


def steps(store: SqliteStore, call: Callable[[], object]) -> int:
    """SQLite's virtual-machine instructions (in hundreds) that `call` takes."""
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0  # go on

    store._sqlite.set_progress_handler(tick, 100)
    try:
        call()
    finally:
        store._sqlite.set_progress_handler(None, 0)
    return counted[0]


def ask(store: Store, due: Delivery, check: str) -> object:
    """One of the checks a post goes through before it leaves, for the waiting post `due`, or one
    of what the health report (/metrics, /readyz) reads."""
    if check == "last_carried":
        return store.last_carried("rec", "main")
    if check == "last_outcome":
        return store.last_outcome("rec")
    if check in ("waiting", "retry_depth"):
        return getattr(store, check)()
    return getattr(store, check)(due)


def waiting(store: Store) -> Delivery:
    record(store, event("main", Level.LIMITED, "new"), "new", at=2_000_000.0)
    due = store.next_due("rec")
    assert due is not None and due.message is not None and due.message.text == "new"
    return due


class TestChecksStayFlat:
    """From 50 to 500 old posts, a post's checks take as many of the store's steps, give or take a few."""

    @pytest.fixture
    def grown(self, tmp_path: Path) -> Callable[[int], tuple[SqliteStore, Delivery]]:
        def grow(count: int) -> tuple[SqliteStore, Delivery]:
            store = SqliteStore(tmp_path / f"history-{count}.db")
            history(store, count)
            return store, waiting(store)
        return grow

    @pytest.mark.parametrize("check", ["last_carried", "unresolved_before", "superseded_by",
                                       "waiting", "retry_depth", "last_outcome"])
    def test_flat(self, grown: Callable[[int], tuple[SqliteStore, Delivery]], check: str) -> None:
        counts = []
        for size in (50, 500):
            store, due = grown(size)
            assert due.message is not None
            counts.append(steps(store, partial(ask, store, due, check)))
            store.close()
        small, large = counts
        assert large <= small + 3, f"{check}: {small} hundred steps at 50 old posts, {large} at 500"

    def test_the_answers(self, grown: Callable[[int], tuple[SqliteStore, Delivery]]) -> None:
        store, due = grown(50)
        last = store.last_carried("rec", "main")
        assert last is not None and last.message is not None and last.message.text == "old 48"
        assert store.waiting() == {"rec": 1} and store.retry_depth() == {}
        outcome = store.last_outcome("rec")
        assert outcome is not None and outcome[0] == "sent"
        store.mark_failed(due.id, "HTTP 400: refused")  # newer than every sent one: the last outcome now
        failed = store.last_outcome("rec")
        assert failed is not None and failed[:2] == ("failed", "HTTP 400: refused") and failed[2] >= outcome[2]
        store.close()


class TestUpgrade:
    """A store made before the index is brought up to date when the daemon opens it."""

    def test_a_version_1_file_gets_the_index(self, tmp_path: Path) -> None:
        path = tmp_path / "statusd.db"
        db = sqlite3.connect(path)
        STEPS[1](SQLITE, db.execute)
        db.execute("INSERT INTO schema_version (version) VALUES (1)")
        db.commit()
        db.close()
        store = SqliteStore(path)
        try:
            assert store.schema_version() == VERSION >= 2
            names = {row[0] for row in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            assert "deliveries_sent" in names
            history(store, 3)  # and it works as a new one does
            assert store.last_carried("rec", "main") is not None
        finally:
            store.close()


def busy_history(store: Store, count: int) -> None:
    """A service's status posted once, then `count` posts about the site (its seats, say) on channel `rec`."""
    for number, target in enumerate(["main/wifi"] + ["main"] * count):
        level = (Level.CLOSED, Level.OPEN)[number % 2]
        record(store, event(target, level, f"busy{number}"), f"busy {number}", at=1_000_000.0 + number)
        due = store.next_due("rec")
        assert due is not None
        store.mark_sent(due.id, f"r{due.id}", None)


class TestRareTargets:
    """A target the channel posted long ago (a service among a site's frequent posts), or never, is
    found (or not) in as many steps at 50 as at 500 later posts of another target."""

    @pytest.mark.parametrize("target", ["main/wifi", "annexe"])
    def test_flat(self, tmp_path: Path, target: str) -> None:
        counts = []
        for size in (50, 500):
            store = SqliteStore(tmp_path / f"busy-{size}.db")
            busy_history(store, size)
            counts.append(steps(store, partial(store.last_carried, "rec", target)))
            found = store.last_carried("rec", target)
            assert (found is not None and found.message is not None and found.message.text == "busy 0") == (
                target == "main/wifi")
            store.close()
        small, large = counts
        assert large <= small + 3, f"last_carried({target}): {small} hundred steps at 50 later posts, {large} at 500"


def seats_history(store: Store, count: int) -> str:
    """A status of `annexe`, then `count` seat events of `main` (automatic, sent on `rec`); the status's id."""
    first = event("annexe", Level.CLOSED, "annexe-closed")
    record(store, first, "annexe closed", at=1_000_000.0)
    for number in range(count):
        seats = Event(EventKind.SEATS_CHANGED, Target.parse("main"), Level.OPEN, Level.OPEN, {"en": f"s{number}"},
                      NOW, "sensors", f"seats{number}")
        record(store, seats, f"seats {number}", at=1_000_001.0 + number)
    return first.id


class TestEventsStayFlat:
    """A site's status events (the crisis thread of every status post) and an event by its whole id
    (the desk's page, `statusd history`) are found in as many steps among 50 as among 500 seat events."""

    @pytest.mark.parametrize("read", ["site_events", "event"])
    def test_flat(self, tmp_path: Path, read: str) -> None:
        counts = []
        for size in (50, 500):
            store = SqliteStore(tmp_path / f"seats-{size}.db")
            status = seats_history(store, size)
            ask: Callable[[], object] = (
                partial(lambda s: list(s.site_events("annexe", 10**9)), store) if read == "site_events"
                else partial(store.event, status))
            counts.append(steps(store, ask))
            found = store.event(status)
            assert found is not None and [e.id for _, e, _ in store.site_events("annexe", 10**9)] == [status]
            store.close()
        small, large = counts
        assert large <= small + 3, f"{read}: {small} hundred steps among 50 seat events, {large} among 500"


FAN = tuple(f"hook{number:03d}" for number in range(128))


def fan_event(number: int) -> tuple[Event, list[Planned]]:
    """A status event to 128 channels, with its posts."""
    ev = event("main", (Level.CLOSED, Level.OPEN)[number % 2], f"fan{number}")
    text = Message(f"fan {number}", "en", None, ev.id, ev.kind.value, "main", ev.level.value)
    return ev, [Planned(channel, text) for channel in FAN]


def fanned(store: SqliteStore, count: int) -> None:
    """`count` such events, each of their posts then sent, as the workers mark them."""
    for number in range(count):
        store.record([fan_event(number)], {}, deadline=30.0)
        with store.together():
            for delivery in store.next_due_many(list(FAN)).values():
                store.mark_sent(delivery.id, f"r{delivery.id}", None)


def record_pages(store: SqliteStore, number: int) -> int:
    """Pages one more event's record writes to the store's write-ahead log, emptied first."""
    store.checkpoint()
    log, page = Path(f"{store.path}-wal"), int(store._sqlite.execute("PRAGMA page_size").fetchone()[0])
    assert log.stat().st_size == 0
    store.record([fan_event(number)], {}, deadline=30.0)
    return (log.stat().st_size - 32) // (page + 24)  # the log's header, then a 24-byte header per page


class TestRecordWrites:
    """An event's record at 128 channels writes its deliveries in one place of each index, whatever the
    history: led by the channel, four indexes took them at 128 places (~270 pages of log after 60
    events, more with each, ~2 ms of the record before the first request; issue 15)."""

    def test_few_pages_and_flat(self, tmp_path: Path) -> None:
        written = []
        for size in (20, 120):
            store = SqliteStore(tmp_path / f"fan-{size}.db")
            fanned(store, size)
            written.append(record_pages(store, size))
            store.close()
        small, large = written
        # 128 rows of the table (~15 pages), then a few pages of each index and of the events'.
        assert large <= 60 and large <= small + 6, f"{small} pages at 20 events of history, {large} at 120"
