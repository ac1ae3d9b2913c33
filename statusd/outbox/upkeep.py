"""The store's upkeep: the write guard that keeps `trouble`, transactions, probing,
pruning old history, and taking an update back."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

from statusd.model import Announced
from statusd.outbox import probe
from statusd.outbox.queries import Queries
from statusd.outbox.records import (
    CANCELLED,
    DELETE,
    PENDING,
    POST,
    SENDING,
    SENT,
    STORE_ERRORS,
    SUPERSEDED,
    WAITING,
)

P = ParamSpec("P")
R = TypeVar("R")


def writing(method: Callable[P, R]) -> Callable[P, R]:
    """A write: its failure (disk full, locked) is kept in `trouble` until it can be made.

    Recording an event and the workers' small marks are told apart: a mark that
    still fits must not hide that no new event can be recorded.
    """
    kind = "record" if method.__name__ in ("record", "finish", "retract", "probe") else "marks"

    @wraps(method)
    def write(*args: P.args, **kwargs: P.kwargs) -> R:
        store = args[0]
        assert isinstance(store, Upkeep)
        try:
            result = method(*args, **kwargs)
        except STORE_ERRORS as err:
            store.troubles[kind] = f"the store {store.label} cannot record: {err}"
            raise
        store.troubles.pop(kind, None)
        return result

    return write


class Upkeep(Queries):
    """What the store does besides recording and the workers' marks."""

    # Where the store is, for logs and errors: a file's path, or a database without its password.
    label: str
    troubles: dict[str, str]
    # A SQLite store's file (None: a database server's).
    path: Path | None = None

    @property
    def trouble(self) -> str | None:
        """Why the store cannot record now, or None."""
        return next(iter(self.troubles.values()), None)

    def _transaction(self) -> AbstractContextManager[None]:
        """One write transaction, the store's writers taking turns (each store says how)."""
        raise NotImplementedError

    def data_version(self) -> int:
        """Changes whenever another connection (another program) commits to the store."""
        raise NotImplementedError

    def checkpoint(self) -> None:
        """Keep the store's files small (SQLite's write-ahead log); nothing to do elsewhere."""

    @writing
    def probe(self) -> None:
        """A small committed write, as recording an event makes: raises if none can be made."""
        probe.write(self._db.execute, self._transaction, self.dialect, self.path)

    def prune(self, keep: float, now: float | None = None, batch: int = 500) -> int:
        """Forget events older than `keep` seconds, a batch at a time; the number forgotten.

        Kept whatever their age: what is announced now, any event with a
        delivery still waiting, and one whose deliveries are not all recorded.
        Not a `writing` step: housekeeping that fails is logged and tried again,
        and must not leave /readyz unready for an hour.
        """
        cutoff = (time.time() if now is None else now) - keep
        with self._transaction():
            ids = [row[0] for row in self._db.execute(
                "SELECT id FROM events e WHERE created_at < ?"
                " AND id NOT IN (SELECT event_id FROM announced WHERE event_id IS NOT NULL)"
                " AND id NOT IN (SELECT event_id FROM unfinished)"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN (?, ?))"
                " ORDER BY seq LIMIT ?", (cutoff, *WAITING, batch),
            )]
            marks = ", ".join("?" * len(ids))
            if ids:
                self._db.execute(f"DELETE FROM deliveries WHERE event_id IN ({marks})", ids)
                self._db.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)
        return len(ids)

    # -- retraction ------------------------------------------------------

    @writing
    def retract(self, event_id: str, by: str, restore: Announced | None, restore_target: bool) -> tuple[int, int]:
        """Take an event back: cancel its unsent posts, queue deletion of sent ones.

        A post that may have gone out is not cancelled blindly: its worker proves
        it there (then the queued deletion removes it) or absent (then it is cancelled).

        With `restore_target`, what had been said of the target before it is
        said again (None: nothing had been, i.e. open). Returns (cancelled, deletions).
        """
        now = time.time()
        with self._transaction():
            cancelled = self._db.execute(
                "UPDATE deliveries SET state = ?, last_error = ?, updated_at = ?"
                " WHERE event_id = ? AND action = ? AND state = ? AND uncertain = 0",
                (CANCELLED, f"retracted by {by}", now, event_id, POST, PENDING),
            ).rowcount
            deletions = self._db.execute(self.dialect.insert_ignore(
                "INSERT INTO deliveries (event_id, channel, action, state, message,"
                " idempotency_key, next_attempt, deadline, created_at, updated_at)"
                " SELECT event_id, channel, ?, ?, message, idempotency_key || '-delete', ?, ?, ?, ?"
                " FROM deliveries WHERE event_id = ? AND action = ?"
                " AND (state IN (?, ?) OR (state = ? AND uncertain = 1))"),
                (DELETE, PENDING, now, now + 86400.0, now, now, event_id, POST, SENT, SENDING, PENDING),
            ).rowcount
            self._db.execute(
                "UPDATE events SET retracted_at = ?, retracted_by = ? WHERE id = ?", (now, by, event_id)
            )
            # Taken back before all its deliveries were recorded (a crash between): none are owed now.
            self._db.execute("DELETE FROM unfinished WHERE event_id = ?", (event_id,))
            if restore_target:
                target = self._db.execute("SELECT target FROM events WHERE id = ?", (event_id,)).fetchone()[0]
                if restore is None:
                    self._db.execute("DELETE FROM announced WHERE target = ?", (target,))
                else:
                    self._db.execute(self.dialect.upsert("announced", "target", ANNOUNCED), (
                        target, restore.level, restore.fingerprint, restore.stamp, restore.event_id, restore.since))
                    self._revive(restore.event_id, event_id, now)
        return cancelled, deletions

    def _revive(self, restored: str | None, retracted: str, now: float) -> None:
        """The restored update's posts that the taken-back one had superseded go out after all.

        Otherwise the store would say the restored status was announced while the
        channels whose post was superseded never carried it.
        """
        if restored is None:
            return
        self._db.execute(
            "UPDATE deliveries SET state = ?, last_error = NULL, next_attempt = ?,"
            " deadline = ? + (deadline - created_at), updated_at = ?"
            " WHERE event_id = ? AND action = ? AND state = ? AND last_error = ?",
            (PENDING, now, now, now, restored, POST, SUPERSEDED, f"superseded by {retracted}"),
        )


ANNOUNCED = ("target", "level", "fingerprint", "stamp", "event_id", "since")
