"""The desk's tables in the cluster's PostgreSQL database: every node sees the same accounts,
tokens and login counts, so a token made on one node works on all, and a lock holds on all.

The connection is the outbox's (`PgDb`: a small pool, short connect and statement
timeouts, every psycopg error as one `StoreError` sentence without the password).
`statusd migrate` and `import-state` make the tables; a database migrated before
the desk kept its tables there gets them here, on first use, under the migrators' lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from statusd.desk.tables import LINKS, TABLES, Rows, postgres_schema
from statusd.outbox.dialect import POSTGRES
from statusd.outbox.postgres import MIGRATE_LOCK, WRITE_LOCK, PgDb, describe, open_pool

# The desk's writers that read before they write (a failure count, an enrolment code) take
# turns on this transaction-scoped advisory lock, across every node; the outbox's are apart.
DESK_LOCK = WRITE_LOCK + 2

_PRESENT = ("SELECT (SELECT count(*) FROM unnest(?::text[]) AS t(name) WHERE to_regclass(t.name) IS NOT NULL),"
            " (SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = 'desk_users' AND column_name = ANY(?))")


class PgDesk:
    """A `DeskDb` on PostgreSQL (`store: postgresql://…`)."""

    dialect = POSTGRES

    def __init__(self, dsn: str, password: str | None, timeout: float = 5.0) -> None:
        self.label = describe(dsn)
        self.timeout = timeout
        self._pool, why = open_pool(dsn, password, timeout, "statusd-desk")
        self._db = PgDb(self._pool, why)
        self._ready = False

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        self._ensure()
        return self._db.execute(sql, [_text(value) for value in parameters])

    def transaction(self) -> AbstractContextManager[None]:
        self._ensure()
        return self._db.transaction(lock=DESK_LOCK)

    def close(self) -> None:
        self._pool.close(timeout=self.timeout)

    def _ensure(self) -> None:
        """The tables, made once if missing (a look first: making them needs a right the daemon's
        role may lack, and a database `statusd migrate` prepared has them already)."""
        if self._ready:
            return
        tables, links = self._db.execute(_PRESENT, (list(TABLES), list(LINKS))).fetchone()
        if (tables, links) != (len(TABLES), len(LINKS)):
            with self._db.transaction(lock=MIGRATE_LOCK):
                for statement in postgres_schema():
                    self._db.execute(statement)
        self._ready = True


def _text(value: Any) -> Any:
    """PostgreSQL's text holds no NUL, and refuses a parameter with one: a typed account name or label
    holding one then matches nothing (as in SQLite, where no account has one), rather than erring."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value
