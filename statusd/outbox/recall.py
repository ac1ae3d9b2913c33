"""What the store remembers at a start: the status last announced, and today's automatic posts."""

from __future__ import annotations

from typing import Any

import structlog

from statusd.events import AUTOMATIC
from statusd.model import StatusEntry, Target, Wanted
from statusd.outbox.facade import AsyncStore
from statusd.outbox.queries import recent_events
from statusd.outbox.records import STORE_ERRORS

__all__ = ["automatic_posts", "last_announced"]

log = structlog.get_logger()


async def last_announced(store: AsyncStore) -> Wanted:
    """What the store says was last announced, as entries (empty, logged, when it cannot be read)."""
    wanted: dict[Target, StatusEntry] = {}
    try:
        for key, said in (await store.announced()).items():
            stored = await store.event(said.event_id) if said.event_id else None
            if stored is not None:
                e = stored.event
                wanted[Target.parse(key)] = StatusEntry(e.level, e.message, e.starts, e.until)
    except STORE_ERRORS as err:
        log.error("store_unavailable", reason=str(err), store=store.label)
    return wanted


async def automatic_posts(store: AsyncStore) -> list[Any]:
    """The recent automatic (sensor) posts, so that a restart says none of today's twice."""
    try:
        recent = await store.run(recent_events, 500)
    except STORE_ERRORS as err:
        log.error("store_unavailable", reason=str(err), store=store.label)
        return []
    return [e for e in recent if e.kind in AUTOMATIC]
