"""The lease: one holder at a time, a new epoch on every takeover, and the fence on in-flight deliveries."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from statusd.cluster import schema
from statusd.cluster.lease import Lease

pytestmark = pytest.mark.e2e

DELIVERIES = """
CREATE TABLE events (id TEXT PRIMARY KEY);
CREATE TABLE announced (target TEXT PRIMARY KEY);
CREATE TABLE deliveries (id BIGSERIAL PRIMARY KEY, state TEXT NOT NULL, attempts INT NOT NULL DEFAULT 0);
"""


@pytest.fixture
def dsn(postgres_dsn: str) -> str:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(DELIVERIES)
        schema.migrate(conn)
        conn.execute("INSERT INTO deliveries (state) VALUES ('pending'), ('pending')")
    return postgres_dsn


def as_node(dsn: str, holder: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn, autocommit=True, options=f"-c statusd.holder={holder}")


class TestLease:
    """Exactly one holder; the others take over only once it expired, with a higher epoch."""

    async def test_one_holder_then_takeover_with_new_epoch(self, dsn: str) -> None:
        a = Lease(dsn, "a", "a:1", expiry=1.0, renew=0.2, margin=0.3)
        b = Lease(dsn, "b", "b:1", expiry=1.0, renew=0.2, margin=0.3)
        await a.step()
        await b.step()
        assert (a.held(), b.held()) == (True, False)
        assert b.view().leader == "a"
        first = a.epoch
        await asyncio.sleep(1.1)  # a stops renewing, as if killed
        await b.step()
        assert b.held() and b.epoch == (first or 0) + 1
        await a.step()
        assert not a.held() and a.view().role == "follower"
        await a.close()
        await b.close()

    async def test_renewal_keeps_the_epoch(self, dsn: str) -> None:
        a = Lease(dsn, "a", "a:1", expiry=1.0, renew=0.2, margin=0.3)
        await a.step()
        epoch = a.epoch
        for _ in range(3):
            await asyncio.sleep(0.2)
            await a.step()
        assert a.epoch == epoch and a.held()
        await a.close()

    async def test_held_ends_on_the_local_clock_when_the_database_is_gone(self, dsn: str) -> None:
        a = Lease(dsn, "a", "a:1", expiry=1.0, renew=0.2, margin=0.3)
        await a.step()
        a.dsn = "postgresql://nobody@127.0.0.1:1/none"  # every renewal fails from now on
        assert a._conn is not None
        await a._conn.close()
        await asyncio.sleep(0.5)
        await a.step()
        assert a.held() is True  # still within expiry - margin
        await asyncio.sleep(0.3)
        assert a.held() is False

    async def test_release_lets_another_take_over_at_once(self, dsn: str) -> None:
        a = Lease(dsn, "a", "a:1", expiry=5.0)
        b = Lease(dsn, "b", "b:1", expiry=5.0)
        await a.step()
        await a.release()
        await b.step()
        assert b.held() and not a.held()
        await a.close()
        await b.close()


class TestFence:
    """An in-flight delivery is written only by the node holding the lease, under its current epoch."""

    async def test_only_the_holder_starts_a_send(self, dsn: str) -> None:
        a = Lease(dsn, "a", "a:1")
        await a.step()
        with as_node(dsn, "a:1") as mine, as_node(dsn, "b:1") as other:
            with pytest.raises(psycopg.Error, match="does not hold the lease"):
                other.execute("UPDATE deliveries SET state = 'sending' WHERE id = 1")
            mine.execute("UPDATE deliveries SET state = 'sending' WHERE id = 1")
            row = mine.execute("SELECT claim_epoch, claim_holder FROM deliveries WHERE id = 1").fetchone()
        assert row == (a.epoch, "a:1")
        await a.close()

    async def test_a_late_record_after_losing_the_lease_is_refused(self, dsn: str) -> None:
        a = Lease(dsn, "a", "a:1", expiry=0.5, renew=0.1, margin=0.1)
        b = Lease(dsn, "b", "b:1", expiry=5.0)
        await a.step()
        with as_node(dsn, "a:1") as old, as_node(dsn, "b:1") as new:
            old.execute("UPDATE deliveries SET state = 'sending' WHERE id = 1")
            await asyncio.sleep(0.6)
            await b.step()
            with pytest.raises(psycopg.Error) as refused:
                old.execute("UPDATE deliveries SET state = 'sent' WHERE id = 1")
            assert refused.value.sqlstate == schema.FENCED
            new.execute("UPDATE deliveries SET state = 'sent' WHERE id = 1")  # the new leader resolves it
            with pytest.raises(psycopg.Error, match="sent already"):
                new.execute("UPDATE deliveries SET state = 'pending' WHERE id = 1")
        await a.close()
        await b.close()

    async def test_own_claim_from_an_earlier_lease_is_refused(self, dsn: str) -> None:
        # 2 s, not 0.5: the claim must land while the lease is held, and a full run's load once
        # made the connection and the claim take longer than half a second.
        a = Lease(dsn, "a", "a:1", expiry=2.0, renew=0.1, margin=0.1)
        await a.step()
        with as_node(dsn, "a:1") as conn:
            conn.execute("UPDATE deliveries SET state = 'sending' WHERE id = 2")
            await asyncio.sleep(2.2)
            await a.step()  # lapsed, then taken again: a new epoch
            with pytest.raises(psycopg.Error, match="claimed under lease epoch"):
                conn.execute("UPDATE deliveries SET state = 'sent' WHERE id = 2")
        await a.close()

    def test_commands_without_a_holder_pass(self, dsn: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE deliveries SET state = 'cancelled' WHERE id = 1")
