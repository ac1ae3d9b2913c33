"""Web Push subscriptions and each fan-out's progress, in their own SQLite file (push.sqlite).

Self-contained on purpose (no import of the outbox store), so that it can move
behind its own backend later. What is kept per subscription is exactly what
the page's privacy note says: the push endpoint and its two keys, the site,
the kinds and language chosen, and the day it was made. No cookie, address or
browser name ever reaches this file.

A fan-out (one outbox delivery of one message to every matching subscription)
is a *job*: its recipients are frozen when it starts, and each recipient's row
moves PENDING → CLAIMED (about to be sent) → ACCEPTED, GONE or REFUSED. Only
CLAIMED rows are in doubt after a crash; they are sent again with the same
Topic. Every method is synchronous: callers run them in a thread.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FILE_NAME = "push.sqlite"
PENDING, CLAIMED, ACCEPTED, GONE, REFUSED = 0, 1, 2, 3, 4
KINDS = ("status", "all")  # closures and emergencies only; or also seats and queues
JOB_HISTORY = 7 * 86400.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id INTEGER PRIMARY KEY,
    endpoint TEXT NOT NULL,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    site TEXT NOT NULL,
    kinds TEXT NOT NULL CHECK (kinds IN ('status', 'all')),
    language TEXT NOT NULL,
    created TEXT NOT NULL,
    UNIQUE (endpoint, site)
);
CREATE INDEX IF NOT EXISTS subscriptions_for ON subscriptions (site, language, kinds);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    total INTEGER NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pushes (
    key TEXT NOT NULL,
    sub INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key, sub)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Subscription:
    """One browser's push subscription for one site, with the patron's choices."""

    endpoint: str
    p256dh: str
    auth: str
    site: str
    kinds: str
    language: str


@dataclass(frozen=True)
class Recipient:
    """A row of a job: the subscription's id and what encrypting and sending to it needs."""

    id: int
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class Progress:
    """How far a job is: recipients in all, and how many each outcome has."""

    total: int
    accepted: int
    gone: int
    refused: int
    left: int


