"""Whether this daemon may send now: always alone, only while it holds the lease in a cluster.

A send in flight when the lease runs out (on the node's own clock) is cut short and
nothing is recorded for it: the next leader finds it `sending` and resolves it by the
uncertain-send rules, as after a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol, TypeVar

__all__ = ["Gate", "LeaseLost", "guarded"]

T = TypeVar("T")


class Gate(Protocol):
    """The leader's lease as the workers see it."""

    def held(self) -> bool:
        """Whether this node may send now."""
        ...

    def remaining(self) -> float:
        """Seconds it may still send for."""
        ...


class LeaseLost(BaseException):  # a stop, as CancelledError is, never an error to log and retry
    """The lease ran out before or during a send: stop, record nothing."""


async def guarded(gate: Gate | None, call: Awaitable[T]) -> T:
    """Await `call` within what is left of the lease; LeaseLost when there is none left."""
    if gate is None:
        return await call
    if not gate.held():
        if asyncio.iscoroutine(call):
            call.close()
        raise LeaseLost
    try:
        async with asyncio.timeout(gate.remaining()):
            return await call
    except TimeoutError as err:
        if gate.held():
            raise  # the channel's own timeout, not the lease's
        raise LeaseLost from err
