"""This daemon as one node of a cluster: its name, its lease, and the connection string its
store uses (which carries the node's holder id, so the fence knows who writes)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import psycopg
import structlog

from statusd.cluster import schema
from statusd.cluster.lease import Lease, LeaseView
from statusd.config.load import Config

__all__ = ["Cluster", "holder_dsn"]

log = structlog.get_logger()


def holder_dsn(dsn: str, holder: str) -> str:
    """`dsn` with `statusd.holder` set on every connection made from it."""
    return psycopg.conninfo.make_conninfo(dsn, options=f"-c statusd.holder={holder}")


class Cluster:
    """The node's part in the cluster; `leading()` is the gate of every send."""

    def __init__(self, config: Config, dsn: str) -> None:
        self.dsn = dsn
        self.node = config.cluster.node_name
        # Per process, not per node: a restarted node is a new holder, under a new epoch.
        self.holder = f"{self.node}.{os.getpid()}.{secrets.token_hex(4)}"
        self.store_dsn = holder_dsn(dsn, self.holder)
        expiry = config.cluster.lease
        self.lease = Lease(dsn, self.node, self.holder, expiry=expiry, renew=expiry / 5,
                           margin=max(1.0, expiry * 0.3), on_change=self._changed)
        self._listeners: list[Callable[[bool], None]] = []

    def prepare(self) -> None:
        """Create the cluster's tables and triggers (blocking: before the loop's work starts)."""
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            schema.migrate(conn)

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(leading)` whenever this node becomes or stops being the leader."""
        self._listeners.append(listener)

    def leading(self) -> bool:
        return self.lease.held()

    def view(self) -> LeaseView:
        return self.lease.view()

    def describe(self) -> dict[str, Any]:
        """For /readyz: this node, its role, who leads (as far as it knows), and whether it sends."""
        view = self.view()
        return {"node": view.node, "role": view.role, "leader": view.leader, "epoch": view.epoch,
                "sender": view.role == "leader"}

    def loops(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        return [("lease", self.lease.run())]

    async def stop(self) -> None:
        await self.lease.release()
        await self.lease.close()

    def _changed(self, leading: bool) -> None:
        log.info("cluster_role", node=self.node, role="leader" if leading else "follower", epoch=self.lease.epoch)
        for listener in self.listeners():
            listener(leading)

    def listeners(self) -> list[Callable[[bool], None]]:
        return list(self._listeners)
