"""Login throttling: per account and per address, with a lockout that says when to try again.

Failures are counted in the store, so a restart does not reset them. After
`ACCOUNT_FREE` failures an account is locked for a minute, doubling with each
further failure up to an hour; an address gets more room (a library's desks
may share one public address) before the same rule applies to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from statusd.desk.db import DeskDb

ACCOUNT_FREE = 5
ADDRESS_FREE = 20
FIRST_LOCK = 60.0
MAX_LOCK = 3600.0
FORGET_AFTER = 86400.0  # a failure a day old no longer counts


@dataclass(frozen=True)
class Locked:
    """Why a login is refused without looking at the password, and until when."""

    what: str
    until: float

    def sentence(self, now: float) -> str:
        at = datetime.fromtimestamp(self.until, UTC).strftime("%H:%M:%S UTC")
        minutes = max(1, round((self.until - now) / 60))
        return f"too many failed logins for {self.what}; try again after {at} (in {minutes} min)"


class Limits:
    """Counts failed logins per key ("account:NAME", "address:IP") in the desk tables."""

    def __init__(self, db: DeskDb) -> None:
        self._db = db
        self._put = db.dialect.upsert("desk_failures", "key", ("key", "failures", "last_at", "locked_until"))

    def locked(self, account: str, address: str, now: float | None = None) -> Locked | None:
        """The lock in force on this account or address, if any (the later one)."""
        now = time.time() if now is None else now
        found: Locked | None = None
        for key, what in ((f"account:{account}", f"the account {account}"), (f"address:{address}", "this address")):
            row = self._db.execute("SELECT locked_until FROM desk_failures WHERE key = ?", (key,)).fetchone()
            if row and row[0] > now and (found is None or row[0] > found.until):
                found = Locked(what, row[0])
        return found

    def failed(self, account: str, address: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._count(f"account:{account}", ACCOUNT_FREE, now)
        self._count(f"address:{address}", ADDRESS_FREE, now)

    def succeeded(self, account: str) -> None:
        """A good password clears the account's count (not the address's: others may be guessing)."""
        self._db.execute("DELETE FROM desk_failures WHERE key = ?", (f"account:{account}",))

    def clear(self, account: str) -> None:
        """`statusd user reset` lifts a lock."""
        self.succeeded(account)

    def _count(self, key: str, free: int, now: float) -> None:
        # Read and write as one: in a cluster, guesses at one account arrive on several nodes at once.
        with self._db.transaction():
            row = self._db.execute("SELECT failures, last_at FROM desk_failures WHERE key = ?", (key,)).fetchone()
            failures = 1 if row is None or now - row[1] > FORGET_AFTER else row[0] + 1
            over = failures - free
            until = now + min(FIRST_LOCK * 2 ** min(over - 1, 12), MAX_LOCK) if over > 0 else 0.0
            self._db.execute(self._put, (key, failures, now, until))
