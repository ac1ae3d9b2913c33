"""Three daemons on one PostgreSQL: the leader SIGKILLed 20 times during bursts of changes made
on random nodes, and a leader cut off from the database.

Among the channels: a Mastodon-compatible server that ignores Idempotency-Key (its posts
are found by look-up), and webhooks behind a proxy that now and then takes a post and
answers only after the channel gave up (a platform that stalls, then answers). Afterwards
every receiver holds each update once, none lost, the latest status last on every channel;
each fail-over (kill → first delivery by the new leader) is timed.

STATUSD_CLUSTER_KILLS=3 makes a quick run while working on it (the volume checks then fail).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from statusd import loading
from statusd.sources.status.rows import WantedRows
from tests.cluster import traffic
from tests.cluster.nodes import Node, Nodes, migrate
from tests.cluster.outbox import wait_settled
from tests.cluster.traffic import Changes
from tests.faults.audit import audit, out_of_order, unannounced
from tests.faults.driver import TRACEBACK, excerpt
from tests.faults.fleet import ENV, Fleet, Hook
from tests.faults.summary import Ledger, Row
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.faults

KILLS = int(os.environ.get("STATUSD_CLUSTER_KILLS") or 20)
HOOKS = {"hook-fr": Hook("fr"), "hook-en": Hook("en")}
CHANNELS = ("hook-fr", "hook-en", "mastodon")
FAULTS = {"hook-fr": {"late": 0.2}, "mastodon": {"late": 0.15}}
LEASE = "3s"
FAILOVER_LIMIT = 10.0
TRANSIT = 0.2


class TestLeaderKilled:
    """Twenty leader kills during bursts: one sender at a time, nothing lost or said twice."""

    mid_send = 0

    async def test_twenty_kills(self, rng: random.Random, fleet_factory: Callable[..., Awaitable[Fleet]],
                                fault_config: Callable[..., Path], tmp_path: Path, ledger: Ledger,
                                postgres_server: PostgresServer, postgres_database: str) -> None:
        fleet = await fleet_factory(rng, HOOKS, delay=(0.0, 0.1), faults=FAULTS, channel_timeout=1.0,
                                    mastodon_shape="go")
        path = fault_config(fleet.channels(timeout="1s", only=CHANNELS))
        config = loading.load(path)
        dsn = postgres_server.dsn(postgres_database)
        migrate(dsn)
        nodes = Nodes.make(tmp_path / "cluster", Changes.config_text(path.read_text(encoding="utf-8")),
                           postgres_server.dsn(postgres_database, password=False), _password(dsn),
                           {**ENV, **traffic.ENV}, lease=LEASE)
        changes = Changes(config, WantedRows(config, dsn), nodes, rng)
        failovers: list[float] = []
        self.mid_send = 0
        try:
            await asyncio.to_thread(nodes.start)
            await changes.first()
            for _ in range(KILLS):
                failovers.append(await self._trial(nodes, changes, fleet, rng))
            outbox = await wait_settled(dsn, changes, CHANNELS)
        finally:
            await asyncio.to_thread(nodes.stop)
        result = audit(outbox, fleet, CHANNELS)
        order = out_of_order(outbox, fleet, CHANNELS)
        missing = unannounced(outbox, changes.rows.read(), CHANNELS)
        ledger.add(Row("leader SIGKILL, 3 nodes", KILLS, KILLS, result.expected, result.arrived,
                       result.duplicated, result.lost + len(missing), len(result.failed), result.unrecorded))
        print(f"fail-over seconds: {[round(f, 2) for f in failovers]}; median {statistics.median(failovers):.2f},"
              f" max {max(failovers):.2f}; kills mid-send: {self.mid_send}; changes: {changes.counts};"
              f" deliveries sent: {result.expected}")
        logs = nodes.logs()
        assert TRACEBACK not in logs, excerpt(logs, TRACEBACK)
        wrong = [*result.problems, *order, *(f"stuck: {s}" for s in result.stuck),
                 *(f"failed: {f}" for f in result.failed), *(f"not announced: {m}" for m in missing)]
        assert wrong == [], f"{len(wrong)} problem(s):\n" + "\n".join(wrong)
        assert (result.expected, result.duplicated, result.unrecorded) == (result.arrived, 0, 0)
        assert max(failovers) < FAILOVER_LIMIT, failovers
        assert self.mid_send >= KILLS // 4, f"only {self.mid_send} kills landed while a post was in flight"
        assert len(outbox.events) >= 40 and result.expected >= 100, (len(outbox.events), result.expected)

    async def _trial(self, nodes: Nodes, changes: Changes, fleet: Fleet, rng: random.Random) -> float:
        """A burst on random nodes, the leader killed mid-burst; the seconds until the new leader delivers."""
        leader = await asyncio.to_thread(nodes.leader)
        for _ in range(rng.randint(2, 4)):
            await changes.one()
            await asyncio.sleep(rng.uniform(0.05, 0.3))
        self.mid_send += await _mid_send(fleet)
        await asyncio.to_thread(leader.daemon.kill)
        killed = time.monotonic()  # once it is dead: nothing it does comes after this
        await changes.one(avoid=leader)  # work for the next leader
        seconds = await _first_delivery_after(fleet, killed)
        await asyncio.to_thread(_restart, leader)
        return seconds


async def _mid_send(fleet: Fleet) -> bool:
    """Up to a second for a moment when a platform holds a post's answer back; whether one came."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if fleet.holding():
            return True
        await asyncio.sleep(0.005)
    return False


async def _first_delivery_after(fleet: Fleet, moment: float, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A request the dead leader wrote just before may still be on its way through a proxy:
        # no takeover comes before the lease has expired, so the first TRANSIT seconds are its.
        arrivals = [a.monotonic for hook in fleet.hooks.values() for a in hook.arrivals
                    if a.monotonic > moment + TRANSIT]
        if arrivals:
            return min(arrivals) - moment
        await asyncio.sleep(0.02)
    raise AssertionError(f"no delivery within {timeout:g} s of the leader's kill")


def _restart(node: Node) -> None:
    node.kills += 1
    node.daemon.start(timeout=30)


def _password(dsn: str) -> str:
    return dsn.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
