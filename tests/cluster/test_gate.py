"""The workers' gate: nothing starts without the lease, and a send outliving it is cut short."""

from __future__ import annotations

import asyncio
import time

import pytest

from statusd.outbox.gate import LeaseLost, guarded

pytestmark = pytest.mark.unit


class Clock:
    """A lease held until `until` (monotonic)."""

    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def held(self) -> bool:
        return time.monotonic() < self.until

    def remaining(self) -> float:
        return max(0.0, self.until - time.monotonic())


class TestGuarded:
    """A call runs within what is left of the lease, and never without one."""

    async def test_without_the_lease_nothing_starts(self) -> None:
        started = []

        async def send() -> None:
            started.append(1)

        with pytest.raises(LeaseLost):
            await guarded(Clock(-1.0), send())
        assert started == []

    async def test_a_send_outliving_the_lease_is_cut(self) -> None:
        began = time.monotonic()
        with pytest.raises(LeaseLost):
            await guarded(Clock(0.2), asyncio.sleep(5))
        assert time.monotonic() - began < 1.0

    async def test_within_the_lease_the_answer_comes_back(self) -> None:
        async def send() -> str:
            await asyncio.sleep(0.01)
            return "id-1"

        assert await guarded(Clock(5.0), send()) == "id-1"
        assert await guarded(None, send()) == "id-1"

    async def test_the_channels_own_timeout_is_not_a_lost_lease(self) -> None:
        async def send() -> None:
            raise TimeoutError

        with pytest.raises(TimeoutError):
            await guarded(Clock(5.0), send())

    async def test_a_send_longer_than_one_lease_period_goes_on_while_it_is_renewed(self) -> None:
        """A receiver holding the request past the lease's first deadline: the renewals keep it."""
        lease = Clock(0.2)

        async def renew() -> None:
            for _ in range(8):
                await asyncio.sleep(0.1)
                lease.until = time.monotonic() + 0.2

        async def send() -> str:
            await asyncio.sleep(0.6)
            return "id-2"

        renewing = asyncio.create_task(renew())
        assert await guarded(lease, send()) == "id-2"
        await renewing

    async def test_cancelling_the_caller_cancels_the_send(self) -> None:
        cancelled = []

        async def send() -> None:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                cancelled.append(1)
                raise

        task = asyncio.create_task(guarded(Clock(5.0), send()))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        assert cancelled == [1]
