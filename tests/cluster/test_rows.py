"""The wanted status in PostgreSQL: written and read back as status.yaml would be, checked the same way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from statusd.config.load import Config
from statusd.errors import ConfigError, UserError
from statusd.model import Level, StatusEntry, Target
from statusd.sources.status.rows import CHANNEL, WantedRows, migrate

pytestmark = pytest.mark.e2e


@pytest.fixture
def rows(config: Config, postgres_dsn: str) -> WantedRows:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        migrate(conn)
    return WantedRows(config, postgres_dsn)


def entry(level: Level, text: str) -> StatusEntry:
    return StatusEntry(level, {"fr": text}, by="alice", at=datetime(2026, 1, 5, 9, 30, tzinfo=UTC))


class TestWantedRows:
    """Each target's entry round-trips; a bad row is reported by name and changes nothing else."""

    def test_set_then_read_round_trips(self, rows: WantedRows) -> None:
        rows.set(Target("main"), entry(Level.CLOSED, "Fermé."))
        rows.set(Target("main", "wifi"), entry(Level.LIMITED, "Lent."))
        assert rows.read() == {Target("main"): entry(Level.CLOSED, "Fermé."),
                               Target("main", "wifi"): entry(Level.LIMITED, "Lent.")}

    def test_unknown_target_is_refused(self, rows: WantedRows) -> None:
        with pytest.raises(UserError, match="unknown target 'nowhere'"):
            rows.set(Target("nowhere"), entry(Level.CLOSED, "x"))
        assert rows.read() == {}

    def test_a_broken_row_is_named(self, rows: WantedRows, postgres_dsn: str) -> None:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO wanted (target, body) VALUES ('main', 'main: {level: shut}')")
        with pytest.raises(ConfigError, match="the wanted status row 'main'"):
            rows.read()

    async def test_a_change_is_notified(self, rows: WantedRows, postgres_dsn: str) -> None:
        async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            await asyncio.to_thread(rows.set, Target("annexe"), entry(Level.CLOSED, "Fermé."))
            notice = await asyncio.wait_for(anext(conn.notifies()), 5)
        assert notice.payload == "annexe"

    def test_locked_holds_off_another_writer(self, rows: WantedRows, config: Config, postgres_dsn: str) -> None:
        other = WantedRows(config, postgres_dsn)
        with rows.locked():
            rows.set(Target("main"), entry(Level.OPEN, "Ouvert."))
            with psycopg.connect(postgres_dsn, autocommit=True) as conn:
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (0x57A7D5,)).fetchone()
            assert got == (False,)
        other.set(Target("main"), entry(Level.CLOSED, "Fermé."))
        assert rows.read()[Target("main")].level is Level.CLOSED
