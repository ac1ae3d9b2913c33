"""Waiting for something a separate process or server does, bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(done: Callable[[], bool], what: str, timeout: float = 5.0, blocking: bool = False) -> None:
    """Return once `done()` is true; fail naming `what` after `timeout` seconds.

    `blocking` runs the check in a thread (for one that makes an HTTP request).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await asyncio.to_thread(done) if blocking else done():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout:g} s: {what}")
