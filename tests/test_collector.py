"""The garbage collector held off during a hand-out: released once, nested, bounded, and left as found."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from statusd import collector

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def collecting() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


class TestHold:
    async def test_off_until_released_then_on(self) -> None:
        held = collector.Hold()
        assert not gc.isenabled()
        held.release()
        assert gc.isenabled()

    async def test_on_only_when_the_last_of_two_is_released(self) -> None:
        first, second = collector.Hold(), collector.Hold()
        first.release()
        first.release()  # a second release of the same hold changes nothing
        assert not gc.isenabled()
        second.release()
        assert gc.isenabled()

    async def test_a_hold_never_released_ends_after_hold_max(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(collector, "HOLD_MAX", 0.05)
        held = collector.Hold()
        await asyncio.sleep(0.2)
        assert gc.isenabled()
        held.release()  # late: nothing more happens, the next hold counts from nothing
        assert gc.isenabled()
        again = collector.Hold()
        assert not gc.isenabled()
        again.release()
        assert gc.isenabled()

    async def test_a_collector_turned_off_by_someone_else_stays_off(self) -> None:
        gc.disable()
        collector.Hold().release()
        assert not gc.isenabled()


class TestSettle:
    def test_what_is_left_after_start_is_out_of_reach(self) -> None:
        kept: list[list[int]] = [[] for _ in range(1000)]  # containers the collector tracks
        try:
            collector.settle()
            assert gc.get_freeze_count() >= len(kept)
            collected = {id(one) for one in gc.get_objects()}  # what a collection looks through
            assert not any(id(one) in collected for one in kept)
        finally:
            gc.unfreeze()
