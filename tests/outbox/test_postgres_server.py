"""The test PostgreSQL server: each test gets a fresh database of its own, reached with a password."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.e2e


class TestPostgresServer:
    """Each test's database is empty and its own; the password is required over TCP."""

    def test_fresh_database_is_empty_and_writable(self, postgres_dsn: str) -> None:
        with psycopg.connect(postgres_dsn) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
            conn.execute("CREATE TABLE t (x int)")
        assert tables == (0,)

    def test_password_is_required(self, postgres_server: PostgresServer, postgres_database: str) -> None:
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(postgres_server.dsn(postgres_database, password=False), connect_timeout=2).close()

    def test_terminate_cuts_connections(self, postgres_server: PostgresServer, postgres_database: str,
                                        postgres_dsn: str) -> None:
        conn = psycopg.connect(postgres_dsn)
        assert postgres_server.terminate(postgres_database) == 1
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        conn.close()
