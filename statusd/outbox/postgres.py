"""The PostgreSQL store: the same tables and SQL as SQLite's, shared by several daemons.

psycopg 3 with its connection pool: a connection the server or the network cut
is thrown away and replaced, so a cut shows as one failed call (store trouble)
and the next call works again. Short connect, statement and TCP timeouts make a
stalled or unreachable server an error within seconds, never a hang. Every
psycopg error leaves here as `StoreError`, one sentence without the password.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from statusd.cluster.schema import CLAIM
from statusd.config.store_section import limits
from statusd.outbox.dialect import POSTGRES, placeholders
from statusd.outbox.postgres_rows import Result, row_maker
from statusd.outbox.records import WAITING, Delivery, StoreError, delivery_from_row
from statusd.outbox.schema import VERSION, SchemaBehind, upgrade
from statusd.outbox.store import SqlStore

# The store's writers take turns on this transaction-scoped advisory lock, as
# SQLite's BEGIN IMMEDIATE makes them: one event and its deliveries at a time.
WRITE_LOCK = 0x5374_6174_7573  # "Status"
# A second advisory lock, held by `statusd migrate` while it upgrades.
MIGRATE_LOCK = WRITE_LOCK + 1


class PgDb:
    """The shared SQL's connection: each statement on a pooled connection, a transaction on one."""

    def __init__(self, pool: ConnectionPool[psycopg.Connection[Any]], why: list[str] | None = None) -> None:
        self._pool = pool
        self._conn: psycopg.Connection[Any] | None = None
        self._why = why if why is not None else []

    def _error(self, err: psycopg.Error) -> StoreError:
        # The pool's own timeout says only "couldn't get a connection": add why its last connect failed.
        if isinstance(err, PoolTimeout) and self._why:
            return StoreError(f"{sentence(err)}: {self._why[0]}")
        return StoreError(sentence(err))

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Result:
        try:
            if self._conn is not None:
                return _run(self._conn, sql, parameters)
            with self._pool.connection() as conn:
                return _run(conn, sql, parameters)
        except psycopg.Error as err:
            raise self._failed(err) from err

    @contextmanager
    def transaction(self, lock: int | None = WRITE_LOCK) -> Iterator[None]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                self._conn = conn
                try:
                    if lock is not None:
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
                    yield
                finally:
                    self._conn = None
        except StoreError:
            self._check()
            raise
        except psycopg.Error as err:
            raise self._failed(err) from err

    def _failed(self, err: psycopg.Error) -> StoreError:
        """The error to raise; after a lost connection the pool's idle ones are checked too, so a
        cut costs one failed call, not one per pooled connection."""
        if isinstance(err, psycopg.OperationalError) and self._conn is None:
            self._check()
        return self._error(err)

    def _check(self) -> None:
        try:
            self._pool.check()
        except psycopg.Error:
            pass


def _run(conn: psycopg.Connection[Any], sql: str, parameters: Sequence[Any]) -> Result:
    cursor = conn.execute(placeholders(sql), tuple(parameters))
    rows = cursor.fetchall() if cursor.description is not None else []
    return Result(rows, cursor.rowcount)


