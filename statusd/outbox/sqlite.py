"""The SQLite store: one file in the state directory (WAL mode), the single-node default.

A delivery is written here, in the same transaction as its event, before
anything is sent: that is what makes a crash lose nothing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from statusd.outbox.dialect import SQLITE
from statusd.outbox.schema import ADDED, VERSION, upgrade
from statusd.outbox.store import SqlStore


class SqliteStore(SqlStore):
    """The outbox's durable state in one SQLite file.

    Opened for writing, an older file is brought up to the current schema at once.
    The connection may be used from another thread than the one that opened it (the
    daemon's store thread), one thread at a time.
    """

    dialect = SQLITE

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.label = str(path)
        self.troubles = {}
        if readonly:
            self._db = self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                                      check_same_thread=False)
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
            self._db = self._sqlite = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._sqlite.row_factory = sqlite3.Row
        # Short: the store's thread waits this long when another program holds the lock.
        self._sqlite.execute("PRAGMA busy_timeout = 1000")
        if not readonly:
            # WAL + NORMAL: a killed process loses no committed transaction.
            self._sqlite.execute("PRAGMA journal_mode = WAL")
            self._sqlite.execute("PRAGMA synchronous = NORMAL")
            self.found_version = self.schema_version()
            self.migrate()

    def close(self) -> None:
        self._sqlite.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE: the write lock is taken at the start, so two writers never deadlock half-way.
        self._sqlite.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._sqlite.execute("ROLLBACK")
            raise
        self._sqlite.execute("COMMIT")

    def data_version(self) -> int:
        return int(self._sqlite.execute("PRAGMA data_version").fetchone()[0])

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database and truncate it: the files stay small."""
        self._sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def schema_version(self) -> int:
        """The schema version the file holds (0: made before versions were kept, or empty)."""
        try:
            row = self._sqlite.execute("SELECT MAX(version) FROM schema_version").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0] or 0)

    def migrate(self) -> list[int]:
        """Create what is missing, add the columns an older file lacks; the versions this made."""
        current = self.schema_version()
        if current >= VERSION:
            return []
        for table, column, definition in ADDED:
            present = {row[1] for row in self._sqlite.execute(f"PRAGMA table_info({table})")}
            if present and column not in present:
                self._sqlite.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        with self._transaction():
            return upgrade(SQLITE, self._sqlite.execute, current)
