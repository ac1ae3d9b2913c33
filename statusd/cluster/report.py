"""What `statusd show` says of the cluster: which node leads, and this node's part."""

from __future__ import annotations

import psycopg

__all__ = ["leadership_lines"]

QUERY = ("SELECT node, epoch, expires_at > clock_timestamp(),"
         " extract(epoch FROM clock_timestamp() - acquired_at) FROM cluster_lease WHERE name = 'leader'")


def leadership_lines(dsn: str, node: str) -> list[str]:
    """One or two lines for a person; never raises for a database out of reach."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute(QUERY).fetchone()
    except psycopg.Error as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[-1]
        return [f"Cluster: this node is {node}; the database cannot be reached ({reason}), so who leads is unknown"]
    if row is None or not row[2]:
        return [f"Cluster: this node is {node}, a follower; no node leads right now (a takeover within seconds)"]
    leader, epoch, _, held = str(row[0]), int(row[1]), row[2], float(row[3])
    role = "the leader (it sends to the channels)" if leader == node else "a follower (it serves, and does not send)"
    return [f"Cluster: this node is {node}, {role}",
            f"Leader: {leader}, lease epoch {epoch}, leading for {_span(held)}"]


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
