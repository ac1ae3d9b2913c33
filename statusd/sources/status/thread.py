"""A thread of the daemon's own for status.yaml's reads and writes, apart from the loop's shared pool.

The loop's default pool also resolves host names for every channel (aiohttp asks
getaddrinfo there): with the resolver down or slow, as in a network outage, each
worker waits out its lookup, and a read of status.yaml queued behind them held the
file's shared lock all that while, so that every `statusd set` waited for it (5 s
a flip with 128 channels whose names would not resolve). Reads and writes of the
file happen one at a time anyway.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["OwnThread"]

T = TypeVar("T")


class OwnThread:
    """One worker thread, started at its first job, for the calls `run` is given."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`call(*args, **kwargs)` on this thread, awaited from the loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(call, *args, **kwargs))
