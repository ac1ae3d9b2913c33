"""A leader cut off from PostgreSQL (a TCP proxy stops passing anything, as a pulled cable)
stops sending within its lease; another node takes over; the first, once back, sends no
stale work: every request it makes goes through proxies of its own, and they are counted."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from statusd import loading
from statusd.sources.status.rows import WantedRows
from tests.cluster import traffic
from tests.cluster.nodes import Nodes, migrate
from tests.cluster.outbox import wait_settled
from tests.cluster.tcp import TcpProxy
from tests.cluster.test_failover import _password
from tests.cluster.traffic import Changes
from tests.faults.audit import audit, out_of_order, unannounced
from tests.faults.fleet import ENV, Fleet, Hook
from tests.faults.proxy import FaultProxy
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.faults

HOOKS = {"hook-fr": Hook("fr"), "hook-en": Hook("en")}
CHANNELS = tuple(HOOKS)
LEASE = 3.0
# The node stops sending when its lease runs out on its own clock: at most LEASE after the cut
# (the renewal before it may have been the last), plus a send cut short at that moment.
STOP_WITHIN = LEASE + 0.5


class TestCutOff:
    """The cut-off leader's own proxies see nothing after its lease; nothing is lost or doubled."""

    async def test_cut_leader_stops_and_comes_back_as_follower(
        self, rng: random.Random, fleet_factory: Callable[..., Awaitable[Fleet]],
        fault_config: Callable[..., Path], tmp_path: Path, postgres_server: PostgresServer,
        postgres_database: str,
    ) -> None:
        fleet = await fleet_factory(rng, HOOKS, delay=(0.0, 0.05), channel_timeout=1.0)
        mine = {name: FaultProxy(hook.url.removesuffix("/hook"), random.Random(rng.random()),
                                 faults={"late": 0.3}, timeout=1.0) for name, hook in fleet.hooks.items()}
        for proxy in mine.values():
            await proxy.start()
        link = TcpProxy("127.0.0.1", postgres_server.port)
        await link.start()
        shared = Changes.config_text(fault_config(fleet.channels(timeout="1s", only=CHANNELS)).read_text(encoding="utf-8"))
        cut_base = shared
        for name, proxy in mine.items():
            cut_base = cut_base.replace(fleet.proxies[name].url, proxy.url)
        dsn = postgres_server.dsn(postgres_database)
        migrate(dsn)
        plain = postgres_server.dsn(postgres_database, password=False)
        nodes = Nodes.make(tmp_path / "cluster", [cut_base, shared], [plain.replace(
            f":{postgres_server.port}/", f":{link.port}/"), plain], _password(dsn), {**ENV, **traffic.ENV}, count=2, lease=f"{LEASE:g}s")
        config = loading.load(tmp_path / "statusd.yaml")
        changes = Changes(config, WantedRows(config, dsn), nodes, rng)
        first, second = nodes.nodes
        try:
            await asyncio.to_thread(first.daemon.start, 30)
            assert await asyncio.to_thread(nodes.leader) is first
            await asyncio.to_thread(second.daemon.start, 30)
            await changes.first()
            await _until(lambda: sum(p.requests for p in mine.values()) >= 4 * len(mine) // 2)
            for _ in range(3):
                await changes.one(avoid=second)
            # Cut while a post is in flight when one is (its answer held back by a "late" fault).
            await _until(lambda: any(p.holding for p in mine.values()), timeout=3.0, fail=False)
            link.cut()
            cut = time.monotonic()
            sent_before = {n: p.requests for n, p in mine.items()}
            for _ in range(4):
                await asyncio.sleep(rng.uniform(0.2, 0.6))
                await asyncio.to_thread(changes._write, rng.choice(("main", "annexe")), rng.choice(("closed", "open")),
                                        changes._tag())
            await asyncio.sleep(max(0.0, cut + STOP_WITHIN - time.monotonic()))
            after_lease = {n: p.requests for n, p in mine.items()}
            assert await asyncio.to_thread(nodes.leader, 15.0, first) is second
            await asyncio.sleep(2.0)
            assert {n: p.requests for n, p in mine.items()} == after_lease, "the cut-off node sent after its lease"
            link.restore()
            back = time.monotonic()
            for _ in range(4):
                await changes.one()
                await asyncio.sleep(rng.uniform(0.1, 0.4))
            outbox = await wait_settled(dsn, changes, CHANNELS)
            await asyncio.sleep(max(0.0, back + 4.0 - time.monotonic()))
            # Its role as it answers; a loaded machine may take over a second to answer (speed is a bench's).
            role = await asyncio.to_thread(first.readyz, 10.0)
            # No answer from a process that has exited is a crash, not a slow answer: say so, with its log.
            silent = None if role is not None else f"n1 gave no /readyz answer (running: {first.alive})\n{nodes.logs()}"
        finally:
            await asyncio.to_thread(nodes.stop)
            await link.stop()
            for proxy in mine.values():
                await proxy.stop()
        assert {n: p.requests for n, p in mine.items()} == after_lease, "the node sent stale work once back"
        assert role is not None, silent
        assert role["ready"] and role["cluster"]["role"] == "follower", role
        assert role["cluster"]["leader"] == "n2" and role["cluster"]["sender"] is False, role
        result = audit(outbox, fleet, CHANNELS)
        missing = unannounced(outbox, changes.rows.read(), CHANNELS)
        wrong = [*result.problems, *out_of_order(outbox, fleet, CHANNELS), *(f"stuck: {s}" for s in result.stuck),
                 *(f"failed: {f}" for f in result.failed), *(f"not announced: {m}" for m in missing)]
        assert wrong == [], "\n".join(wrong)
        assert (result.expected, result.duplicated) == (result.arrived, 0)
        print(f"requests through the cut node's proxies: before the cut {sent_before}, at its lease {after_lease}")


async def _until(condition: Callable[[], bool], timeout: float = 20.0, fail: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            if fail:
                raise AssertionError("timed out")
            return
        await asyncio.sleep(0.01)
