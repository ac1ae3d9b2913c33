"""Changes made on random nodes of the cluster, each with a unique tag: as the desk page and
`statusd set` write them (the wanted rows), through a node's `statusd set`, and as a fire
panel's push to a node's ingest API."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime

import aiohttp

from statusd.config.load import Config
from statusd.sources.status import entry as desk
from statusd.sources.status.rows import WantedRows
from tests.cluster.nodes import Node, Nodes
from tests.faults.driver import TARGETS

__all__ = ["ENV", "PANEL_FEED", "Changes"]

PANEL_TOKEN = "cluster-panel-token-7f21"
ENV = {"PANEL_TOKEN": PANEL_TOKEN}
# A fire panel's feed, allowed to set a status (feeds may only read sensors unless told).
PANEL_FEED = "  panel: {type: http, token: {env: PANEL_TOKEN}, allow: [status]}\n"

LEVELS = ("open", "limited", "closed", "emergency")
WAYS = {"desk": 0.6, "push": 0.25, "command": 0.15}


class Changes:
    """Makes one change at a time on a random live node; counts them by the way they were made."""

    @staticmethod
    def config_text(text: str) -> str:
        """A fault-suite statusd.yaml with the fire panel's feed added."""
        return text.replace("feeds:\n", "feeds:\n" + PANEL_FEED, 1)

    def __init__(self, config: Config, rows: WantedRows, nodes: Nodes, rng: random.Random) -> None:
        self.config = config
        self.rows = rows
        self.nodes = nodes
        self.rng = rng
        self.tags = 0
        self.counts: Counter[str] = Counter()

    def _tag(self) -> str:
        self.tags += 1
        return f"u{self.tags:04d}"

    async def first(self) -> None:
        """Every target given a status, so that every one is announced from the start."""
        for target in TARGETS:
            await asyncio.to_thread(self._write, target, "limited", self._tag())

    async def one(self, avoid: Node | None = None) -> str:
        node = self.rng.choice([n for n in self.nodes.nodes if n is not avoid and n.alive])
        way = self.rng.choices(list(WAYS), list(WAYS.values()))[0]
        tag = self._tag()
        if way == "push":
            await self._push(node, tag)
        elif way == "command":
            target, level = self.rng.choice(TARGETS), self.rng.choice(LEVELS)
            await asyncio.to_thread(node.daemon.cli, "set", target, level, "-m", f"fr:Mise à jour {tag}.",
                                    "-m", f"en:Update {tag}.")
        else:
            await asyncio.to_thread(self._write, self.rng.choice(TARGETS), self.rng.choice(LEVELS), tag)
        self.counts[way] += 1
        return tag

    def _write(self, target: str, level: str, tag: str) -> None:
        found, entry = desk.build(self.config, target, level, [f"fr:Mise à jour {tag}.", f"en:Update {tag}."],
                                  None, None, "cluster-test", datetime.now(UTC))
        self.rows.set(found, entry)

    async def _push(self, node: Node, tag: str) -> None:
        """A fire panel on `node`'s ingest API: main closed or in emergency (staff alone reopen)."""
        body = {"kind": "status", "site": "main", "level": self.rng.choice(("closed", "emergency", "limited")),
                "reason": f"Alarme {tag}"}
        headers = {"Authorization": f"Bearer {PANEL_TOKEN}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.post(f"{node.daemon.url}/api/v1/readings", json=body, headers=headers) as answer:
                await answer.read()
                assert answer.status < 300, f"{node.name} refused the push: {answer.status}"
