"""The SQLite store: events, their deliveries, and what has been announced.

A delivery is written here, in the same transaction as its event, before
anything is sent: that is what makes a crash lose nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from statusd.events import Event, EventKind
from statusd.model import Announced
from statusd.outbox.queries import Queries
from statusd.outbox.records import (
    CANCELLED,
    DELETE,
    FAILED,
    PENDING,
    POST,
    SENDING,
    SENT,
    SUPERSEDED,
    WAITING,
    Delivery,
    Planned,
    StoredEvent,
    delivery_from_row,
    idempotency_key,
    message_json,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    level TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at REAL NOT NULL,
    body TEXT NOT NULL,
    previous TEXT,
    retracted_at REAL,
    retracted_by TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL REFERENCES events(id),
    channel TEXT NOT NULL,
    action TEXT NOT NULL DEFAULT 'post',
    state TEXT NOT NULL,
    message TEXT,
    idempotency_key TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    deadline REAL NOT NULL,
    remote_id TEXT,
    remote_url TEXT,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    sent_at REAL,
    UNIQUE (event_id, channel, action)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, state, next_attempt);
CREATE TABLE IF NOT EXISTS channel_state (
    channel TEXT PRIMARY KEY,
    paused_until REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS announced (
    target TEXT PRIMARY KEY,
    level TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    stamp TEXT NOT NULL,
    event_id TEXT,
    since REAL NOT NULL
);
"""

