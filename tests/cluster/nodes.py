"""Several real daemons on one PostgreSQL database, each with its own directory, node name and ports."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.daemon import Daemon

__all__ = ["Node", "Nodes", "cluster_config", "migrate"]

PASSWORD_VARIABLE = "STATUSD_DB_PASSWORD"


def migrate(dsn: str) -> None:
    """What `statusd migrate` does once before the nodes start: the store's tables."""
    from statusd.outbox.postgres import PostgresStore

    store = PostgresStore(dsn)
    try:
        store.migrate()
    finally:
        store.close()


def cluster_config(base: str, dsn_without_password: str, node: str, lease: str) -> str:
    """A node's statusd.yaml: the shared config, the store, and its own name."""
    return (base + f"\nstore: '{dsn_without_password}'\nstore_password: {{env: {PASSWORD_VARIABLE}}}\n"
            f"cluster: {{node: {node}, lease: {lease}}}\n")


@dataclass
class Node:
    """One daemon of the cluster."""

    name: str
    daemon: Daemon
    kills: int = 0

    def readyz(self, timeout: float = 1.0) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.daemon.ops_url}/readyz", timeout=timeout) as answer:
                return dict(json.loads(answer.read()))
        except OSError as err:
            body = getattr(err, "read", None)
            if body is not None:  # 503: not ready, but it answered
                try:
                    return dict(json.loads(body()))
                except ValueError:
                    return None
            return None

    def role(self) -> str | None:
        ready = self.readyz()
        cluster = (ready or {}).get("cluster") or {}
        return cluster.get("role")

    @property
    def alive(self) -> bool:
        return self.daemon.proc is not None and self.daemon.proc.poll() is None


@dataclass
class Nodes:
    """The cluster: start, find the leader, kill it, restart it."""

    nodes: list[Node] = field(default_factory=list)

    @classmethod
    def make(cls, directory: Path, base: str | list[str], dsn: str | list[str], password: str,
             env: dict[str, str], count: int = 3, lease: str = "3s") -> Nodes:
        """`count` nodes n1, n2, ...; `base` and `dsn` may differ per node (lists)."""
        nodes = cls()
        for index in range(count):
            name = f"n{index + 1}"
            home = directory / name
            home.mkdir(parents=True, exist_ok=True)
            text, url = (base[index] if isinstance(base, list) else base), (dsn[index] if isinstance(dsn, list) else dsn)
            (home / "statusd.yaml").write_text(cluster_config(text, url, name, lease), encoding="utf-8")
            daemon = Daemon(home / "statusd.yaml", home / "state", env={**env, PASSWORD_VARIABLE: password})
            nodes.nodes.append(Node(name, daemon))
        return nodes

    def start(self) -> None:
        for node in self.nodes:
            node.daemon.start(timeout=30)

    def stop(self) -> None:
        for node in self.nodes:
            node.daemon.kill()

    def leader(self, timeout: float = 20.0, exclude: Node | None = None) -> Node:
        """The node whose /readyz says it leads (waiting for one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leading = [n for n in self.nodes if n is not exclude and n.alive and n.role() == "leader"]
            if len(leading) == 1:
                return leading[0]
            time.sleep(0.05)
        roles = {n.name: n.role() if n.alive else "dead" for n in self.nodes}
        raise AssertionError(f"no single leader within {timeout:g} s: {roles}")

    def logs(self) -> str:
        return "\n".join(f"== {n.name}\n{n.daemon.logs()[-4000:]}" for n in self.nodes)
