"""Reading the store: for the workers, threads, people (show, history, undo), the web and /readyz."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from statusd.events import STAFF_KINDS, Event
from statusd.outbox.dialect import Dialect
from statusd.outbox.records import (
    DELETE,
    FAILED,
    PENDING,
    POST,
    SENDING,
    SENT,
    WAITING,
    Delivery,
    Row,
    StoredEvent,
    delivery_from_row,
    stored_from_row,
)

# Recent events the web reads back (CAP needs the start of any ongoing closure).
HISTORY = 100
_STAFF = tuple(kind.value for kind in STAFF_KINDS)
_STAFF_MARKS = ", ".join("?" * len(_STAFF))
# Whether event `ne` makes an earlier event `oe` of the same target stale: a staff update
# makes every earlier one stale, an automatic post only an earlier one of its own kind.
# Events recorded together (same created_at) all stand; a retracted one replaces nothing.
_REPLACES = (f"ne.target = oe.target AND ne.created_at > oe.created_at AND ne.retracted_at IS NULL"
             f" AND (ne.kind IN ({_STAFF_MARKS}) OR ne.kind = oe.kind)")
# A channel's latest sent posts (deliveries_sent), which `last_carried` looks through before the target's own.
_LATEST_POSTS = ("(SELECT * FROM deliveries WHERE channel = ? AND action = ? AND state = ?"
                 " ORDER BY sent_at DESC LIMIT 32) d CROSS JOIN events e")


class _Newest(Protocol):
    def newest_events(self, limit: int) -> list[Event]: ...


def recent_events(store: _Newest, limit: int = HISTORY) -> list[Event]:
    """The latest events, newest first."""
    return store.newest_events(limit)


class Rows(Protocol):
    """What running a statement gives back, in both stores (sqlite3's cursor, or rows read whole)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    """A connection as the shared SQL uses it: `?` placeholders, rows by name or position."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows: ...


class Queries:
    """The read-only half of the store; `SqlStore` adds the writing."""

    _db: Db
    dialect: Dialect

    def pauses(self, now: float | None = None) -> dict[str, tuple[float, str]]:
        now = time.time() if now is None else now
        rows = self._db.execute(
            "SELECT * FROM channel_state WHERE paused_until > ?", (now,)
        ).fetchall()
        return {row["channel"]: (row["paused_until"], row["reason"]) for row in rows}

    def site_events(self, site: str, before_seq: int, limit: int = 200) -> Iterator[tuple[int, Event, bool]]:
        """Earlier status events of a site and its services, newest first: (seq, event, retracted).

        Read at once, each event decoded as the caller comes to it: the crisis thread stops at
        the incident's start, mostly a few events back (decoding all 200 was 3 ms a post).
        """
        rows = self._db.execute(
            "SELECT seq, body, retracted_at FROM events WHERE kind = 'status_changed'"
            f" AND (target = ? OR target {self.dialect.like} ?) AND seq < ? ORDER BY seq DESC LIMIT ?",
            (site, f"{site}/%", before_seq, limit),
        ).fetchall()
        return ((r["seq"], Event.from_json(r["body"]), r["retracted_at"] is not None) for r in rows)

    def event(self, event_id: str) -> StoredEvent | None:
        """One event by id, or by a unique prefix of its id (as people type it)."""
        # A whole id (the desk's page, `statusd history`, each announced target at start) by the
        # index: the prefix's LIKE reads every event (5 ms at 20,000 events, 50 of them a desk page).
        if (whole := self.stored_event(event_id)) is not None:
            return whole
        rows = self._db.execute(
            f"SELECT * FROM events WHERE id {self.dialect.like} ? ORDER BY seq DESC LIMIT 2", (event_id + "%",)
        ).fetchall()
        return stored_from_row(rows[0]) if len(rows) == 1 else None

    def stored_event(self, event_id: str) -> StoredEvent | None:
        """One event by its whole id (an index look-up; `event` scans for a prefix)."""
        row = self._db.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        return stored_from_row(row) if row else None

    def is_retracted(self, event_id: str) -> bool:
        row = self._db.execute("SELECT retracted_at FROM events WHERE id = ?", (event_id,)).fetchone()
        return row is not None and row["retracted_at"] is not None

    def latest_event(self, kinds: Sequence[str]) -> StoredEvent | None:
        """The newest event of these kinds that has not been retracted."""
        marks = ", ".join("?" * len(kinds))
        row = self._db.execute(
            f"SELECT * FROM events WHERE retracted_at IS NULL AND kind IN ({marks})"
            " ORDER BY seq DESC LIMIT 1", tuple(kinds),
        ).fetchone()
        return stored_from_row(row) if row else None

    def post_for(self, event_id: str, channel: str) -> Delivery | None:
        row = self._db.execute(
            "SELECT * FROM deliveries WHERE event_id = ? AND channel = ? AND action = ?",
            (event_id, channel, POST),
        ).fetchone()
        return delivery_from_row(row) if row else None

    def recent(self, limit: int = 10) -> list[tuple[Event, float, list[Delivery]]]:
        """The last `limit` events, newest first, each with its deliveries."""
        events = self._db.execute(
            "SELECT id, body, created_at FROM events ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        result = []
        for row in events:
            deliveries = self._db.execute(
                "SELECT * FROM deliveries WHERE event_id = ? ORDER BY channel, action DESC", (row["id"],)
            ).fetchall()
            result.append((Event.from_json(row["body"]), row["created_at"], [delivery_from_row(d) for d in deliveries]))
        return result

    def newest_events(self, limit: int) -> list[Event]:
        rows = self._db.execute("SELECT body FROM events ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [Event.from_json(row["body"]) for row in rows]

    # -- for the workers: order per target, what a channel carries, claimed posts ----------
    # Each is asked before every post, so each reads a few rows however long the history: the
    # tables are joined in the order written (CROSS JOIN: SQLite keeps that order, which its
    # planner, without statistics, once chose worse; PostgreSQL plans it as any join), each
    # step found by an index (schema.py's step 2).

    def superseded_by(self, delivery: Delivery) -> str | None:
        """The id of a newer event whose post on the same channel makes this post stale."""
        # The post's event first, so that its target and time reach the planner as values: joined,
        # PostgreSQL guesses a third of the events newer than a row it has not read, and reads the
        # whole channel (a hash join) or every event newest first (for the LIMIT) to find the
        # usual none. `+ne.seq`: sorting the few found, never walking an index in seq order, which
        # the generic plan of a prepared statement (psycopg prepares after 5 runs) chose: 4 ms at 20,000.
        post = self._db.execute("SELECT target, kind, created_at FROM events WHERE id = ?",
                                (delivery.event_id,)).fetchone()
        if post is None:
            return None
        row = self._db.execute(
            # The target's newer events (events_target_created), their post here (by its unique key).
            "SELECT ne.id FROM events ne CROSS JOIN deliveries n"
            " WHERE ne.target = ? AND ne.created_at > ? AND ne.retracted_at IS NULL"
            f" AND (ne.kind IN ({_STAFF_MARKS}) OR ne.kind = ?)"
            " AND n.event_id = ne.id AND n.channel = ? AND n.action = ? AND n.id != ?"
            " ORDER BY +ne.seq DESC LIMIT 1",
            (post["target"], post["created_at"], *_STAFF, post["kind"], delivery.channel, POST, delivery.id),
        ).fetchone()
        return str(row["id"]) if row else None

    def unresolved_before(self, delivery: Delivery) -> Delivery | None:
        """An earlier post of the same target on the same channel that may or may not be out.

        Until it is proved there or absent, a newer post must wait: sent first, the
        earlier one could otherwise land after it.
        """
        row = self._db.execute(
            # The post's event, the channel's waiting posts (deliveries_due: the states as a list,
            # where an OR of the two read every delivery the channel ever had), their events.
            "SELECT o.* FROM events ne CROSS JOIN deliveries o CROSS JOIN events oe"
            f" WHERE ne.id = ? AND o.channel = ? AND o.action = ? AND o.id != ? AND oe.id = o.event_id"
            f" AND {_REPLACES} AND o.state IN (?, ?) AND (o.state = ? OR o.uncertain = 1)"
            " ORDER BY o.next_attempt LIMIT 1",
            (delivery.event_id, delivery.channel, POST, delivery.id, *_STAFF, SENDING, PENDING, SENDING),
        ).fetchone()
        return delivery_from_row(row) if row else None

    def last_carried(self, channel: str, target: str) -> Delivery | None:
        """The newest post this channel carries (sent, not deleted) about `target`."""
        # The channel's latest posts first, then the target's own: a target the channel posts often
        # is among the latest; one it rarely (a service) or never posted has few events. Walking the
        # channel's posts until one is about `target` read all of them for those (10 ms at 2,000).
        for source, first in ((_LATEST_POSTS, (channel, POST, SENT)), ("events e CROSS JOIN deliveries d", ())):
            row = self._db.execute(
                # A deletion looked up by the post's own key (event, channel, action: unique), one
                # row: a NOT EXISTS let PostgreSQL read every sent post of the channel for it.
                f"SELECT d.* FROM {source}"
                " WHERE e.id = d.event_id AND e.target = ? AND d.channel = ? AND d.action = ? AND d.state = ?"
                " AND COALESCE((SELECT x.state FROM deliveries x WHERE x.event_id = d.event_id"
                " AND x.channel = d.channel AND x.action = ?), '') NOT IN (?, ?, ?)"
                " ORDER BY d.sent_at DESC LIMIT 1",
                (*first, target, channel, POST, SENT, DELETE, PENDING, SENDING, SENT),
            ).fetchone()
            if row:
                return delivery_from_row(row)
        return None

    def claimed(self, delivery: Delivery, since: float) -> frozenset[str]:
        """Remote ids of this channel's posts since `since` that other deliveries own."""
        rows = self._db.execute(
            "SELECT remote_id FROM deliveries WHERE channel = ? AND action = ? AND state = ?"
            " AND id != ? AND remote_id IS NOT NULL AND remote_id != '' AND sent_at >= ?",
            (delivery.channel, POST, SENT, delivery.id, since),
        ).fetchall()
        return frozenset(str(row["remote_id"]) for row in rows)

    def waiting(self) -> dict[str, int]:
        """Per channel, the deliveries not yet done (pending or in flight)."""
        rows = self._db.execute(
            "SELECT channel, COUNT(*) AS n FROM deliveries WHERE state IN (?, ?) GROUP BY channel", WAITING,
        ).fetchall()
        return {row["channel"]: row["n"] for row in rows}

    def retry_depth(self) -> dict[str, int]:
        """Per channel, the deliveries waiting for another attempt, or in one (a failure is on record)."""
        rows = self._db.execute(
            # The states as a list first, so the index finds the waiting rows (an OR read them all).
            "SELECT channel, COUNT(*) AS n FROM deliveries WHERE state IN (?, ?) AND ((state = ? AND attempts > 0)"
            " OR (state = ? AND last_error IS NOT NULL)) GROUP BY channel",
            (PENDING, SENDING, PENDING, SENDING),
        ).fetchall()
        return {row["channel"]: row["n"] for row in rows}

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state").fetchall()
        return {row["state"]: row["n"] for row in rows}


    # -- for the budgets and the health report ----------------------------------------

    def sent_since(self, channel: str, since: float) -> int:
        """How many posts this channel sent after `since`."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE channel = ? AND action = ? AND state = ?"
            " AND sent_at > ?", (channel, POST, SENT, since)).fetchone()
        return int(row[0])

    def oldest_sent(self, channel: str, since: float) -> float | None:
        row = self._db.execute(
            "SELECT MIN(sent_at) FROM deliveries WHERE channel = ? AND action = ? AND state = ?"
            " AND sent_at > ?", (channel, POST, SENT, since)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def waiting_staff(self, channel: str, automatic: Sequence[str]) -> int:
        """Posts of this channel still to send whose event is not one of the `automatic` kinds."""
        marks = ", ".join("?" * len(automatic))
        row = self._db.execute(
            "SELECT COUNT(*) FROM deliveries d JOIN events e ON e.id = d.event_id"
            f" WHERE d.channel = ? AND d.action = ? AND d.state IN (?, ?) AND e.kind NOT IN ({marks})",
            (channel, POST, *WAITING, *automatic)).fetchone()
        return int(row[0])

    def last_outcome(self, channel: str) -> tuple[str, str, float] | None:
        """The state, reason and time of the channel's last finished post (sent or failed)."""
        # The newest of each state, each one step down its index (deliveries_done): one query for
        # both sorted every sent post the channel ever had.
        found: list[Row] = [row for state in (SENT, FAILED) if (row := self._db.execute(
            "SELECT state, last_error, updated_at, id FROM deliveries WHERE channel = ? AND action = ?"
            " AND state = ? ORDER BY updated_at DESC, id DESC LIMIT 1", (channel, POST, state)).fetchone())]
        if not found:
            return None
        row = max(found, key=lambda one: (float(one[2]), int(one[3])))
        return (str(row[0]), str(row[1] or ""), float(row[2]))
