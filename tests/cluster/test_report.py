"""What `statusd show` says of the cluster: this node's part and who leads, even with no leader or no database."""

from __future__ import annotations

import psycopg
import pytest

from statusd.cluster import schema
from statusd.cluster.lease import Lease
from statusd.cluster.report import leadership_lines

pytestmark = pytest.mark.e2e


@pytest.fixture
def dsn(postgres_dsn: str) -> str:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id TEXT); CREATE TABLE announced (target TEXT);"
                     " CREATE TABLE deliveries (id BIGSERIAL PRIMARY KEY, state TEXT NOT NULL)")
        schema.migrate(conn)
    return postgres_dsn


class TestLeadershipLines:
    """The leader says it sends; a follower says it does not, and names the leader."""

    async def test_leader_and_follower(self, dsn: str) -> None:
        lease = Lease(dsn, "branch-a", "branch-a.1.x")
        await lease.step()
        assert leadership_lines(dsn, "branch-a")[0] == (
            "Cluster: this node is branch-a, the leader (it sends to the channels)")
        lines = leadership_lines(dsn, "branch-b")
        assert lines[0] == "Cluster: this node is branch-b, a follower (it serves, and does not send)"
        assert lines[1].startswith(f"Leader: branch-a, lease epoch {lease.epoch}, leading for ")
        await lease.release()
        assert "no node leads right now" in leadership_lines(dsn, "branch-b")[0]
        await lease.close()

    def test_database_out_of_reach(self) -> None:
        lines = leadership_lines("postgresql://statusd:pw-not-shown@127.0.0.1:1/none", "branch-b")
        assert lines[0].startswith("Cluster: this node is branch-b; the database cannot be reached")
        assert "pw-not-shown" not in lines[0]