class Store(Queries):
    """The outbox's durable state in one SQLite file (WAL mode)."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            # SQLite creates files 0644 (and its -wal/-shm like the database):
            # create it 0666 less the umask, so the group (desk staff) may write.
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o666))
            self._db = sqlite3.connect(path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        # Short: the daemon's event loop waits this long when another program holds the lock.
        self._db.execute("PRAGMA busy_timeout = 1000")
        if not readonly:
            # WAL + NORMAL: a killed process loses no committed transaction.
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- recording -------------------------------------------------------

    def announced(self) -> dict[str, Announced]:
        rows = self._db.execute("SELECT * FROM announced").fetchall()
        return {
            row["target"]: Announced(row["level"], row["fingerprint"], row["stamp"], row["event_id"], row["since"])
            for row in rows
        }

    def has_event(self, event_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM events WHERE id = ?", (event_id,)).fetchone() is not None

    def record(
        self,
        updates: Sequence[tuple[Event, Iterable[Planned]]],
        announced: Mapping[str, Announced],
        deadline: float,
        now: float | None = None,
    ) -> list[str]:
        """Store events, their deliveries and the new announced state in one transaction.

        Older deliveries of the same target that were never sent are
        superseded. Returns the ids of the events that were new.
        """
        now = time.time() if now is None else now
        new: list[str] = []
        batch = [event.id for event, _ in updates]
        with self._transaction():
            before = self.announced()
            for event, planned in updates:
                if self._insert_event(event, now, before.get(str(event.target))):
                    new.append(event.id)
                    self._supersede(event, batch)
                    for item in planned:
                        self._insert_delivery(event.id, item, now, deadline)
            for target, state in announced.items():
                self._db.execute(
                    "INSERT OR REPLACE INTO announced VALUES (?, ?, ?, ?, ?, ?)",
                    (target, state.level, state.fingerprint, state.stamp, state.event_id, state.since),
                )
        return new

    def _insert_event(self, event: Event, now: float, previous: Announced | None) -> bool:
        # `previous` is what had been said of the target: undo restores it.
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO events (id, kind, target, level, author, created_at, body, previous)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
            f" WHERE target = ? AND kind IN ({kind_marks}) AND id NOT IN ({marks}))",
            (SUPERSEDED, f"superseded by {event.id}", time.time(), PENDING, str(event.target), *kinds, *batch),
        )

    def _insert_delivery(self, event_id: str, item: Planned, now: float, deadline: float) -> None:
        state = FAILED if item.message is None else PENDING
        self._db.execute(
            "INSERT OR IGNORE INTO deliveries (event_id, channel, state, message, idempotency_key,"
            " next_attempt, deadline, last_error, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id, item.channel, state, message_json(item.message),
                idempotency_key(event_id, item.channel), now + item.delay,
                now + item.delay + deadline, item.error, now, now,
            ),
        )

    # -- the workers' side -----------------------------------------------

    def next_due(self, channel: str) -> Delivery | None:
        """The waiting delivery of `channel` that is due first (oldest first on a tie)."""
        row = self._db.execute(
            "SELECT * FROM deliveries WHERE channel = ? AND state IN (?, ?)"
            " ORDER BY next_attempt, id LIMIT 1",
            (channel, *WAITING),
        ).fetchone()
        return delivery_from_row(row) if row else None

    def delivery(self, delivery_id: int) -> Delivery | None:
        row = self._db.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return delivery_from_row(row) if row else None

    def postpone(self, delivery_id: int, until: float, reason: str) -> None:
        """Wait without counting an attempt (e.g. for the thread's earlier post)."""
        self._update(delivery_id, "next_attempt = ?, last_error = ?", until, reason)

    def mark_sending(self, delivery_id: int) -> None:
        self._update(delivery_id, "state = ?, attempts = attempts + 1", SENDING)

    def mark_sent(self, delivery_id: int, remote_id: str, url: str | None) -> None:
        self._update(
            delivery_id, "state = ?, remote_id = ?, remote_url = ?, sent_at = ?, last_error = NULL",
            SENT, remote_id, url, time.time(),
        )

    def mark_retry(self, delivery_id: int, next_attempt: float, error: str) -> None:
        self._update(delivery_id, "state = ?, next_attempt = ?, last_error = ?", PENDING, next_attempt, error)

    def mark_failed(self, delivery_id: int, error: str) -> None:
        self._update(delivery_id, "state = ?, last_error = ?", FAILED, error)

    def _update(self, delivery_id: int, assignments: str, *values: Any) -> None:
        self._db.execute(
            f"UPDATE deliveries SET {assignments}, updated_at = ? WHERE id = ?",
            (*values, time.time(), delivery_id),
        )

    def pause(self, channel: str, until: float, reason: str) -> None:
        """Remember a rate-limit pause so `statusd show` can tell it."""
        self._db.execute(
            "INSERT OR REPLACE INTO channel_state VALUES (?, ?, ?)", (channel, until, reason)
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # -- retraction ------------------------------------------------------

    def retract(self, event_id: str, by: str, restore: Announced | None, restore_target: bool) -> tuple[int, int]:
        """Take an event back: cancel its unsent posts, queue deletion of sent ones.

        With `restore_target`, what had been said of the target before it is
        said again (None: nothing had been, i.e. open). Returns (cancelled, deletions).
        """
        now = time.time()
        with self._transaction():
            cancelled = self._db.execute(
                "UPDATE deliveries SET state = ?, last_error = ?, updated_at = ?"
                " WHERE event_id = ? AND action = ? AND state = ?",
                (CANCELLED, f"retracted by {by}", now, event_id, POST, PENDING),
            ).rowcount
            deletions = self._db.execute(
                "INSERT OR IGNORE INTO deliveries (event_id, channel, action, state, message,"
                " idempotency_key, next_attempt, deadline, created_at, updated_at)"
                " SELECT event_id, channel, ?, ?, message, idempotency_key || '-delete', ?, ?, ?, ?"
                " FROM deliveries WHERE event_id = ? AND action = ? AND state IN (?, ?)",
                (DELETE, PENDING, now, now + 86400.0, now, now, event_id, POST, SENT, SENDING),
            ).rowcount
            self._db.execute(
                "UPDATE events SET retracted_at = ?, retracted_by = ? WHERE id = ?", (now, by, event_id)
            )
            if restore_target:
                target = self._db.execute("SELECT target FROM events WHERE id = ?", (event_id,)).fetchone()[0]
                if restore is None:
                    self._db.execute("DELETE FROM announced WHERE target = ?", (target,))
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO announced VALUES (?, ?, ?, ?, ?, ?)",
                        (target, restore.level, restore.fingerprint, restore.stamp, restore.event_id, restore.since),
                    )
        return cancelled, deletions


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")




__all__ = [
    "CANCELLED", "DELETE", "FAILED", "PENDING", "POST", "SENDING", "SENT", "SUPERSEDED", "WAITING",
    "Delivery", "Planned", "Store", "StoredEvent", "idempotency_key",
]
