"""Both stores for the store and outbox tests: each test that asks for `new_store` runs on SQLite and on PostgreSQL.

`new_store(name)` opens the store called `name`: a file in the test's directory, or
a database of the session's PostgreSQL server made for the test (migrated on first
open). The same name again opens the same store anew, as a restarted daemon or
another program would; every store opened is closed after the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from statusd.desk import db as desk_db
from statusd.desk.db import DeskDb
from statusd.desk.db_postgres import PgDesk
from statusd.outbox.contract import Store
from statusd.outbox.facade import AsyncStore
from statusd.outbox.postgres import PostgresStore
from statusd.outbox.sqlite import SqliteStore
from tests.support.postgres import PASSWORD, PostgresServer

KINDS = ("sqlite", "postgresql")
NewStore = Callable[..., Store]


def facade(store: Store) -> AsyncStore:
    """The daemon's view of `store` (a worker's), on a store thread of its own."""
    return AsyncStore(store)


@pytest.fixture(params=KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NewStore]:
    opened: list[Store] = []
    databases: dict[str, str] = {}
    server: PostgresServer | None = request.getfixturevalue("postgres_server") if store_kind != "sqlite" else None

    def open_store(name: str = "statusd.db") -> Store:
        store: Store
        if server is None:
            store = SqliteStore(tmp_path / name)
        else:
            fresh = name not in databases
            if fresh:
                databases[name] = server.create_database()
            store = PostgresStore(server.dsn(databases[name], password=False), PASSWORD, timeout=5.0)
            if fresh:
                store.migrate()
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        with contextlib.suppress(Exception):  # already closed by the test
            store.close()
    for database in databases.values():
        assert server is not None
        server.drop_database(database)


@pytest.fixture
def store(new_store: NewStore) -> Store:
    """The test's store, on each backend in turn."""
    return new_store()


STORE_ENV = "STATUSD_TEST_STORE_PASSWORD"


@pytest.fixture
def store_config(store_kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The lines a statusd.yaml needs for this test's store: none for SQLite; for PostgreSQL its
    address and password reference (the variable set for daemons started from the test), migrated."""
    if store_kind == "sqlite":
        return ""
    server: PostgresServer = request.getfixturevalue("postgres_server")
    database: str = request.getfixturevalue("postgres_database")
    store = PostgresStore(server.dsn(database, password=False), PASSWORD)
    store.migrate()
    store.close()
    monkeypatch.setenv(STORE_ENV, PASSWORD)
    return f"store: {server.dsn(database, password=False)}\nstore_password: {{env: {STORE_ENV}}}\n"


def with_store(config: Path, lines: str) -> Path:
    """`config` with the store's lines added."""
    if lines:
        with config.open("a", encoding="utf-8") as out:
            out.write(lines)
    return config


@pytest.fixture
def open_desk(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], DeskDb]]:
    """Opens a connection to the desk's tables, on each engine in turn: beside the outbox's in a
    store file, or in a fresh PostgreSQL database (made there on first use, as a daemon on a
    database migrated before would). Each call is another connection to the same tables, as
    another process (or another node) holds; all are closed after the test."""
    opened: list[DeskDb] = []
    if store_kind == "sqlite":
        opened_outbox = SqliteStore(tmp_path / "statusd.db")  # the outbox's own tables live beside the desk's

        def open_one() -> DeskDb:
            opened.append(desk_db.connect(tmp_path / "statusd.db"))
            return opened[-1]
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        dsn = server.dsn(request.getfixturevalue("postgres_database"), password=False)

        def open_one() -> DeskDb:
            opened.append(PgDesk(dsn, PASSWORD))
            return opened[-1]
    yield open_one
    for db in opened:
        db.close()
    if store_kind == "sqlite":
        opened_outbox.close()


@pytest.fixture
def desk_tables(open_desk: Callable[[], DeskDb]) -> DeskDb:
    """The desk's tables, on each engine in turn."""
    return open_desk()
