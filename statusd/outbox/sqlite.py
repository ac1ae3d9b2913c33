"""The SQLite store: one file in the state directory (WAL mode), the single-node default.

A delivery is written here, in the same transaction as its event, before
anything is sent: that is what makes a crash lose nothing.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path

from statusd.outbox import sqlite_file
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
    path: Path

    def __init__(self, path: Path, readonly: bool = False, autocheckpoint: int | None = None) -> None:
        """`autocheckpoint`: the log's pages past which a commit checkpoints (SQLite's 1,000 when
        None); the daemon's is a backstop, its checkpoints are outbox/checkpoints.py's."""
        self.path = path
        self.label = str(path)
        self.troubles = {}
        self._db = self._sqlite = sqlite_file.connect(path, readonly)
        self._sqlite.row_factory = sqlite3.Row
        if autocheckpoint is not None:
            self._sqlite.execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint)}")
        if not readonly:
            self.found_version = self.schema_version()
            self.migrate()

    def close(self) -> None:
        self._sqlite.close()

    def _transaction(self) -> AbstractContextManager[None]:
        return sqlite_file.immediate(self._sqlite)

    def _snapshot(self) -> AbstractContextManager[None]:
        return sqlite_file.deferred(self._sqlite)

    def data_version(self) -> int:
        return int(self._sqlite.execute("PRAGMA data_version").fetchone()[0])

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database and truncate it: the files stay small."""
        self._sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def schema_version(self) -> int:
        """The schema version the file holds (0: made before versions were kept, or empty)."""
        return sqlite_file.schema_version(self._sqlite)

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
