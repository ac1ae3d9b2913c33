"""The daemon's side of the store: every call runs on the store's one thread, never on the event loop.

A PostgreSQL server that stalls or is cut, or a SQLite file another program has
locked, then holds up only that thread: /healthz, SSE and the web go on. One
thread keeps the calls in the order they were made and lets one SQLite
connection serve them. A call that gets no answer within `timeout` raises
`StoreError` on the loop (the store's thread goes on waiting for it, and the
calls behind it wait their turn), so a hang surfaces as store trouble.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

from statusd.outbox.contract import Store
from statusd.outbox.records import STORE_ERRORS, StoreError

P = ParamSpec("P")
R = TypeVar("R")


def _off(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[AsyncStore, P], Awaitable[R]]:
    """`Store.x` as an awaitable method of AsyncStore that runs it on the store's thread."""
    name = method.__name__

    async def call(self: AsyncStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound: Callable[P, R] = getattr(self.sync, name)
        return await self.call(functools.partial(bound, *args, **kwargs))

    call.__name__ = call.__qualname__ = name
    call.__doc__ = method.__doc__
    return call


class AsyncStore:
    """The store for code on the event loop: `await store.announced()` and so on.

    `run(fn, ...)` runs a function of the sync store (a budget's count, a
    thread's look-up, the health report) on the store's thread in one hop.
    """

    def __init__(self, store: Store, timeout: float = 30.0) -> None:
        self.sync = store
        self.timeout = timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    @property
    def label(self) -> str:
        return self.sync.label

    @property
    def trouble(self) -> str | None:
        """Why the store cannot record now, or None (read without a hop: a dict the thread updates)."""
        return self.sync.trouble

    async def call(self, fn: Callable[[], R]) -> R:
        future = asyncio.get_running_loop().run_in_executor(self._thread, fn)
        # asyncio.wait, not wait_for: it never cancels the call (the thread finishes it either
        # way) and never swallows our own cancellation when the answer comes at that moment.
        done, _ = await asyncio.wait((future,), timeout=self.timeout)
        if not done:
            reason = f"the store {self.label} gave no answer within {self.timeout:g} s"
            self.sync.troubles["answer"] = reason
            future.add_done_callback(lambda _: self.sync.troubles.pop("answer", None))
            raise StoreError(reason)
        try:
            result = future.result()
        except STORE_ERRORS as err:
            # Reads fail too when the store is cut or locked: trouble as well, until a call succeeds.
            self.sync.troubles.setdefault("call", f"the store {self.label} cannot be used: {err}")
            raise
        self.sync.troubles.pop("call", None)
        return result

    async def run(self, fn: Callable[Concatenate[Store, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await self.call(functools.partial(fn, self.sync, *args, **kwargs))

    async def close(self) -> None:
        """Close the store on its thread once the calls before it are done; then end the thread."""
        try:
            await self.call(self.sync.close)
        finally:
            self._thread.shutdown(wait=False)

    announced = _off(Store.announced)
    has_event = _off(Store.has_event)
    record = _off(Store.record)
    retract = _off(Store.retract)
    next_due = _off(Store.next_due)
    delivery = _off(Store.delivery)
    postpone = _off(Store.postpone)
    mark_looking = _off(Store.mark_looking)
    mark_sending = _off(Store.mark_sending)
    mark_sent = _off(Store.mark_sent)
    mark_absent = _off(Store.mark_absent)
    mark_retry = _off(Store.mark_retry)
    mark_failed = _off(Store.mark_failed)
    mark_superseded = _off(Store.mark_superseded)
    mark_cancelled = _off(Store.mark_cancelled)
    mark_skipped = _off(Store.mark_skipped)
    drop = _off(Store.drop)
    pause = _off(Store.pause)
    superseded_by = _off(Store.superseded_by)
    unresolved_before = _off(Store.unresolved_before)
    last_carried = _off(Store.last_carried)
    claimed = _off(Store.claimed)
    data_version = _off(Store.data_version)
    pauses = _off(Store.pauses)
    event = _off(Store.event)
    is_retracted = _off(Store.is_retracted)
    latest_event = _off(Store.latest_event)
    post_for = _off(Store.post_for)
    recent = _off(Store.recent)
    newest_events = _off(Store.newest_events)
    waiting = _off(Store.waiting)
    retry_depth = _off(Store.retry_depth)
    counts = _off(Store.counts)
    probe = _off(Store.probe)
    prune = _off(Store.prune)
    checkpoint = _off(Store.checkpoint)
