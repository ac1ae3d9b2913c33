"""The store's SQLite file: opened as every writer opens it, one IMMEDIATE transaction at a time.

Shared by the store (sqlite.py) and `statusd set`'s probe (probe.py), which must
open the file exactly as the daemon does without importing the store (issue 15).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["connect", "immediate", "schema_version"]


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the store's file, made (group-writable) when missing unless `readonly`."""
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite creates files 0644 (and its -wal/-shm like the database):
        # create it 0666 less the umask, so the group (desk staff) may write.
        # Only when missing: closing any descriptor of an open database drops
        # every SQLite lock this process holds on it (POSIX locks are per process).
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666))
        except FileExistsError:
            pass
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # Short: the store's thread waits this long when another program holds the lock.
        db.execute("PRAGMA busy_timeout = 1000")
        if not readonly:
            # WAL + NORMAL: a killed process loses no committed transaction.
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, IMMEDIATE: the write lock taken at the start, two writers never deadlock."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@contextmanager
def deferred(db: sqlite3.Connection) -> Iterator[None]:
    """One read transaction: its first read fixes what it sees (the log's readers hold up no writer)."""
    db.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        db.execute("ROLLBACK")  # it wrote nothing


def schema_version(db: sqlite3.Connection) -> int:
    """The schema version the file holds (0: made before versions were kept, or empty)."""
    try:
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0] or 0)
