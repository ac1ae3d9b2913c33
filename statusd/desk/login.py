"""Checking a name and password: throttled, and no faster for an unknown account."""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from statusd.desk import passwords
from statusd.desk.accounts import Accounts, Person
from statusd.desk.db import DeskDb
from statusd.desk.limits import Limits

log = structlog.get_logger()
WRONG = "wrong account name or password (both are checked together, so this does not say which)"


class LoginRefused(Exception):
    """A refused login, with the one sentence to show (and when to try again if locked)."""


@dataclass
class Desk:
    """The desk's state in the store: accounts, tokens, throttling."""

    accounts: Accounts
    limits: Limits

    @classmethod
    def open(cls, db: DeskDb) -> Desk:
        return cls(Accounts(db), Limits(db))


def authenticate(desk: Desk, name: str, password: str, address: str, now: float | None = None) -> Person:
    """The person, or LoginRefused; a lock is checked before the password and says until when."""
    now = time.time() if now is None else now
    name = name.strip().lower()[:64]
    locked = desk.limits.locked(name, address, now)
    if locked is not None:
        log.warning("desk_login_locked", account=name, address=address)
        raise LoginRefused(locked.sentence(now))
    stored = desk.accounts.password_hash(name)
    if not passwords.verify(stored, password):
        desk.limits.failed(name, address, now)
        log.warning("desk_login_failed", account=name, address=address)
        locked = desk.limits.locked(name, address, now)
        raise LoginRefused(locked.sentence(now) if locked else WRONG)
    desk.limits.succeeded(name)
    person = desk.accounts.require(name)
    if stored is not None and passwords.needs_rehash(stored):
        desk.accounts.set_password(name, password)
    log.info("desk_login", account=name)
    return person
