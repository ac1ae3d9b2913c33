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

__all__ = ["running", "spawn"]

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
