"""Keeps the public picture current: at once after a status change, coalesced after sensor readings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from statusd.model import Wanted
from statusd.outbox.facade import AsyncStore
from statusd.outbox.records import STORE_ERRORS
from statusd.web.state import WebState, recent_events

__all__ = ["Publisher"]

log = structlog.get_logger()

# Sensor readings change the public picture often; publish it at most this often.
COALESCE = 0.5


class Publisher:
    """Rebuilds the web state from the wanted status, the store and the live sensor figures."""

    def __init__(self, state: WebState, store: AsyncStore, wanted: Callable[[], Wanted | None],
                 live: Callable[[datetime], Mapping[str, Mapping[str, Any]]]) -> None:
        self.state = state
        self.store = store
        self._wanted = wanted
        self._live = live
        self._dirty = asyncio.Event()

    async def refresh(self, now: datetime) -> None:
        """Publish now (a status change must not wait)."""
        try:
            announced, history = await self.store.run(lambda store: (store.announced(), recent_events(store)))
        except STORE_ERRORS as err:
            log.error("store_unavailable", reason=str(err), store=self.store.label)
            return
        self.state.update(self._wanted() or {}, announced, history, now, live=self._live(now))

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
