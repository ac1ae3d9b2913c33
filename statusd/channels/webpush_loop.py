"""The Web Push fan-out's own thread and event loop, so that 50,000 requests never queue in front of the daemon's.

A fan-out keeps `connections` requests in flight and handles hundreds of
answers a second; on the daemon's loop each of those callbacks would wait in
the same queue as a webhook's send or a status.json request. Here they have a
loop of their own: the daemon's loop only awaits the result. Cancelling that
await (a forced shutdown) cancels the fan-out in its loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

STOP_TIMEOUT = 15.0  # above a request's timeout: the requests in flight end first


class PushLoop:
    """One daemon thread running an event loop, started on first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _started(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name=self._name, daemon=True)
            self._thread.start()
        return self._loop

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` in the push loop and wait for it here.

        Cancelled here, it is cancelled there, and this waits (up to STOP_TIMEOUT) until it
        has really ended, so that its answers are written down before the channel closes.
        """
        ended = threading.Event()

        async def tracked() -> T:
            try:
                return await coro
            finally:
                ended.set()

        future = asyncio.run_coroutine_threadsafe(tracked(), self._started())
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            await asyncio.shield(asyncio.to_thread(ended.wait, STOP_TIMEOUT))
            raise

    async def stop(self, last: Coroutine[Any, Any, None] | None = None) -> None:
        """Run `last` (closing what lives in the loop) there, then end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            if last is not None:
                last.close()
            return
        if last is not None:
            await self.run(last)
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, STOP_TIMEOUT)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None
