"""Moving a store's rows out and in whole (`statusd export-state` / `import-state`), either dialect."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from statusd.outbox.dialect import Dialect
from statusd.outbox.queries import Db

_NAME = re.compile(r"^[a-z_]+$")



LOCAL_COLUMNS = frozenset({"claim_epoch", "claim_holder"})

class Transfer:
    """A store's tables read and written as plain rows (column → value)."""

    _db: Db
    dialect: Dialect

    def _transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _snapshot(self) -> AbstractContextManager[None]:
        """A read transaction that sees one moment of the store, and holds up no writer."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def schema_version(self) -> int:
        """The schema version the store holds (0: none yet)."""
        raise NotImplementedError

    def migrate(self) -> list[int]:
        """Create or upgrade the schema; the versions this made."""
        raise NotImplementedError

    def has_table(self, table: str) -> bool:
        if self.dialect.name == "sqlite":
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?"
        return self._db.execute(sql, (_checked(table),)).fetchone() is not None

    def dump(self, table: str) -> list[dict[str, Any]]:
        """Every row of `table` in key order ([] if the table is not there)."""
        if not self.has_table(table):
            return []
        rows = self._db.execute(f"SELECT * FROM {_checked(table)} ORDER BY 1").fetchall()
        # A cluster's claim on a delivery (cluster/schema.py) belongs to that cluster's lease only.
        return [{key: row[key] for key in row.keys() if key not in LOCAL_COLUMNS} for row in rows]

    def dump_all(self, tables: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """`dump` of each table, all as of one moment: read apart, an export taken while the daemon
        records could hold an event without its deliveries, or one still unfinished without its row."""
        with self._snapshot():
            return {table: self.dump(table) for table in tables}

    def count(self, tables: Iterable[str]) -> int:
        """How many rows these tables hold together."""
        total = 0
        for table in tables:
            if self.has_table(table):
                total += int(self._db.execute(f"SELECT COUNT(*) FROM {_checked(table)}").fetchone()[0])
        return total

    def ensure(self, schema: str) -> None:
        """Create tables another part keeps in this store (the desk's), in this dialect's types."""
        if self.dialect.name != "sqlite":
            schema = re.sub(r"\bREAL\b", self.dialect.real, schema)
        for statement in schema.split(";"):
            if statement.strip():
                self._db.execute(statement)

    def restore(self, rows: Mapping[str, Sequence[Mapping[str, Any]]], replace: bool) -> None:
        """Write the rows of each table (in the mapping's order), in one transaction; with
        `replace`, what the tables held is deleted first (in the reverse order)."""
        with self._transaction():
            if replace:
                for table in reversed(list(rows)):
                    if self.has_table(table):
                        self._db.execute(f"DELETE FROM {_checked(table)}")
            for table, items in rows.items():
                for item in items:
                    names = [_checked(name) for name in item]
                    self._db.execute(f"INSERT INTO {_checked(table)} ({', '.join(names)})"
                                     f" VALUES ({', '.join('?' * len(names))})", list(item.values()))
            self._restored()

    def _restored(self) -> None:
        """After rows came in with their own keys: generated keys continue after them."""


def _checked(name: str) -> str:
    # Table and column names come from our own schema or an export file: never quoted SQL.
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a table or column name statusd uses")
    return name