class Subscriptions:
    """The push.sqlite file: subscriptions, jobs and per-recipient progress."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit reaches the OS at once (a killed process loses nothing), fsync at checkpoints.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- subscriptions -------------------------------------------------------

    def subscribe(self, sub: Subscription, today: str | None = None) -> None:
        """Add or change one site's subscription; the creation day is kept from the first time."""
        day = today or datetime.now(UTC).date().isoformat()
        with self._lock:
            self._db.execute(
                "INSERT INTO subscriptions (endpoint, p256dh, auth, site, kinds, language, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint, site) DO UPDATE SET "
                "p256dh = excluded.p256dh, auth = excluded.auth, kinds = excluded.kinds, "
                "language = excluded.language",
                (sub.endpoint, sub.p256dh, sub.auth, sub.site, sub.kinds, sub.language, day))

    def subscribe_many(self, subs: Iterable[Subscription], today: str) -> None:
        """Many at once (tests and benchmarks fill the file this way)."""
        rows = [(s.endpoint, s.p256dh, s.auth, s.site, s.kinds, s.language, today) for s in subs]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO subscriptions (endpoint, p256dh, auth, site, kinds, language, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def unsubscribe(self, endpoint: str, site: str | None = None) -> int:
        """Forget one site's subscription, or all of an endpoint's; how many were removed."""
        with self._lock:
            if site is None:
                cursor = self._db.execute("DELETE FROM subscriptions WHERE endpoint = ?", (endpoint,))
            else:
                cursor = self._db.execute("DELETE FROM subscriptions WHERE endpoint = ? AND site = ?",
                                          (endpoint, site))
            return cursor.rowcount

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM subscriptions").fetchone()[0])

    def all(self) -> list[Subscription]:
        with self._lock:
            rows = self._db.execute(
                "SELECT endpoint, p256dh, auth, site, kinds, language FROM subscriptions ORDER BY id").fetchall()
        return [Subscription(*row) for row in rows]

    # -- jobs ------------------------------------------------------------------

    def start_job(self, key: str, site: str, language: str, status: bool) -> int:
        """Freeze the recipients of job `key` the first time it is asked for; its size.

        A status change (`status`) goes to every subscription of the site in that
        language; seats and queues only to those that asked for them too.
        """
        with self._lock:
            row = self._db.execute("SELECT total FROM jobs WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return int(row[0])
            kinds = ("status", "all") if status else ("all", "all")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO pushes (key, sub) SELECT ?, id FROM subscriptions "
                    "WHERE site = ? AND language = ? AND kinds IN (?, ?)", (key, site, language, *kinds))
                total = cursor.rowcount
                self._db.execute("INSERT INTO jobs (key, created, total) VALUES (?, ?, ?)",
                                 (key, time.time(), total))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return total

    def claim(self, key: str, limit: int, after: int = 0) -> list[Recipient]:
        """Up to `limit` pending recipients with ids above `after` (a pass's cursor), marked CLAIMED."""
        with self._lock:
            rows = self._db.execute(
                "SELECT p.sub, s.endpoint, s.p256dh, s.auth FROM pushes p JOIN subscriptions s ON s.id = p.sub "
                "WHERE p.key = ? AND p.sub > ? AND p.state = ? ORDER BY p.sub LIMIT ?",
                (key, after, PENDING, limit)).fetchall()
            self._db.executemany("UPDATE pushes SET state = ? WHERE key = ? AND sub = ?",
                                 [(CLAIMED, key, row[0]) for row in rows])
        return [Recipient(*row) for row in rows]

    def reopen(self, key: str) -> int:
        """At the start of an attempt: rows left CLAIMED by an earlier one are pending again."""
        with self._lock:
            return self._db.execute("UPDATE pushes SET state = ? WHERE key = ? AND state = ?",
                                    (PENDING, key, CLAIMED)).rowcount

    def record(self, key: str, outcomes: Sequence[tuple[int, int]]) -> None:
        """Write (subscription id, state) outcomes; GONE also deletes the subscription's rows."""
        gone = [(sub,) for sub, state in outcomes if state == GONE]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("UPDATE pushes SET state = ? WHERE key = ? AND sub = ?",
                                 [(state, key, sub) for sub, state in outcomes])
            if gone:
                # Gone is the endpoint, whatever the site: every row of it goes.
                self._db.executemany("DELETE FROM subscriptions WHERE endpoint = "
                                     "(SELECT endpoint FROM subscriptions WHERE id = ?)", gone)
            self._db.execute("COMMIT")

    def progress(self, key: str) -> Progress:
        with self._lock:
            total = self._db.execute("SELECT total FROM jobs WHERE key = ?", (key,)).fetchone()
            counts = dict(self._db.execute(
                "SELECT p.state, count(*) FROM pushes p WHERE p.key = ? AND (p.state > ? OR EXISTS "
                "(SELECT 1 FROM subscriptions s WHERE s.id = p.sub)) GROUP BY p.state", (key, CLAIMED)).fetchall())
        return Progress(int(total[0]) if total else 0, counts.get(ACCEPTED, 0), counts.get(GONE, 0),
                        counts.get(REFUSED, 0), counts.get(PENDING, 0) + counts.get(CLAIMED, 0))

    def finish(self, key: str) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET finished = 1 WHERE key = ?", (key,))

    def finished(self, key: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT finished FROM jobs WHERE key = ?", (key,)).fetchone()
        return bool(row and row[0])

    def in_doubt(self, key: str) -> list[str]:
        """Endpoints CLAIMED but not recorded: the only ones a crash may have sent to already."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.endpoint FROM pushes p JOIN subscriptions s ON s.id = p.sub "
                "WHERE p.key = ? AND p.state = ?", (key, CLAIMED)).fetchall()
        return [row[0] for row in rows]

    def prune(self, now: float | None = None) -> int:
        """Forget the progress of jobs finished more than a week ago."""
        cutoff = (now or time.time()) - JOB_HISTORY
        with self._lock:
            old = [row[0] for row in self._db.execute(
                "SELECT key FROM jobs WHERE created < ? AND finished = 1", (cutoff,))]
            for key in old:
                self._db.execute("DELETE FROM pushes WHERE key = ?", (key,))
                self._db.execute("DELETE FROM jobs WHERE key = ?", (key,))
        return len(old)


def store_file(state_dir: Path) -> Path:
    """Where the subscriptions live in a state directory."""
    return state_dir / FILE_NAME
