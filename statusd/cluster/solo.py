"""This daemon's part: alone (`Solo`, the SQLite default: it always leads), or one node of a
cluster on PostgreSQL (cluster/node.py's `Cluster`), which `node_for` imports only then:
psycopg and the cluster's modules cost a daemon alone ~6 MB and 50 ms of start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from statusd.config.load import Config
from statusd.model import Wanted
from statusd.sources.readings import Reading

if TYPE_CHECKING:
    from statusd.cluster.lease import Lease
    from statusd.cluster.node import Cluster
    from statusd.cluster.watch import ClusterWatch
    from statusd.outbox.facade import AsyncStore

__all__ = ["Loops", "Solo", "node_for"]

Loops = list[tuple[str, Coroutine[Any, Any, None]]]


class Solo:
    """One daemon alone: it is the sender, with nothing to take or share."""

    holder: str | None = None
    lease: Lease | None = None

    def leading(self) -> bool:
        return True

    def describe(self) -> dict[str, Any] | None:
        return None

    def watch(self, step: Callable[[Wanted | None], float], fallback: Callable[[], Wanted],
              refresh: Callable[[], Awaitable[None]]) -> ClusterWatch | None:
        return None  # status.yaml is watched, as ever

    def note(self, readings: list[Reading]) -> None:
        return None

    async def start(self, on_lead: Callable[[], object], store: AsyncStore) -> None:
        return None

    async def stop(self) -> None:
        return None

    def loops(self) -> Loops:
        return []


def node_for(config: Config, ingest: Callable[[list[Reading]], None]) -> Solo | Cluster:
    """A `Cluster` node when the store is PostgreSQL, else `Solo`."""
    if not config.store.dsn:
        return Solo()
    from statusd.cluster.node import Cluster

    return Cluster(config, ingest)
