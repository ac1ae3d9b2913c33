"""The desk's tables and the one interface its code speaks to them through, whichever the engine.

`SCHEMA` is written for SQLite; `postgres_schema()` is the same in PostgreSQL's types.
`DeskDb` is what accounts, tokens and the login counts use: SQL with `?` placeholders,
rows read by column name or position, `dialect` for the one statement that differs
(the upsert), `transaction()` for a read and write that must not interleave with
another process's (another daemon's, in a cluster).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from statusd.outbox.dialect import Dialect
from statusd.outbox.queries import Rows as Rows

SCHEMA = """
CREATE TABLE IF NOT EXISTS desk_users (
    name TEXT PRIMARY KEY,
    display TEXT NOT NULL,
    role TEXT NOT NULL,
    sites TEXT NOT NULL,
    password TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    changed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS desk_enrolments (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES desk_users(name),
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS desk_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES desk_users(name),
    hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS desk_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_at REAL NOT NULL,
    locked_until REAL NOT NULL
);
"""
# Columns added after the first desk release (the single sign-on links): older stores lack them.
LINKS = ("email", "sso_subject")
TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))


def postgres_schema() -> list[str]:
    """The statements that make the desk's tables in PostgreSQL (as `migrate` and `import-state` do):
    REAL is PostgreSQL's four-byte float, too coarse for a timestamp, so double precision."""
    schema = re.sub(r"\bREAL\b", "DOUBLE PRECISION", SCHEMA)
    return [s.strip() for s in schema.split(";") if s.strip()] + [
        f"ALTER TABLE desk_users ADD COLUMN IF NOT EXISTS {column} TEXT" for column in LINKS]


class DeskDb(Protocol):
    """The desk's connection to its tables, whichever the engine. Not for two threads at once."""

    dialect: Dialect

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows: ...

    def transaction(self) -> AbstractContextManager[None]:
        """The statements run inside it commit together, one such writer at a time."""
        ...

    def close(self) -> None: ...
