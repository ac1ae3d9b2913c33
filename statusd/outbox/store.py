"""The SQLite store: events, their deliveries, and what has been announced.

A delivery is written here, in the same transaction as its event, before
anything is sent: that is what makes a crash lose nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statusd.channels.base import Message
from statusd.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    level TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL REFERENCES events(id),
    channel TEXT NOT NULL,
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
    UNIQUE (event_id, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, state, next_attempt);
CREATE TABLE IF NOT EXISTS announced (
    target TEXT PRIMARY KEY,
    level TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    stamp TEXT NOT NULL,
    event_id TEXT,
    since REAL NOT NULL
);
"""

PENDING, SENDING, SENT, FAILED, SUPERSEDED = "pending", "sending", "sent", "failed", "superseded"
WAITING = (PENDING, SENDING)


@dataclass(frozen=True)
class Announced:
    """What was last said about a target: its level and a fingerprint of the facts."""

    level: str
    fingerprint: str
    stamp: str = ""
    event_id: str | None = None
    since: float = 0.0


@dataclass(frozen=True)
class Planned:
    """One delivery to record: a channel and its rendered message, or why it could not be."""

    channel: str
    message: Message | None
    error: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Delivery:
    """One message to one channel, and how far it got."""

    id: int
    event_id: str
    channel: str
    state: str
    message: Message | None
    idempotency_key: str
    attempts: int
    next_attempt: float
    deadline: float
    remote_id: str | None
    remote_url: str | None
    last_error: str | None
    created_at: float
    sent_at: float | None


def idempotency_key(event_id: str, channel: str) -> str:
    """Stable for one (event, channel): the same on every retry and after a restart."""
    return "statusd-" + hashlib.sha256(f"{event_id}|{channel}".encode()).hexdigest()[:32]


class Store:
    """The outbox's durable state in one SQLite file (WAL mode)."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout = 5000")
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
            for event, planned in updates:
                if self._insert_event(event, now):
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

    def _insert_event(self, event: Event, now: float) -> bool:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO events (id, kind, target, level, author, created_at, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.id, event.kind.value, str(event.target), event.level.value, event.author, now, event.to_json()),
        )
        return cursor.rowcount == 1

    def _supersede(self, event: Event, batch: Sequence[str]) -> None:
        # Events recorded together (a reopening and a new planned closure) all stand.
        marks = ", ".join("?" * len(batch))
        self._db.execute(
            "UPDATE deliveries SET state = ?, last_error = ?, updated_at = ?"
            f" WHERE state = ? AND event_id IN (SELECT id FROM events WHERE target = ? AND id NOT IN ({marks}))",
            (SUPERSEDED, f"superseded by {event.id}", time.time(), PENDING, str(event.target), *batch),
        )

    def _insert_delivery(self, event_id: str, item: Planned, now: float, deadline: float) -> None:
        state = FAILED if item.message is None else PENDING
        self._db.execute(
            "INSERT OR IGNORE INTO deliveries (event_id, channel, state, message, idempotency_key,"
            " next_attempt, deadline, last_error, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id, item.channel, state, _message_json(item.message),
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
        return _delivery(row) if row else None

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

    # -- reading for people ----------------------------------------------

    def recent(self, limit: int = 10) -> list[tuple[Event, float, list[Delivery]]]:
        """The last `limit` events, newest first, each with its deliveries."""
        events = self._db.execute(
            "SELECT id, body, created_at FROM events ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        result = []
        for row in events:
            deliveries = self._db.execute(
                "SELECT * FROM deliveries WHERE event_id = ? ORDER BY channel", (row["id"],)
            ).fetchall()
            result.append((Event.from_json(row["body"]), row["created_at"], [_delivery(d) for d in deliveries]))
        return result

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state").fetchall()
        return {row["state"]: row["n"] for row in rows}

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _message_json(message: Message | None) -> str | None:
    if message is None:
        return None
    return json.dumps(message.__dict__, ensure_ascii=False)


def _delivery(row: sqlite3.Row) -> Delivery:
    message = Message(**json.loads(row["message"])) if row["message"] else None
    return Delivery(
        id=row["id"], event_id=row["event_id"], channel=row["channel"], state=row["state"],
        message=message, idempotency_key=row["idempotency_key"], attempts=row["attempts"],
        next_attempt=row["next_attempt"], deadline=row["deadline"], remote_id=row["remote_id"],
        remote_url=row["remote_url"], last_error=row["last_error"], created_at=row["created_at"],
        sent_at=row["sent_at"],
    )
