"""Keeps the public picture current: at once after a status change, coalesced after sensor readings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from statusd import tasks
from statusd.model import Wanted
from statusd.outbox.facade import AsyncStore
from statusd.outbox.records import STORE_ERRORS
from statusd.web.state import WebState, recent_events

__all__ = ["Publisher"]

log = structlog.get_logger()

# Sensor readings change the public picture often; publish it at most this often.
COALESCE = 0.5
# After a status change the workers' requests leave before the pages are made again (making
# them holds the loop for milliseconds): the hand-out is awaited, at most HAND_WAIT, then this.
AFTER_POSTS = 0.005
HAND_WAIT = 1.0


class Publisher:
    """Rebuilds the web state from the wanted status, the store and the live sensor figures."""

    def __init__(self, state: WebState, store: AsyncStore, wanted: Callable[[], Wanted | None],
                 live: Callable[[datetime], Mapping[str, Mapping[str, Any]]]) -> None:
        self.state = state
        self.store = store
        self._wanted = wanted
        self._live = live
        self._dirty = asyncio.Event()
        self._soon: asyncio.Task[None] | None = None

    async def refresh(self, now: datetime) -> None:
        """Publish now (a status change must not wait)."""
        try:
            announced, history = await self.store.run(lambda store: (store.announced(), recent_events(store)))
        except STORE_ERRORS as err:
            log.error("store_unavailable", reason=str(err), store=self.store.label)
            return
        self.state.update(self._wanted() or {}, announced, history, now, live=self._live(now))

    def soon(self, after: asyncio.Future[None] | None = None) -> None:
        """A status change: publish `AFTER_POSTS` after `after` (the workers' hand-out) is done."""
        if self._soon is None:
            # kept: the reference is dropped mid-run
            self._soon = tasks.spawn(self._publish_soon(after), "publish-soon")

    async def _publish_soon(self, after: asyncio.Future[None] | None) -> None:
        if after is not None:
            await asyncio.wait((after,), timeout=HAND_WAIT)
        await asyncio.sleep(AFTER_POSTS)
        # Cleared before reading: a change made while this one reads the store gets a publish of its own.
        self._soon = None
        await self.refresh(datetime.now(UTC))

    def dirty(self) -> None:
        """Readings changed the picture: publish within the coalescing interval."""
        self._dirty.set()

    async def run(self) -> None:
        """Publish sensor-driven changes, coalesced: many readings, one update per half second."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.refresh(datetime.now(UTC))
            await asyncio.sleep(COALESCE)
