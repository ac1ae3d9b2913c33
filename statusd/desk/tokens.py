"""Personal tokens (the remote command) and page sessions: random, hashed at rest, revocable.

A token is "sdt_<id>_<secret>"; the id names it in `statusd user tokens` and
`revoke`, and only the sha256 of the whole token is stored. A token unused
for longer than the configured idle time no longer works.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from statusd.desk.accounts import Accounts, Person, digest
from statusd.desk.db import DeskDb
from statusd.errors import UserError

TOKEN, SESSION = "token", "session"
PREFIX = "sdt_"
# Writing last_used on every request would turn each read into a write; a minute is precise enough.
TOUCH_EVERY = 60.0


@dataclass(frozen=True)
class Issued:
    """A token as listed: never its secret."""

    id: str
    name: str
    kind: str
    label: str
    created_at: float
    last_used: float
    revoked_at: float | None


@dataclass(frozen=True)
class Grant:
    """A valid token or session: the person behind it, and the session's CSRF secret."""

    person: Person
    token_id: str
    csrf: str


class Refused(Exception):
    """A token that does not let the request in, with the one sentence to show."""


class Tokens:
    """The desk_tokens table."""

    def __init__(self, db: DeskDb, accounts: Accounts) -> None:
        self._db = db
        self._accounts = accounts

    def issue(self, name: str, kind: str, label: str) -> tuple[str, str]:
        """A new token for `name`: (the token, to hand over once; its csrf secret)."""
        token_id, csrf = secrets.token_hex(4), secrets.token_urlsafe(24)
        token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        self._db.execute(
            "INSERT INTO desk_tokens (id, name, hash, kind, label, csrf, created_at, last_used)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (token_id, name, digest(token), kind, label[:100], csrf, now, now))
        return token, csrf

    def check(self, token: str, idle: float, now: float | None = None) -> Grant:
        """The grant of `token`, or Refused saying why (revoked, expired, unknown, disabled)."""
        now = time.time() if now is None else now
        row = self._db.execute("SELECT * FROM desk_tokens WHERE hash = ?", (digest(token),)).fetchone()
        if row is None:
            raise Refused("this token is not known (it may have been replaced); log in again with `statusd login`")
        if row["revoked_at"] is not None:
            raise Refused("this token was revoked; log in again with `statusd login`")
        if now - row["last_used"] > idle:
            raise Refused(f"this token expired after {_days(idle)} unused; log in again with `statusd login`")
        person = self._accounts.get(row["name"])
        if person is None or person.disabled:
            raise Refused(f"the account {row['name']} is disabled; ask the person who runs statusd")
        if now - row["last_used"] > min(TOUCH_EVERY, idle / 10):
            self._db.execute("UPDATE desk_tokens SET last_used = ? WHERE id = ?", (now, row["id"]))
        return Grant(person, row["id"], row["csrf"])

    def listed(self, name: str) -> list[Issued]:
        rows = self._db.execute(
            "SELECT id, name, kind, label, created_at, last_used, revoked_at FROM desk_tokens"
            " WHERE name = ? ORDER BY created_at", (name,))
        return [Issued(*row) for row in rows]

    def revoke(self, name: str, token_id: str | None) -> int:
        """Revoke one token of `name` (by id), or all of them; returns how many."""
        query = "UPDATE desk_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL"
        values: list[object] = [time.time(), name]
        if token_id is not None:
            query += " AND id = ?"
            values.append(token_id)
        count = self._db.execute(query, values).rowcount
        if token_id is not None and count == 0:
            raise UserError(f"{name} has no live token {token_id!r}; `statusd user tokens {name}` lists them")
        return count

    def revoke_token(self, token: str) -> None:
        """`statusd logout` and the page's log-out: the token or session presented."""
        self._db.execute("UPDATE desk_tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL",
                         (time.time(), digest(token)))


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:g} day(s)"
    if seconds >= 3600:
        return f"{seconds / 3600:g} hour(s)"
    return f"{seconds / 60:g} minute(s)"
