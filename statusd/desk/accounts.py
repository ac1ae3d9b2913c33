"""Desk accounts: who may flip which sites, and their one-time enrolment links."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from statusd.desk import passwords
from statusd.desk.db import DeskDb
from statusd.errors import UserError

ROLES = ("desk", "lead", "admin")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


@dataclass(frozen=True)
class Person:
    """One account: its name, display name, role and the sites it may change."""

    name: str
    display: str
    role: str
    sites: tuple[str, ...]
    disabled: bool = False
    enrolled: bool = False
    email: str | None = None
    sso_subject: str | None = None

    @property
    def by(self) -> str:
        """How history and status.yaml's `by:` name the person: display name and account."""
        return f"{self.display} ({self.name})"

    def may_change(self, site: str) -> bool:
        return self.role == "admin" or site in self.sites


def digest(secret: str) -> str:
    """What is stored for a random secret (enrolment code, token): long enough that sha256 suffices."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Accounts:
    """The desk_users and desk_enrolments tables."""

    def __init__(self, db: DeskDb) -> None:
        self.db = db

    def get(self, name: str) -> Person | None:
        row = self.db.execute("SELECT * FROM desk_users WHERE name = ?", (name,)).fetchone()
        return _person(row) if row else None

    def password_hash(self, name: str) -> str | None:
        row = self.db.execute(
            "SELECT password FROM desk_users WHERE name = ? AND disabled = 0", (name,)).fetchone()
        return row[0] if row else None

    def all(self) -> list[Person]:
        return [_person(r) for r in self.db.execute("SELECT * FROM desk_users ORDER BY name")]

    def add(self, name: str, display: str, role: str, sites: Sequence[str], known: Iterable[str]) -> None:
        _check(name, role, sites, known)
        if self.get(name) is not None:
            raise UserError(f"there is already an account {name!r}; change it with `statusd user edit {name}`")
        now = time.time()
        self.db.execute(
            "INSERT INTO desk_users (name, display, role, sites, created_at, changed_at) VALUES (?, ?, ?, ?, ?, ?)",
            (name, display.strip() or name, role, json.dumps(list(sites)), now, now))

    def edit(self, name: str, display: str | None, role: str | None, sites: Sequence[str] | None,
             known: Iterable[str]) -> Person:
        person = self.require(name)
        role, sites = role or person.role, person.sites if sites is None else tuple(sites)
        _check(name, role, sites, known)
        self.db.execute(
            "UPDATE desk_users SET display = ?, role = ?, sites = ?, changed_at = ? WHERE name = ?",
            ((display or person.display).strip(), role, json.dumps(list(sites)), time.time(), name))
        return self.require(name)

    def set_disabled(self, name: str, disabled: bool) -> None:
        self.require(name)
        self.db.execute("UPDATE desk_users SET disabled = ?, changed_at = ? WHERE name = ?",
                         (int(disabled), time.time(), name))

    def set_password(self, name: str, password: str) -> None:
        self.db.execute("UPDATE desk_users SET password = ?, changed_at = ? WHERE name = ?",
                         (passwords.hash_password(password), time.time(), name))

    def enrolment(self, name: str, valid: float) -> str:
        """A new one-time code for `name` (the older ones stop working); only its hash is kept."""
        self.require(name)
        code = secrets.token_urlsafe(24)
        self.db.execute("DELETE FROM desk_enrolments WHERE name = ?", (name,))
        self.db.execute("INSERT INTO desk_enrolments VALUES (?, ?, ?)", (digest(code), name, time.time() + valid))
        return code

    def enrol(self, code: str, password: str) -> Person:
        """Set the password of the enrolment code's account; the code is then used up (once, even
        if two nodes of a cluster are handed it at the same moment)."""
        weak = passwords.problem(password)
        with self.db.transaction():
            row = self.db.execute("SELECT name, expires FROM desk_enrolments WHERE hash = ?",
                                  (digest(code),)).fetchone()
            if row is None or row[1] < time.time():
                raise UserError("this enrolment link is unknown, used or expired; ask for a new one "
                                "(`statusd user reset NAME` on the server)")
            if weak:
                raise UserError(weak)
            self.db.execute("DELETE FROM desk_enrolments WHERE hash = ?", (digest(code),))
            self.set_password(row[0], password)
        return self.require(row[0])

    def reset(self, name: str) -> None:
        """Forget the password: only a new enrolment link lets the person in again."""
        self.require(name)
        self.db.execute("UPDATE desk_users SET password = NULL, changed_at = ? WHERE name = ?", (time.time(), name))

    def link(self, name: str, email: str | None, subject: str | None) -> Person:
        """Set (or with "" clear) the e-mail and provider subject that single sign-on matches on."""
        person = self.require(name)
        email = person.email if email is None else (email.strip().lower() or None)
        subject = person.sso_subject if subject is None else (subject.strip() or None)
        if email is not None and not _EMAIL.match(email):
            raise UserError(f"{email!r} is not an e-mail address; give it as name@example.org (or \"\" to clear it)")
        for column, what, value in (("email", "e-mail", email), ("sso_subject", "single sign-on subject", subject)):
            other = value and self.db.execute(f"SELECT name FROM desk_users WHERE {column} = ? AND name != ?",
                                              (value, name)).fetchone()
            if other:
                raise UserError(f"the account {other[0]} already has this {what}; one person, one account")
        self.db.execute("UPDATE desk_users SET email = ?, sso_subject = ?, changed_at = ? WHERE name = ?",
                        (email, subject, time.time(), name))
        return self.require(name)

    def by_sso(self, subject: str, email: str | None) -> Person | None:
        """The account linked to the provider's subject, else the one with that (verified) e-mail."""
        row = self.db.execute("SELECT * FROM desk_users WHERE sso_subject = ?", (subject,)).fetchone()
        if row is None and email:
            row = self.db.execute("SELECT * FROM desk_users WHERE email = ? AND sso_subject IS NULL",
                                  (email.strip().lower(),)).fetchone()
        return _person(row) if row else None

    def require(self, name: str) -> Person:
        person = self.get(name)
        if person is None:
            raise UserError(f"no account {name!r}; `statusd user list` shows them")
        return person


def _person(row: Any) -> Person:
    return Person(row["name"], row["display"], row["role"], tuple(json.loads(row["sites"])),
                  bool(row["disabled"]), row["password"] is not None, row["email"], row["sso_subject"])


def _check(name: str, role: str, sites: Sequence[str], known: Iterable[str]) -> None:
    if not _NAME.match(name):
        raise UserError(f"account name {name!r} should be lower-case letters, digits, '.', '-' or '_' "
                        "(at most 64), e.g. annexe-desk")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    known = list(known)
    unknown = [s for s in sites if s not in known]
    if unknown:
        raise UserError(f"unknown site {unknown[0]!r}; the known sites are {', '.join(known)}")
    if role != "admin" and not sites:
        raise UserError(f"a {role} account needs --sites, e.g. --sites {known[0] if known else 'main'}")
