"""What the store remembers at a start: the status last announced, and today's automatic posts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import structlog

from statusd.events import AUTOMATIC
from statusd.model import FEED_AUTHOR, StatusEntry, Target, Wanted
from statusd.outbox.facade import AsyncStore
from statusd.outbox.queries import recent_events
from statusd.outbox.records import STORE_ERRORS, StoredEvent

__all__ = ["Pushed", "Said", "announced_entries", "as_wanted", "automatic_posts", "pushed", "recollect"]

log = structlog.get_logger()


Said = dict[Target, tuple[StatusEntry, StoredEvent]]
Pushed = dict[Target, tuple[StatusEntry, float]]  # a pushed entry and when it was recorded


async def recollect(store: AsyncStore) -> tuple[Wanted, Pushed]:
    """What was last announced (`as_wanted`) and the pushed statuses among it (`pushed`), read once."""
    said = await announced_entries(store)
    return as_wanted(said), pushed(said)


def as_wanted(said: Said) -> Wanted:
    """What was last announced, as entries: the last good state when status.yaml is unusable at a start."""
    return {target: entry for target, (entry, _) in said.items()}


def pushed(said: Said) -> Pushed:
    """The last announced status of each target that a building system pushed, and when it was recorded.

    A pushed status is announced first and written to status.yaml after: a stop between
    the two leaves it here and not in the file (sources/status/unwritten.py).
    """
    return {target: (replace(entry, by=stored.event.author, at=stored.event.at), stored.created_at)
            for target, (entry, stored) in said.items() if stored.event.author.startswith(FEED_AUTHOR)}


async def announced_entries(store: AsyncStore) -> Said:
    """Each target's last announced event and its entry (empty, logged, when the store cannot be read)."""
    found: Said = {}
    try:
        for key, said in (await store.announced()).items():
            stored = await store.event(said.event_id) if said.event_id else None
            if stored is not None:
                e = stored.event
                found[Target.parse(key)] = (StatusEntry(e.level, e.message, e.starts, e.until), stored)
    except STORE_ERRORS as err:
        log.error("store_unavailable", reason=str(err), store=store.label)
    return found


async def automatic_posts(store: AsyncStore) -> list[Any]:
    """The recent automatic (sensor) posts, so that a restart says none of today's twice."""
    try:
        recent = await store.run(recent_events, 500)
    except STORE_ERRORS as err:
        log.error("store_unavailable", reason=str(err), store=store.label)
        return []
    return [e for e in recent if e.kind in AUTOMATIC]
