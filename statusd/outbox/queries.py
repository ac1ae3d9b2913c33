"""Reading the store: for threads, for people (show, history, undo) and for /readyz."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from statusd.events import Event
from statusd.outbox.records import (
    PENDING,
    POST,
    WAITING,
    Delivery,
    StoredEvent,
    delivery_from_row,
    stored_from_row,
)


class Queries:
    """The read-only half of the store; `Store` adds the writing."""

    _db: sqlite3.Connection

    def pauses(self, now: float | None = None) -> dict[str, tuple[float, str]]:
        now = time.time() if now is None else now
        rows = self._db.execute(
            "SELECT * FROM channel_state WHERE paused_until > ?", (now,)
        ).fetchall()
        return {row["channel"]: (row["paused_until"], row["reason"]) for row in rows}

    def site_events(self, site: str, before_seq: int, limit: int = 200) -> list[tuple[int, Event, bool]]:
        """Earlier status events of a site and its services, newest first: (seq, event, retracted)."""
        rows = self._db.execute(
            "SELECT seq, body, retracted_at FROM events WHERE kind = 'status_changed'"
            " AND (target = ? OR target LIKE ?) AND seq < ? ORDER BY seq DESC LIMIT ?",
            (site, f"{site}/%", before_seq, limit),
        ).fetchall()
        return [(r["seq"], Event.from_json(r["body"]), r["retracted_at"] is not None) for r in rows]

    def event(self, event_id: str) -> StoredEvent | None:
        """One event by id, or by a unique prefix of its id (as people type it)."""
        rows = self._db.execute(
            "SELECT * FROM events WHERE id LIKE ? ORDER BY seq DESC LIMIT 2", (event_id + "%",)
        ).fetchall()
        return stored_from_row(rows[0]) if len(rows) == 1 else None

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

    def waiting(self) -> dict[str, int]:
        """Per channel, the deliveries not yet done (pending or in flight)."""
        rows = self._db.execute(
            "SELECT channel, COUNT(*) AS n FROM deliveries WHERE state IN (?, ?) GROUP BY channel", WAITING,
        ).fetchall()
        return {row["channel"]: row["n"] for row in rows}

    def retry_depth(self) -> dict[str, int]:
        """Per channel, the deliveries waiting for another attempt."""
        rows = self._db.execute(
            "SELECT channel, COUNT(*) AS n FROM deliveries WHERE state = ? AND attempts > 0 GROUP BY channel",
            (PENDING,),
        ).fetchall()
        return {row["channel"]: row["n"] for row in rows}

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state").fetchall()
        return {row["state"]: row["n"] for row in rows}

