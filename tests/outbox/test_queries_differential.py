"""The checks rewritten for long histories (schema step 2) answer what the queries they replaced answered.

Random small stores, written row by row into the schema (so ties on every time,
retracted events, deletions in every state, staff and automatic kinds, events
recorded together all come up), are asked each check both ways: the store's
query, and the query it replaced (kept here as the reference, as it was before
the rewrite). Where the old query's ORDER BY left a tie, any of the tied rows is
a right answer; `TestTies` says which ties neither query settles.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd.events import STAFF_KINDS, EventKind
from statusd.outbox import queries
from statusd.outbox.records import (
    CANCELLED,
    DELETE,
    DROPPED,
    FAILED,
    PENDING,
    POST,
    SENDING,
    SENT,
    SKIPPED,
    SUPERSEDED,
    Delivery,
)
from statusd.outbox.store import Store

pytestmark = pytest.mark.unit

# -- the reference: the queries as they were before schema step 2 (main's queries.py) -------------

_STAFF = tuple(kind.value for kind in STAFF_KINDS)
_STAFF_MARKS = ", ".join("?" * len(_STAFF))
_REPLACES = (f"ne.target = oe.target AND ne.created_at > oe.created_at AND ne.retracted_at IS NULL"
             f" AND (ne.kind IN ({_STAFF_MARKS}) OR ne.kind = oe.kind)")

# Each without its LIMIT 1 and with its ORDER BY key selected, so every row tied for first is seen.
OLD_SUPERSEDED_BY = (
    "SELECT ne.id AS answer, ne.seq AS k1, 0 AS k2 FROM deliveries n JOIN events ne ON ne.id = n.event_id, events oe"
    f" WHERE oe.id = ? AND n.channel = ? AND n.action = ? AND n.id != ? AND {_REPLACES}"
    " ORDER BY ne.seq DESC")
OLD_UNRESOLVED_BEFORE = (
    "SELECT o.id AS answer, -o.next_attempt AS k1, 0 AS k2 FROM deliveries o JOIN events oe ON oe.id = o.event_id,"
    f" events ne WHERE ne.id = ? AND o.channel = ? AND o.action = ? AND o.id != ? AND {_REPLACES}"
    " AND (o.state = ? OR (o.state = ? AND o.uncertain = 1)) ORDER BY o.next_attempt")
OLD_LAST_CARRIED = (
    "SELECT d.id AS answer, d.sent_at AS k1, 0 AS k2 FROM events e JOIN deliveries d ON d.event_id = e.id"
    " WHERE e.target = ? AND d.channel = ? AND d.action = ? AND d.state = ?"
    " AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.event_id = d.event_id"
    " AND x.channel = d.channel AND x.action != ? AND x.state IN (?, ?, ?))"
    " ORDER BY d.sent_at DESC")
OLD_RETRY_DEPTH = (
    "SELECT channel, COUNT(*) AS n FROM deliveries WHERE (state = ? AND attempts > 0)"
    " OR (state = ? AND last_error IS NOT NULL) GROUP BY channel")
OLD_LAST_OUTCOME = (
    "SELECT state, last_error, updated_at FROM deliveries WHERE channel = ? AND action = ?"
    " AND state IN (?, ?) ORDER BY updated_at DESC, id DESC LIMIT 1")


def tied_first(rows: Sequence[Any], descending: bool, nulls_last: bool) -> set[Any]:
    """The answers of the rows that share the first place of an ORDER BY on (k1, k2), as the engine sorts."""
    if not rows:
        return {None}
    keys = [(row["k1"], row["k2"]) for row in rows]
    present = [key for key in keys if key[0] is not None]
    if present and (nulls_last or not len(present) < len(keys)):
        best = max(present) if descending else min(present)
    else:
        best = (None, 0)
    return {row["answer"] for row, key in zip(rows, keys, strict=True) if key == best}


# -- random stores ---------------------------------------------------------------------------------

TARGETS = ("main", "main/wifi", "annexe")
CHANNELS = ("a", "b")
KINDS = tuple(kind.value for kind in EventKind)
STATES = (PENDING, SENDING, SENT, FAILED, SUPERSEDED, CANCELLED, SKIPPED, DROPPED)
TIMES = (1.0, 2.0, 3.0)  # few values: ties on every time column come up often


@dataclass(frozen=True)
class Row:
    """One delivery row as the test writes it."""

    event: int
    channel: str
    action: str
    state: str
    uncertain: int
    attempts: int
    last_error: str | None
    next_attempt: float
    sent_at: float | None
    updated_at: float


events_st = st.lists(st.tuples(st.sampled_from(TARGETS), st.sampled_from(KINDS), st.sampled_from(TIMES),
                               st.sampled_from((None, None, 5.0))), min_size=1, max_size=7)


def deliveries_st(count: int) -> st.SearchStrategy[list[Row]]:
    one = st.builds(Row, event=st.integers(0, count - 1), channel=st.sampled_from(CHANNELS),
                    action=st.sampled_from((POST, POST, DELETE)), state=st.sampled_from(STATES),
                    uncertain=st.integers(0, 1), attempts=st.integers(0, 1),
                    last_error=st.sampled_from((None, "HTTP 503")), next_attempt=st.sampled_from(TIMES),
                    sent_at=st.sampled_from((None, *TIMES)), updated_at=st.sampled_from(TIMES))
    # (event, channel, action) is unique in the schema.
    return st.lists(one, max_size=16, unique_by=lambda row: (row.event, row.channel, row.action))


stores_st = events_st.flatmap(lambda events: st.tuples(st.just(events), deliveries_st(len(events))))


def fill(store: Store, events: list[tuple[str, str, float, float | None]], rows: list[Row]) -> None:
    db = store._db  # type: ignore[attr-defined]
    db.execute("DELETE FROM deliveries")
    db.execute("DELETE FROM events")
    for number, (target, kind, created, retracted) in enumerate(events):
        db.execute("INSERT INTO events (id, kind, target, level, author, created_at, body, retracted_at)"
                   " VALUES (?, ?, ?, 'closed', 'alice', ?, '{}', ?)",
                   (f"e{number}", kind, target, created, retracted))
    for row in rows:
        message = json.dumps({"text": f"t{row.event}", "language": "en", "link": None, "event_id": f"e{row.event}",
                              "kind": events[row.event][1], "target": events[row.event][0], "level": "closed"})
        db.execute("INSERT INTO deliveries (event_id, channel, action, state, message, idempotency_key, attempts,"
                   " next_attempt, deadline, last_error, created_at, updated_at, sent_at, uncertain)"
                   " VALUES (?, ?, ?, ?, ?, 'k', ?, ?, 99.0, ?, 1.0, ?, ?, ?)",
                   (f"e{row.event}", row.channel, row.action, row.state, message, row.attempts, row.next_attempt,
                    row.last_error, row.updated_at, row.sent_at, row.uncertain))


def all_deliveries(store: Store) -> list[Delivery]:
    db = store._db  # type: ignore[attr-defined]
    return [d for (number,) in db.execute("SELECT id FROM deliveries ORDER BY id").fetchall()
            if (d := store.delivery(number)) is not None]


def reference(store: Store, sql: str, parameters: Sequence[Any], descending: bool) -> set[Any]:
    rows = store._db.execute(sql, parameters).fetchall()  # type: ignore[attr-defined]
    # SQLite sorts NULL first, PostgreSQL last, ascending: so descending, SQLite puts them last.
    sqlite = store.dialect.name == "sqlite"  # type: ignore[attr-defined]
    return tied_first(rows, descending, nulls_last=sqlite == descending)


def differences(store: Store) -> list[str]:
    """Every check whose answer is not one the old query could give."""
    wrong: list[str] = []

    def compare(name: str, new: Any, allowed: set[Any]) -> None:
        if new not in allowed:
            wrong.append(f"{name}: new {new!r}, old {sorted(allowed, key=repr)!r}")

    def ident(found: Delivery | None) -> int | None:
        return None if found is None else found.id

    for d in all_deliveries(store):
        compare(f"superseded_by({d.id})", store.superseded_by(d), reference(
            store, OLD_SUPERSEDED_BY, (d.event_id, d.channel, POST, d.id, *_STAFF), descending=True))
        compare(f"unresolved_before({d.id})", ident(store.unresolved_before(d)), reference(
            store, OLD_UNRESOLVED_BEFORE, (d.event_id, d.channel, POST, d.id, *_STAFF, SENDING, PENDING),
            descending=True))
    for channel in CHANNELS:
        for target in TARGETS:
            compare(f"last_carried({channel}, {target})", ident(store.last_carried(channel, target)), reference(
                store, OLD_LAST_CARRIED, (target, channel, POST, SENT, POST, PENDING, SENDING, SENT),
                descending=True))
        row = store._db.execute(OLD_LAST_OUTCOME, (channel, POST, SENT, FAILED)).fetchone()  # type: ignore
        old = (str(row[0]), str(row[1] or ""), float(row[2])) if row else None
        compare(f"last_outcome({channel})", store.last_outcome(channel), {old})
    rows = store._db.execute(OLD_RETRY_DEPTH, (PENDING, SENDING)).fetchall()  # type: ignore[attr-defined]
    old_depth = {row["channel"]: row["n"] for row in rows}
    if store.retry_depth() != old_depth:
        wrong.append(f"retry_depth: new {store.retry_depth()!r}, old {old_depth!r}")
    return wrong


class TestSameAnswers:
    """On any store, each rewritten check gives an answer the query it replaced could give."""

    # `last_carried` looks through the channel's latest posts, then the target's: with a window of
    # one post, the second way is taken in these small stores too.
    @pytest.mark.parametrize("window", [32, 1])
    @settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
    @given(drawn=stores_st)
    def test_random_stores(self, store: Store, window: int, drawn: tuple[list[Any], list[Row]],
                           monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(queries, "_LATEST_POSTS", queries._LATEST_POSTS.replace("LIMIT 32", f"LIMIT {window}"))
        events, rows = drawn
        fill(store, events, rows)
        assert differences(store) == []


# -- ties: what neither the old nor the new query decides -------------------------------------------

class TestTies:
    """Where posts tie on the time a check orders by, the answer depends on how the engine happens to read."""

    def test_last_carried_on_equal_sent_at(self, store: Store) -> None:
        """Two posts of one target sent at the same instant (clock resolution, a restored export): the
        reference allows either; the store's answer is whatever its index order gives."""
        fill(store, [("main", "status_changed", 1.0, None), ("main", "status_changed", 2.0, None)],
             [Row(0, "a", POST, SENT, 0, 1, None, 1.0, 3.0, 3.0), Row(1, "a", POST, SENT, 0, 1, None, 1.0, 3.0, 3.0)])
        allowed = reference(store, OLD_LAST_CARRIED, ("main", "a", POST, SENT, POST, PENDING, SENDING, SENT),
                            descending=True)
        assert len(allowed) == 2  # a tie the query does not settle
        found = store.last_carried("a", "main")
        assert found is not None and found.id in allowed
