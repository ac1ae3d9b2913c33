"""Python's cyclic garbage collector, kept out of the moment a change's first requests leave.

A step that fans out to 128 channels makes thousands of short-lived objects (coroutines,
futures, messages, rows). The collector started in the middle of it: in the 10 ms
before the first request, a young collection took 1 to 2 ms, and a full one over the
daemon's whole heap took 35 ms (issue 15). So what start-up made, which lives as long as
the daemon (the configuration, the templates, the modules), is put out of the
collector's reach once (`settle`). And while a step hands out its deliveries, no
collection starts (`Hold`: each Reservation of outbox/handout.py holds one). The
collector catches up when the hand-out is done, while the requests wait for their
answers, or after HOLD_MAX seconds at most.
"""

from __future__ import annotations

import asyncio
import gc

__all__ = ["HOLD_MAX", "Hold", "settle"]

# However long a hand-out lasts, the collector runs again after this long.
HOLD_MAX = 1.0

_holds = 0
_resume = False  # whether the collector was on when the first hold began


def settle() -> None:
    """Start-up is done: collect once, then keep what is left out of every later collection."""
    gc.collect()
    gc.freeze()


class Hold:
    """No automatic collection until released (once is enough; later calls do nothing), or HOLD_MAX s."""

    def __init__(self) -> None:
        global _holds, _resume
        if _holds == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holds += 1
        self._done = False
        self._bound = asyncio.get_running_loop().call_later(HOLD_MAX, self.release)

    def release(self) -> None:
        global _holds
        if self._done:
            return
        self._done = True
        self._bound.cancel()
        _holds -= 1
        if _holds == 0 and _resume:
            gc.enable()