class PostgresStore(SqlStore):
    """The outbox's durable state in a PostgreSQL database (`store: postgresql://…`).

    `password` is the resolved secret (never part of `dsn`); `timeout` bounds a
    connect and a statement. The schema is made by `migrate()` (`statusd migrate`);
    `require_current()` refuses a database that is behind.
    """

    dialect = POSTGRES

    def __init__(self, dsn: str, password: str | None = None, timeout: float = 5.0, name: str = "statusd",
                 holder: str | None = None) -> None:
        self.label = describe(dsn)
        self.troubles = {}
        self.timeout = timeout
        self._pool, why = open_pool(dsn, password, timeout, f"{name}-store", holder)
        self._db = self._pg = PgDb(self._pool, why)
        self.holder = holder

    def next_due(self, channel: str) -> Delivery | None:
        """The one place a worker takes its next delivery: on a cluster node the leader claims it
        here (FOR UPDATE SKIP LOCKED, with its lease epoch; nothing without the lease)."""
        if self.holder is None:
            return super().next_due(channel)
        row = self._db.execute(CLAIM, (channel, *WAITING)).fetchone()
        return delivery_from_row(row) if row else None

    def next_due_many(self, channels: Sequence[str]) -> dict[str, Delivery]:
        """On a cluster node each is claimed as `next_due` claims it (with the lease, or nothing)."""
        if self.holder is None:
            return super().next_due_many(channels)
        return {channel: due for channel in channels if (due := self.next_due(channel)) is not None}

    def close(self) -> None:
        self._pool.close(timeout=self.timeout)

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        with self._pg.transaction(lock=None):  # REPEATABLE READ: every statement sees the first's moment
            self._db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield

    def _transaction(self) -> Any:
        return self._pg.transaction()

    def data_version(self) -> int:
        # Advances whenever any transaction on the server committed a write: at worst a
        # needless look by the workers. (LISTEN/NOTIFY is the cluster's precise signal.)
        row = self._db.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone()
        return int(row[0])

    def _restored(self) -> None:
        for table, key in (("events", "seq"), ("deliveries", "id")):
            self._db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'),"
                             f" COALESCE(MAX({key}), 1), MAX({key}) IS NOT NULL) FROM {table}")

    def schema_version(self) -> int:
        """The schema version the database holds (0: none yet)."""
        row = self._db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if not row[0]:
            return 0
        return int(self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])

    def migrate(self) -> list[int]:
        """Create or upgrade the schema, one migrator at a time; the versions this made."""
        with self._pg.transaction(lock=MIGRATE_LOCK):
            return upgrade(POSTGRES, self._db.execute, self.schema_version())

    def require_current(self) -> None:
        """Raise SchemaBehind unless the database holds exactly this code's schema."""
        found = self.schema_version()
        if found != VERSION:
            state = "has no statusd tables" if found == 0 else f"holds schema version {found}"
            raise SchemaBehind(f"the store {self.label} {state}, this statusd needs version {VERSION}; "
                               "run `statusd migrate` first")


def open_pool(dsn: str, password: str | None, timeout: float, name: str,
              holder: str | None = None) -> tuple[ConnectionPool[psycopg.Connection[Any]], list[str]]:
    """A pool of one to two connections, opening in the background (never blocking its caller), and
    the list that holds why its last connect failed (for PgDb's errors)."""
    why: list[str] = []
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        dsn, min_size=1, max_size=2, timeout=timeout, open=False, name=name,
        kwargs=connect_options(password, timeout, holder), connection_class=_recording(why))
    pool.open(wait=False)
    return pool, why


def _recording(why: list[str]) -> type[psycopg.Connection[Any]]:
    """A connection class that keeps, in `why`, the sentence of the last failed connect (libpq's: no password)."""

    class Recording(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Recording:
            try:
                conn = super().connect(conninfo, **kwargs)
            except psycopg.Error as err:
                why[:] = [sentence(err)]
                raise
            why.clear()
            return conn

    return Recording


def connect_options(password: str | None, timeout: float, holder: str | None = None) -> dict[str, Any]:
    """The store's connection settings (config/store_section.py's limits), its rows as the shared
    SQL reads them, and its password."""
    options: dict[str, Any] = {**limits(timeout, holder), "row_factory": row_maker}
    if password is not None:
        options["password"] = password
    return options


def describe(dsn: str) -> str:
    """The DSN as logs and errors may show it: user, host, port and database, never a password."""
    try:
        parts = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql://(unreadable address)"
    host, port = parts.get("host") or "localhost", parts.get("port") or "5432"
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{parts.get('dbname') or ''}"


def sentence(err: psycopg.Error) -> str:
    """One line of what went wrong (libpq's first line; it never holds the password)."""
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__).rstrip(".")
