"""The store's tables, and the one step that brings an older store file up to them."""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    level TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at REAL NOT NULL,
    body TEXT NOT NULL,
    previous TEXT,
    retracted_at REAL,
    retracted_by TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL REFERENCES events(id),
    channel TEXT NOT NULL,
    action TEXT NOT NULL DEFAULT 'post',
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
    uncertain INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_id, channel, action)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, state, next_attempt);
CREATE INDEX IF NOT EXISTS events_target ON events (target, seq);
CREATE INDEX IF NOT EXISTS events_created ON events (created_at);
CREATE INDEX IF NOT EXISTS deliveries_created ON deliveries (channel, created_at);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at REAL NOT NULL, pad BLOB);
CREATE TABLE IF NOT EXISTS channel_state (
    channel TEXT PRIMARY KEY,
    paused_until REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS announced (
    target TEXT PRIMARY KEY,
    level TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    stamp TEXT NOT NULL,
    event_id TEXT,
    since REAL NOT NULL
);
"""

# Columns added since the first release: (table, column, definition).
ADDED = (("deliveries", "uncertain", "INTEGER NOT NULL DEFAULT 0"),)


def migrate(db: sqlite3.Connection) -> None:
    """Create what is missing; add the columns an older store file lacks."""
    for table, column, definition in ADDED:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if present and column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    db.executescript(SCHEMA)
