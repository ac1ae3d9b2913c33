"""Traffic for the daemon under test: desk flips with unique tags, sensor readings, and waiting.

Everything that blocks (the daemon's start, `statusd set`, the status file lock) runs in a
thread, because the fakes answer from the test's own event loop.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aiohttp

from statusd.config.load import Config
from statusd.sources.status import edit as status_edit
from statusd.sources.status import entry as desk
from statusd.sources.status import file as status_file
from tests.faults.audit import Outbox, read_outbox, unannounced
from tests.faults.fleet import COUNTER_TOKEN, Fleet
from tests.support.daemon import Daemon

__all__ = ["TARGETS", "TRACEBACK", "Desk", "Readings", "excerpt", "kill_mid_send", "log_events", "settle"]

TARGETS = ("main", "main/wifi", "main/printing", "annexe")
LEVELS = ("open", "limited", "closed", "emergency")
TRACEBACK = "Traceback (most recent call last)"


class Desk:
    """Flips statuses as `statusd set` does, each update with a unique tag (u0001, u0002, ...)."""

    def __init__(self, config: Config, rng: random.Random, repeats: float = 0.0) -> None:
        self.config = config
        self.rng = rng
        # The share of flips that say again exactly what an earlier one said (same target,
        # level and text): identical texts among the updates, as "Café: closed" twice.
        self.repeats = repeats
        self.said: list[tuple[str, str, str]] = []
        self.flips = 0
        self.flipped_at: dict[str, float] = {}  # tag → monotonic time its write completed
        self._lock = threading.Lock()

    def next(self, target: str | None = None, level: str | None = None) -> tuple[str, str, str]:
        """A fresh (target, level, tag), or now and then one said before."""
        with self._lock:
            self.flips += 1
            if self.said and target is None and self.rng.random() < self.repeats:
                return self.rng.choice(self.said)
            chosen = (target or self.rng.choice(TARGETS), level or self.rng.choice(LEVELS), f"u{self.flips:04d}")
            self.said.append(chosen)
            return chosen

    @staticmethod
    def messages(tag: str) -> list[str]:
        return [f"fr:Mise à jour {tag}.", f"en:Update {tag}."]

    def flip(self, target: str | None = None, level: str | None = None) -> str:
        """Write one update into status.yaml (locked, atomic); return its tag. Blocking."""
        target, level, tag = self.next(target, level)
        found, entry = desk.build(self.config, target, level, self.messages(tag), None, None,
                                  "fault-test", datetime.now(UTC))
        status_edit.set_entry(self.config.status_file, self.config, found, entry)
        self.flipped_at[tag] = time.monotonic()
        return tag

    def cli_flip(self, daemon: Daemon) -> str:
        """The same through the real `statusd set` command. Blocking."""
        target, level, tag = self.next()
        args = ["set", target, level]
        for message in self.messages(tag):
            args += ["-m", message]
        daemon.cli(*args)
        self.flipped_at[tag] = time.monotonic()
        return tag

    async def keep_flipping(self, pause: tuple[float, float], stop: asyncio.Event) -> None:
        """Flip at random intervals until `stop` is set."""
        while not stop.is_set():
            await asyncio.to_thread(self.flip)
            await _sleep_or_stop(stop, self.rng.uniform(*pause))


class Readings:
    """Pushes seat readings to POST /api/v1/readings and counts the answers by status."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.answers: Counter[int] = Counter()
        self.unreachable = 0  # the daemon was down (killed, or starting)

    async def keep_posting(self, url: str, pause: tuple[float, float], stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {COUNTER_TOKEN}"}
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            while not stop.is_set():
                await self._post(session, url)
                await _sleep_or_stop(stop, self.rng.uniform(*pause))

    async def _post(self, session: aiohttp.ClientSession, url: str) -> None:
        occupied = self.rng.choice((12, 70, 130, 150, 200, 236))
        body = {"kind": "seats", "site": "main", "zone": "floor2", "occupied": occupied, "capacity": 240}
        try:
            async with session.post(f"{url}/api/v1/readings", json=body) as answer:
                await answer.read()
                self.answers[answer.status] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.unreachable += 1

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.answers.items() if status >= 500)


async def kill_mid_send(daemon: Daemon, desk: Desk, fleet: Fleet, rng: random.Random) -> str:
    """A kill point: flip, then wait (up to 2 s) until a platform has taken a post whose answer
    is still on its way; "after set" when nothing was in flight in time (still a kill after a flip)."""
    await asyncio.to_thread(desk.flip)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if fleet.holding():
            return "mid-send"
        await asyncio.sleep(0.003)
    return "after set"


async def settle(daemon: Daemon, config: Config, channels: list[str], timeout: float, linger: float) -> Outbox:
    """The store once the wanted status is said on every channel and nothing waits (or `timeout`
    passed), read again `linger` seconds later, so that a late second post would be seen."""
    await asyncio.sleep(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outbox = read_outbox(daemon.state_dir)
        wanted = status_file.read(config.status_file, config)
        if not outbox.waiting() and not unannounced(outbox, wanted, channels):
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(linger)
    return read_outbox(daemon.state_dir)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


def log_events(text: str) -> list[dict[str, Any]]:
    """The daemon's JSON log lines as dicts (anything else, such as a traceback, is skipped)."""
    events = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


def excerpt(log: str, needle: str, before: int = 600, size: int = 4000) -> str:
    """The part of a log around the first `needle`, for an assertion message."""
    at = log.find(needle)
    return log[max(0, at - before):][:size] if at >= 0 else log[-size:]
