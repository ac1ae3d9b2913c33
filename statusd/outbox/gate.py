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
# Never a busy loop: while the lease is held, look again at least this far apart.
MIN_STEP = 0.05


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
    """Await `call` while the lease is held; LeaseLost (the call cancelled) once it is not.

    The lease is renewed while the call runs, so a send may take longer than one lease
    period (a receiver that holds a request 6 s, with a 5 s lease): it is cut only when
    the lease has really run out on this node's clock, never at the deadline it had
    when the call started.
    """
    if gate is None:
        return await call
    if not gate.held():
        if asyncio.iscoroutine(call):
            call.close()
        raise LeaseLost
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=max(gate.remaining(), MIN_STEP))
            if done:
                return task.result()
            if not gate.held():
                task.cancel()
                await asyncio.wait({task})  # let it unwind (close its connection) before moving on
                raise LeaseLost
    except asyncio.CancelledError:
        task.cancel()
        raise
