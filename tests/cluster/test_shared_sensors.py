"""Sensor figures between two daemons: node-local by default; with `sensors.shared: true` a reading
pushed to one node shows on the other's status.json too."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.cluster.nodes import Node, Nodes, migrate
from tests.faults.fleet import COUNTER_TOKEN, ENV
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.e2e


def _occupied(node: Node) -> object:
    with urllib.request.urlopen(f"{node.daemon.url}/status.json", timeout=2) as answer:
        zones = json.loads(answer.read())["sites"]["main"].get("zones") or {}
    return (zones.get("floor2") or {}).get("occupied")


async def _push(node: Node, occupied: int) -> None:
    body = {"kind": "seats", "site": "main", "zone": "floor2", "occupied": occupied, "capacity": 240}
    headers = {"Authorization": f"Bearer {COUNTER_TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{node.daemon.url}/api/v1/readings", json=body, headers=headers) as answer:
            assert answer.status < 300, await answer.text()


async def _shows(node: Node, occupied: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await asyncio.to_thread(_occupied, node) == occupied:
            return True
        await asyncio.sleep(0.1)
    return False


class TestSharedSensors:
    """A reading reaches the other node only when sensors are shared."""

    @pytest.mark.parametrize("shared", [True, False])
    async def test_reading_on_one_node(self, shared: bool, fault_config: Callable[..., Path], tmp_path: Path,
                                       postgres_server: PostgresServer, postgres_database: str) -> None:
        base = fault_config("  console: {type: console, language: fr}\n").read_text(encoding="utf-8")
        if shared:
            base += "sensors: {shared: true}\n"
        dsn = postgres_server.dsn(postgres_database)
        migrate(dsn)
        password = dsn.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        nodes = Nodes.make(tmp_path / "cluster", base, postgres_server.dsn(postgres_database, password=False),
                           password, ENV, count=2)
        try:
            await asyncio.to_thread(nodes.start)
            first, second = nodes.nodes
            await _push(first, 130)
            assert await _shows(first, 130, 5.0)
            assert await _shows(second, 130, 5.0 if shared else 2.5) is shared
        finally:
            await asyncio.to_thread(nodes.stop)
