"""Shared sensor figures (`sensors.shared: true`): each node's latest figure per zone and
queue, written to PostgreSQL once a second, and the other nodes' read back.

Without it a node only knows the readings it received itself. With it every node
takes the others' figures as readings of its own (so its page shows the whole
picture), and the leader alone turns them into automatic posts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

import psycopg
import structlog

from statusd.sources.readings import QueueReading, Reading, SeatReading

__all__ = ["SharedSensors"]

log = structlog.get_logger()

EVERY = 1.0
FRESH = 120.0  # figures older than this (a node gone) are not read back
KINDS: dict[str, type[SeatReading] | type[QueueReading]] = {"seats": SeatReading, "queue": QueueReading}

UPSERT = ("INSERT INTO cluster_sensors (site, zone, kind, node, body, updated_at) VALUES (%s, %s, %s, %s, %s, now())"
          " ON CONFLICT (site, zone, kind, node) DO UPDATE SET body = EXCLUDED.body, updated_at = now()")
OTHERS = ("SELECT node, kind, body, updated_at FROM cluster_sensors WHERE node <> %s AND updated_at > %s"
          " AND updated_at > now() - %s * interval '1 second' ORDER BY updated_at")


def _key(reading: SeatReading | QueueReading) -> tuple[str, str, str]:
    if isinstance(reading, SeatReading):
        return reading.site, reading.zone, "seats"
    return reading.site, reading.queue, "queue"


def _encode(reading: SeatReading | QueueReading) -> str:
    data = asdict(reading)
    data["at"] = reading.at.isoformat()
    return json.dumps(data)


def _decode(kind: str, body: str, node: str) -> Reading | None:
    try:
        data = json.loads(body)
        data["at"] = datetime.fromisoformat(data["at"])
        data["source"] = f"node {node}: {data.get('source', '')}"
        return KINDS[kind](**data)
    except (ValueError, KeyError, TypeError):
        return None


class SharedSensors:
    """Collects this node's readings; `run` writes them and hands the others' to `ingest`."""

    def __init__(self, dsn: str, node: str, ingest: Callable[[list[Reading]], None]) -> None:
        self.dsn = dsn
        self.node = node
        self._ingest = ingest
        self._latest: dict[tuple[str, str, str], SeatReading | QueueReading] = {}
        self._seen: datetime | str = "-infinity"

    def note(self, readings: list[Reading]) -> None:
        """Readings this node received (from its own feeds): kept for the next write."""
        for reading in readings:
            if isinstance(reading, SeatReading | QueueReading) and not reading.source.startswith("node "):
                self._latest[_key(reading)] = reading

    async def run(self) -> None:
        while True:
            try:
                others = await asyncio.to_thread(self._exchange)
            except (psycopg.Error, OSError) as err:
                log.warning("shared_sensors_unavailable", reason=type(err).__name__)
            else:
                if others:
                    self._ingest(others)
            await asyncio.sleep(EVERY)

    def _exchange(self) -> list[Reading]:
        """In a thread: write ours (those new since the last write), read the others' new ones."""
        mine, self._latest = self._latest, {}
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=2) as conn:
            with conn.transaction():
                for (site, zone, kind), reading in mine.items():
                    conn.execute(UPSERT, (site, zone, kind, self.node, _encode(reading)))
            rows = conn.execute(OTHERS, (self.node, self._seen, FRESH)).fetchall()
        found: list[Reading] = []
        for node, kind, body, updated in rows:
            if isinstance(updated, datetime):
                self._seen = updated
            decoded = _decode(str(kind), str(body), str(node))
            if decoded is not None:
                found.append(decoded)
        return found
