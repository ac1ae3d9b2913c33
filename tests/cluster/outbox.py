"""What the cluster's PostgreSQL store holds, read as the fault suite's audit reads a SQLite store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from statusd.events import Event
from statusd.outbox.records import POST, Delivery, delivery_from_row
from tests.cluster.traffic import Changes
from tests.faults.audit import Outbox, Recorded, unannounced

__all__ = ["read_cluster_outbox", "wait_settled"]

SETTLE = 40.0


class _Row(dict[str, Any]):
    """A psycopg dict row that also answers `keys()` as sqlite3.Row does (records.py asks)."""


def read_cluster_outbox(dsn: str) -> Outbox:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        events = conn.execute("SELECT id, body FROM events ORDER BY seq DESC").fetchall()
        rows = conn.execute("SELECT * FROM deliveries WHERE action = %s ORDER BY id", (POST,)).fetchall()
    by_event: dict[str, list[Delivery]] = {}
    for row in rows:
        delivery = delivery_from_row(_Row(row))  # type: ignore[arg-type]
        by_event.setdefault(delivery.event_id, []).append(delivery)
    recorded = []
    for row in events:
        e = Event.from_json(str(row["body"]))
        recorded.append(Recorded(e.id, e.kind.value, str(e.target), e.level.value, dict(e.message),
                                 by_event.get(e.id, [])))
    return Outbox(recorded)


async def wait_settled(dsn: str, changes: Changes, channels: Iterable[str]) -> Outbox:
    """Until the latest status is announced everywhere and nothing waits; then a little longer,
    so that a late second post would still be seen."""
    names = list(channels)
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        outbox = await asyncio.to_thread(read_cluster_outbox, dsn)
        wanted = await asyncio.to_thread(changes.rows.read)
        if not outbox.waiting() and not unannounced(outbox, wanted, names):
            break
        await asyncio.sleep(0.3)
    await asyncio.sleep(1.5)
    return await asyncio.to_thread(read_cluster_outbox, dsn)
