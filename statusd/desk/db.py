"""The desk's tables, beside the outbox's in the configured store: the SQLite file, or PostgreSQL.

The outbox owns its tables; these are the desk's, opened through a connection
of our own, so neither module needs the other to change its schema. Accounts,
tokens and the login counts speak to either engine through `DeskDb`: SQL with
`?` placeholders, rows read by column name or position, `dialect` for the one
statement that differs (the upsert), and `transaction()` for a read and write
that must not interleave with another process's (another daemon's, in a cluster).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statusd.desk.tables import LINKS, SCHEMA, TABLES, DeskDb, Rows, postgres_schema
from statusd.outbox.dialect import SQLITE

if TYPE_CHECKING:
    from statusd.config.load import Config

__all__ = ["SCHEMA", "TABLES", "DeskDb", "SqliteDesk", "connect", "open_desk", "postgres_schema"]


class SqliteDesk:
    """The desk's tables in the store's SQLite file (single node): autocommit, as before."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        return self.conn.execute(sql, parameters)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")  # the file's one write lock, taken before the read
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def open_desk(config: Config, store: Path) -> DeskDb:
    """The desk's tables in the store `config` names: PostgreSQL's (`store: postgresql://…`, shared
    by every node of a cluster), else the SQLite file at `store`. Never waits for a server: a
    PostgreSQL connection is made in the background, and its trouble shows on first use."""
    settings = config.store
    if settings.dsn is None:
        return connect(store)
    from statusd.desk.db_postgres import PgDesk
    from statusd.outbox.opening import store_password

    return PgDesk(settings.dsn, store_password(config), settings.timeout)


def connect(path: Path) -> SqliteDesk:
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
    return SqliteDesk(db)


def _link_columns(db: sqlite3.Connection) -> None:
    """The single sign-on links (added after the first desk release: stores made before lack them)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(desk_users)")}
    for column in LINKS:
        if column not in have:
            try:
                db.execute(f"ALTER TABLE desk_users ADD COLUMN {column} TEXT")
            except sqlite3.OperationalError as err:
                if "duplicate column" not in str(err):  # another process added it just now
                    raise
