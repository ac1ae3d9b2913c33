"""One node of a cluster on PostgreSQL (`Cluster`: its name, its lease, the wanted-status rows it
watches, the holder id its store's connections carry so the fence knows who writes).
A daemon alone is cluster/solo.py's `Solo`; `node_for` there chooses."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import psycopg
import structlog

from statusd.cluster import schema
from statusd.cluster.lease import Lease, LeaseView
from statusd.cluster.sensors import SharedSensors
from statusd.cluster.watch import ClusterWatch
from statusd.config.load import Config
from statusd.model import Wanted
from statusd.outbox.facade import AsyncStore
from statusd.outbox.records import STORE_ERRORS
from statusd.sources.readings import Reading
from statusd.sources.status import rows

__all__ = ["Cluster"]

log = structlog.get_logger()

# A follower records nothing, so nothing would clear a trouble it met while the database was
# out of reach (/readyz unready for ever): it proves the store writable again this often.
RECHECK = 2.0

Loops = list[tuple[str, Coroutine[Any, Any, None]]]  # as cluster/solo.py's, which imports this module



class Cluster:
    """The node's part in the cluster; `leading()` is the gate of every send and every record."""

    def __init__(self, config: Config, ingest: Callable[[list[Reading]], None]) -> None:
        self.config = config
        self.dsn = rows.address(config)
        self.node = config.cluster.node_name
        # Per process, not per node: a restarted node is a new holder, under a new epoch.
        self.holder: str | None = f"{self.node}.{os.getpid()}.{secrets.token_hex(4)}"
        expiry = config.cluster.lease
        self.lease: Lease | None = Lease(self.dsn, self.node, self.holder, expiry=expiry, renew=expiry / 5,
                                         margin=max(1.0, expiry * 0.3), on_change=self._changed)
        self.shared = SharedSensors(self.dsn, self.node, ingest) if config.cluster.shared_sensors else None
        self._on_lead: Callable[[], object] = lambda: None
        self._store: AsyncStore | None = None
        self._ready = False  # the cluster's tables are made

    def leading(self) -> bool:
        return self.lease is not None and self.lease.held()

    def view(self) -> LeaseView:
        assert self.lease is not None
        return self.lease.view()

    def describe(self) -> dict[str, Any] | None:
        """For /readyz: this node, its role, who leads (as far as it knows), and whether it sends."""
        view = self.view()
        return {"node": view.node, "role": view.role, "leader": view.leader, "epoch": view.epoch,
                "sender": view.role == "leader"}

    def watch(self, step: Callable[[Wanted | None], float], fallback: Callable[[], Wanted],
              refresh: Callable[[], Awaitable[None]]) -> ClusterWatch | None:
        """The wanted status: rows in the database, not status.yaml."""
        return ClusterWatch(self.config, self.dsn, step, fallback, refresh)

    def note(self, readings: list[Reading]) -> None:
        if self.shared is not None:
            self.shared.note(readings)

    async def start(self, on_lead: Callable[[], object], store: AsyncStore) -> None:
        """Make the cluster's tables (in a thread), then try for the lease once; `on_lead` is called
        whenever this node takes over (the daemon then steps at once, which wakes the workers).
        A database out of reach does not stop the start: the lease loop tries again."""
        self._on_lead, self._store = on_lead, store
        if await self._prepared():
            assert self.lease is not None
            await self.lease.step()

    async def _prepared(self) -> bool:
        if not self._ready:
            try:
                await asyncio.to_thread(self._prepare)
            except (psycopg.Error, OSError) as err:
                log.error("cluster_tables_unavailable", reason=str(err).strip().splitlines()[0], retry_in=RECHECK)
                return False
            self._ready = True
        return True

    async def _lead(self) -> None:
        """The lease loop, once the cluster's tables are there."""
        for attempt in itertools.count():
            if await self._prepared():
                break
            await asyncio.sleep(min(RECHECK * (attempt + 1), 30.0))
        assert self.lease is not None
        await self.lease.run()

    def _prepare(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            schema.migrate(conn)

    def loops(self) -> Loops:
        assert self.lease is not None
        loops: Loops = [("lease", self._lead()), ("store-recheck", self._recheck())]
        if self.shared is not None:
            loops.append(("shared-sensors", self.shared.run()))
        return loops

    async def _recheck(self) -> None:
        """While a follower's store shows trouble: a probe write; once it succeeds, the trouble is over."""
        while True:
            await asyncio.sleep(RECHECK)
            store = self._store
            if store is None or store.trouble is None or self.leading():
                continue  # the leader's own writes clear its troubles
            try:
                await store.probe()
            except STORE_ERRORS:
                continue
            store.sync.troubles.clear()

    async def stop(self) -> None:
        assert self.lease is not None
        await self.lease.release()
        await self.lease.close()

    def _changed(self, leading: bool) -> None:
        assert self.lease is not None
        log.info("cluster_role", node=self.node, role="leader" if leading else "follower", epoch=self.lease.epoch)
        if leading:
            self._on_lead()
