"""`cluster:` and `sensors:` in statusd.yaml: this node's name, the lease, shared sensor figures.

They matter only when the store is PostgreSQL (several daemons on one database):

    cluster: {node: branch-a, lease: 5s}
    sensors: {shared: true}
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from statusd.config.reader import Section

__all__ = ["ClusterConfig", "parse_cluster"]

_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class ClusterConfig:
    """This node's name (the host's by default), the lease's expiry, and whether sensor figures are shared."""

    node: str = ""
    lease: float = 5.0
    shared_sensors: bool = False

    @property
    def node_name(self) -> str:
        return self.node or _host()


def _host() -> str:
    import socket  # here: only a cluster's daemon asks, and `statusd set` imports this module (issue 15)

    name = socket.gethostname().split(".")[0]
    return name if _NODE.match(name) else "node"


def parse_cluster(cluster: Section, sensors: Section) -> ClusterConfig:
    node, lease, shared = "", 5.0, False
    if cluster.node is not None and cluster.is_mapping():
        cluster.allow("node", "lease")
        node = cluster.string("node") or ""
        if node and not _NODE.match(node):
            cluster.error("node", f"should be a short name of letters, digits, '.', '-' or '_', got {node!r}")
            node = ""
        lease = cluster.duration("lease", 5.0)
        if not 2.0 <= lease <= 60.0:
            cluster.error("lease", f"should be between 2s and 60s, got {lease:g}s")
            lease = 5.0
    if sensors.node is not None and sensors.is_mapping():
        sensors.allow("shared")
        value = sensors.get("shared", False)
        if not isinstance(value, bool):
            sensors.error("shared", f"should be true or false, got {value!r}")
        shared = value is True
    return ClusterConfig(node, lease, shared)
