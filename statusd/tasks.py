"""The one helper that starts a task outside the TaskGroup: kept referenced, its crash logged.

Long-lived loops belong in the App's TaskGroup. A short job started from a
callback (a reload on SIGHUP) cannot be awaited there; `spawn` keeps a strong
reference until it ends (asyncio itself keeps only a weak one, so an
unreferenced task can vanish mid-run) and logs an exception instead of
letting it wait, unseen, for the garbage collector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

__all__ = ["running", "spawn", "wait_event"]

log = structlog.get_logger()

_RUNNING: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Start `coro` as a kept task named `name`; a crash is logged as `task_crashed`."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _RUNNING.add(task)
    task.add_done_callback(_done)
    return task


def running() -> frozenset[asyncio.Task[Any]]:
    """The spawned tasks that have not finished yet."""
    return frozenset(_RUNNING)


def _done(task: asyncio.Task[Any]) -> None:
    _RUNNING.discard(task)
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("task_crashed", task=task.get_name(), error_type=type(error).__name__)


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True if it was set.

    Not `asyncio.wait_for(event.wait(), timeout)`: on Python 3.11 that swallows a
    cancellation arriving as the event is set (an inotify event at shutdown, say),
    and the cancelled loop would run on, holding up the TaskGroup.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
    return event.is_set()
