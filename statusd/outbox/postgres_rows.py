"""Rows from PostgreSQL shaped as the shared SQL reads SQLite's: by column name or position."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from psycopg import Cursor


class PgRow:
    """One row: `row["state"]`, `row[0]` and `row.keys()`, as sqlite3.Row offers."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str, /) -> Any:
        return self._values[key if isinstance(key, int) else self._index[key]]

    def keys(self) -> list[str]:
        return list(self._index)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)


def row_maker(cursor: Cursor[Any]) -> Any:
    """psycopg's row factory for PgRow (the column index is built once per result)."""
    index = {column.name: i for i, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(values, index)

    return make


class Result:
    """A statement's rows, read whole before its connection went back to the pool."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)
