"""The SQLite store: events, their deliveries, and what has been announced.

A delivery is written here, in the same transaction as its event, before
anything is sent: that is what makes a crash lose nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from statusd.events import Event, EventKind
from statusd.model import Announced
from statusd.outbox.contract import Store
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
    WAITING,
    Delivery,
    Planned,
    StoredEvent,
    delivery_from_row,
    idempotency_key,
    message_json,
    stored_from_row,
)
from statusd.outbox.transfer import Transfer
from statusd.outbox.upkeep import ANNOUNCED, Upkeep, writing

# Deliveries per INSERT statement: ten values each, well under SQLite's oldest limit of 999.
INSERT_ROWS = 64


class SqlStore(Transfer, Upkeep):
    """Recording events with their deliveries, and the workers' marks: the SQL both stores share.

    `SqliteStore` (outbox/sqlite.py) and `PostgresStore` (outbox/postgres.py) add the
    connection, the transaction and what else differs; `trouble` says why the last
    write failed, or is None: /readyz and the desk's commands show it, so a full
    disk or a cut database is seen where people look.
    """

    # -- recording -------------------------------------------------------

    def announced(self) -> dict[str, Announced]:
        rows = self._db.execute("SELECT * FROM announced").fetchall()
        return {
            row["target"]: Announced(row["level"], row["fingerprint"], row["stamp"], row["event_id"], row["since"])
            for row in rows
        }

    def has_event(self, event_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM events WHERE id = ?", (event_id,)).fetchone() is not None

    @writing
    def record(
        self,
        updates: Sequence[tuple[Event, Iterable[Planned]]],
        announced: Mapping[str, Announced],
        deadline: float,
        now: float | None = None,
        unfinished: Collection[str] = (),
    ) -> list[str]:
        """Store events, their deliveries and the new announced state in one transaction.

        Older deliveries of the same target that were never sent are
        superseded; one that may have gone out is left to its worker to prove
        there or absent first. Returns the ids of the events that were new.
        An event named in `unfinished` comes with only some of its deliveries:
        it is kept as such until `finish` records the others.
        """
        now = time.time() if now is None else now
        new: list[str] = []
        listed = [(event, list(planned)) for event, planned in updates]  # the events read twice, the deliveries sliced
        batch = [event.id for event, _ in listed]
        with self._transaction():
            before = self.announced()
            last = self._last_created()
            for event, planned in listed:
                if self._insert_event(event, now, before.get(str(event.target))):
                    new.append(event.id)
                    self._supersede(event, batch)
                    # One value for all the event's deliveries (one per channel), after every earlier one.
                    last = round(max(now, last + 1e-6), 6)
                    self._insert_deliveries(event.id, planned, now, last, deadline)
                    if event.id in unfinished:
                        self._db.execute("INSERT INTO unfinished (event_id, created_at) VALUES (?, ?)",
                                         (event.id, last))
            for target, state in announced.items():
                self._db.execute(self.dialect.upsert("announced", "target", ANNOUNCED), (
                    target, state.level, state.fingerprint, state.stamp, state.event_id, state.since))
        return new

    @writing
    def finish(self, rests: Sequence[tuple[str, Iterable[Planned]]], deadline: float) -> dict[str, int]:
        """Record the rest of unfinished events' deliveries, in one transaction; how many each got.

        They take the times their event's first ones took (the same order and hold), but a whole
        `deadline` from now: recorded hours late (a disk full until then), they still get their
        tries. One already recorded (the first ones, given again after a crash) is left as it is.
        """
        finished = {}
        now = time.time()
        with self._transaction():
            for event_id, planned in rests:
                row = self._db.execute(
                    "SELECT u.created_at AS created, e.created_at AS recorded FROM unfinished u"
                    " JOIN events e ON e.id = u.event_id WHERE u.event_id = ?", (event_id,)).fetchone()
                if row is None:  # finished already, or taken back
                    continue
                late = max(0.0, now - row["recorded"])
                finished[event_id] = self._insert_deliveries(
                    event_id, list(planned), row["recorded"], row["created"], deadline + late)
                self._db.execute("DELETE FROM unfinished WHERE event_id = ?", (event_id,))
        return finished

    def unfinished(self) -> list[StoredEvent]:
        """The events recorded with only their first deliveries, oldest first (none but after a crash)."""
        rows = self._db.execute(
            "SELECT e.* FROM unfinished u JOIN events e ON e.id = u.event_id ORDER BY e.seq").fetchall()
        return [stored_from_row(row) for row in rows]

    def _insert_event(self, event: Event, now: float, previous: Announced | None) -> bool:
        # `previous` is what had been said of the target: undo restores it.
        cursor = self._db.execute(
            self.dialect.insert_ignore("INSERT INTO events (id, kind, target, level, author, created_at, body,"
                                       " previous) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            (event.id, event.kind.value, str(event.target), event.level.value, event.author, now,
             event.to_json(), json.dumps(previous.__dict__) if previous else None),
        )
        return cursor.rowcount == 1

    def _supersede(self, event: Event, batch: Sequence[str]) -> None:
        """Unsent posts about the same target that this event makes stale.

        A staff update makes every earlier unsent post of its target stale,
        automatic ones included (staff status always wins); an automatic post
        only replaces an earlier one of its own kind. Events recorded together
        (a reopening and a new planned closure) all stand.
        """
        kinds = [event.kind.value] if event.kind.automatic else [k.value for k in EventKind]
        marks, kind_marks = ", ".join("?" * len(batch)), ", ".join("?" * len(kinds))
        self._db.execute(
            "UPDATE deliveries SET state = ?, last_error = ?, updated_at = ?"
            " WHERE state = ? AND action = 'post' AND event_id IN (SELECT id FROM events"
            f" WHERE target = ? AND kind IN ({kind_marks}) AND id NOT IN ({marks})) AND uncertain = 0",
            (SUPERSEDED, f"superseded by {event.id}", time.time(), PENDING, str(event.target), *kinds, *batch),
        )

    def _insert_deliveries(self, event_id: str, planned: Sequence[Planned], now: float, created: float,
                           deadline: float) -> int:
        """The event's deliveries, a few statements for all (one row each was ~30 µs a channel); how many were new."""
        # Channels without a length limit share one Message (compose): encoded once, not 128 times.
        encoded: dict[int, str | None] = {}
        inserted = 0
        for start in range(0, len(planned), INSERT_ROWS):
            chunk = planned[start:start + INSERT_ROWS]
            rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            values: list[Any] = []
            for item in chunk:
                if id(item.message) not in encoded:
                    encoded[id(item.message)] = message_json(item.message)
                values += (event_id, item.channel, FAILED if item.message is None else PENDING,
                           encoded[id(item.message)], idempotency_key(event_id, item.channel), now + item.delay,
                           now + item.delay + deadline, item.error, created, now)
            inserted += self._db.execute(self.dialect.insert_ignore(
                "INSERT INTO deliveries (event_id, channel, state, message, idempotency_key, next_attempt,"
                f" deadline, last_error, created_at, updated_at) VALUES {rows}"), values).rowcount
        return inserted

    def _last_created(self) -> float:
        """The latest `created_at` of any delivery, one step to the end of its index.

        A channel may derive the post's own key from it (Bluesky's record key is a TID,
        a microsecond timestamp): it must never be the same twice on one channel, so each
        event recorded here takes a value after every delivery's (and after the previous event's).
        """
        row = self._db.execute("SELECT MAX(created_at) FROM deliveries").fetchone()
        return float(row[0]) if row and row[0] is not None else 0.0

    # -- the workers' side -----------------------------------------------

    def together(self) -> AbstractContextManager[None]:
        """Several calls in one transaction: the workers' marks of one event, one commit."""
        return self._transaction()

    def next_due(self, channel: str) -> Delivery | None:
        """The waiting delivery of `channel` that is due first (oldest first on a tie)."""
        row = self._db.execute(
            "SELECT * FROM deliveries WHERE channel = ? AND state IN (?, ?)"
            " ORDER BY next_attempt, id LIMIT 1",
            (channel, *WAITING),
        ).fetchone()
        return delivery_from_row(row) if row else None

    def next_due_many(self, channels: Sequence[str]) -> dict[str, Delivery]:
        """`next_due` of each channel (those with one), in one statement."""
        if not channels:
            return {}
        marks = ", ".join("?" * len(channels))
        rows = self._db.execute(
            "SELECT * FROM (SELECT d.*, ROW_NUMBER() OVER (PARTITION BY channel ORDER BY next_attempt, id) AS due_rank"
            f" FROM deliveries d WHERE channel IN ({marks}) AND state IN (?, ?)) AS due WHERE due_rank = 1",
            (*channels, *WAITING),
        ).fetchall()
        return {row["channel"]: delivery_from_row(row) for row in rows}

    def delivery(self, delivery_id: int) -> Delivery | None:
        row = self._db.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return delivery_from_row(row) if row else None

    @writing
    def postpone(self, delivery_id: int, until: float, reason: str) -> None:
        """Wait without counting an attempt (e.g. for the thread's earlier post)."""
        self._update(delivery_id, "next_attempt = ?, last_error = ?", until, reason)

    @writing
    def mark_looking(self, delivery_id: int) -> None:
        """A look-up is an attempt too: it counts towards the backoff."""
        self._update(delivery_id, "attempts = attempts + 1")

    @writing
    def mark_sending(self, delivery_id: int) -> None:
        # Uncertain from now until an answer is recorded: a crash here leaves it so.
        self._update(delivery_id, "state = ?, attempts = attempts + 1, uncertain = 1", SENDING)

    @writing
    def mark_sent(self, delivery_id: int, remote_id: str, url: str | None) -> None:
        self._update(
            delivery_id,
            "state = ?, remote_id = ?, remote_url = ?, sent_at = ?, last_error = NULL, uncertain = 0",
            SENT, remote_id, url, time.time(),
        )

    @writing
    def mark_absent(self, delivery_id: int) -> None:
        """A look-up proved the earlier attempt made no post."""
        self._update(delivery_id, "uncertain = 0")

    @writing
    def mark_retry(self, delivery_id: int, next_attempt: float, error: str, uncertain: bool = True) -> None:
        self._update(delivery_id, "state = ?, next_attempt = ?, last_error = ?, uncertain = ?",
                     PENDING, next_attempt, error, int(uncertain))

    @writing
    def mark_failed(self, delivery_id: int, error: str) -> None:
        self._update(delivery_id, "state = ?, last_error = ?", FAILED, error)

    @writing
    def mark_superseded(self, delivery_id: int, by: str) -> None:
        self._update(delivery_id, "state = ?, last_error = ?, uncertain = 0", SUPERSEDED, f"superseded by {by}")

    @writing
    def mark_cancelled(self, delivery_id: int, reason: str) -> None:
        self._update(delivery_id, "state = ?, last_error = ?, uncertain = 0", CANCELLED, reason)

    @writing
    def mark_skipped(self, delivery_id: int, reason: str) -> None:
        self._update(delivery_id, "state = ?, last_error = ?, uncertain = 0", SKIPPED, reason)

    def _update(self, delivery_id: int, assignments: str, *values: Any) -> None:
        self._db.execute(
            f"UPDATE deliveries SET {assignments}, updated_at = ? WHERE id = ?",
            (*values, time.time(), delivery_id),
        )

    @writing
    def drop(self, delivery_id: int, reason: str) -> None:
        """Record a delivery as dropped (by its channel's budget): not sent, not failed, never tried again."""
        self._update(delivery_id, "state = ?, last_error = ?", DROPPED, reason)

    @writing
    def pause(self, channel: str, until: float, reason: str) -> None:
        """Remember a rate-limit pause so `statusd show` can tell it."""
        self._db.execute(self.dialect.upsert("channel_state", "channel", ("channel", "paused_until", "reason")),
                         (channel, until, reason))


__all__ = [
    "CANCELLED", "DELETE", "FAILED", "PENDING", "POST", "SENDING", "SENT", "SKIPPED", "SUPERSEDED", "WAITING",
    "Delivery", "Planned", "SqlStore", "Store", "StoredEvent", "idempotency_key",
]
