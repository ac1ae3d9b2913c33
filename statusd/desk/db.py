"""The desk's tables, kept in the store's SQLite file beside the outbox's own.

The outbox owns its tables; these are the desk's, opened through a connection
of our own, so neither module needs the other to change its schema.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

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


def connect(path: Path) -> sqlite3.Connection:
    """Open (and if needed create) the desk's tables in the store file at `path`."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # As the store does: 0666 less the umask, so the statusd group may use the file. Only
        # when it is missing: closing any descriptor of a file drops every POSIX lock this
        # process holds on it, the daemon's own store connection's included.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o666))
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA busy_timeout = 2000")
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(SCHEMA)
    _link_columns(db)
    return db


def _link_columns(db: sqlite3.Connection) -> None:
    """The single sign-on links (added after the first desk release: stores made before lack them)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(desk_users)")}
    for column in ("email", "sso_subject"):
        if column not in have:
            try:
                db.execute(f"ALTER TABLE desk_users ADD COLUMN {column} TEXT")
            except sqlite3.OperationalError as err:
                if "duplicate column" not in str(err):  # another process added it just now
                    raise
