"""The hand-out after an event: many idle channels, their first batch taken with the record, the rest after."""

from __future__ import annotations

import asyncio
import gc
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from statusd.announcer import Announcer
from statusd.channels.base import Reply, Sent
from statusd.compose.composer import Composer
from statusd.compose.message import Message
from statusd.loading import load
from statusd.model import Announced, Level, StatusEntry, Target
from statusd.outbox.facade import AsyncStore
from statusd.outbox.handout import FIRST_BATCH, Reservation, hand_out, record_then_take
from statusd.outbox.records import Planned
from statusd.outbox.store import SENDING, SENT
from statusd.outbox.take import Ready, Taken
from statusd.outbox.worker import Worker
from tests.conftest import WriteConfig
from tests.outbox.test_outbox import POLICY, Recorder, event, message
from tests.support.stores import NewStore

pytestmark = pytest.mark.unit

# More than the first batch and the doubling after it: every path of the hand-out is taken.
CHANNELS = 40


class Witness(Recorder):
    """A channel double that reads, through another connection, the state of its delivery as it sends."""

    def __init__(self, name: str, other: AsyncStore) -> None:
        super().__init__()
        self.name = name
        self.other = other
        self.states: list[str] = []

    async def send(self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: Any = None) -> Sent:
        seen = await self.other.post_for(message.event_id, self.name)
        self.states.append(seen.state if seen else "absent")
        return await super().send(message, idempotency_key=idempotency_key, reply_to=reply_to, created=created)


async def parked(workers: list[Worker]) -> list[asyncio.Task[None]]:
    runs = [asyncio.create_task(w.run()) for w in workers]
    for _ in range(200):  # each finds nothing and waits to be poked
        if all(w.parked for w in workers):
            return runs
        await asyncio.sleep(0.01)
    raise AssertionError("the workers never parked")


class TestHandOut:
    """Every idle channel gets its post once, durably `sending` before its request leaves."""

    async def test_a_record_with_the_first_batch_then_the_rest_sends_each_post_once(
            self, new_store: NewStore) -> None:
        store, other = AsyncStore(new_store()), AsyncStore(new_store())  # the second: another connection
        channels = [Witness(f"c{i:02d}", other) for i in range(CHANNELS)]
        workers = [Worker(store, channel, POLICY) for channel in channels]
        runs = await parked(workers)
        ev = event()
        reservation = Reservation(workers)
        assert len(reservation.asks) == FIRST_BATCH
        hand = reservation.handing()

        def record_and_hand(sync: Any) -> tuple[list[str], list[Taken] | None]:
            new, first = record_then_take(sync, [(ev, [Planned(c.name, message(ev)) for c in channels])],
                                          {"main": Announced("closed", "fp", "", ev.id, 0.0)}, 5.0, reservation.asks)
            hand(first, False)  # as the step does, from the store's thread
            return new, first

        recording = store.run(record_and_hand)
        reservation.take_rest(store)
        new, first = await recording
        assert new == [ev.id] and first is not None and len(first) == FIRST_BATCH
        await hand_out(store, reservation)
        for _ in range(300):
            if all(c.sent for c in channels) and (await store.counts()) == {SENT: CHANNELS}:
                break
            await asyncio.sleep(0.01)
        for worker in workers:
            worker.stop()
        await asyncio.gather(*runs)
        assert [len(c.sent) for c in channels] == [1] * CHANNELS
        assert {state for c in channels for state in c.states} == {SENDING}
        assert await store.counts() == {SENT: CHANNELS}

    async def test_a_failed_step_leaves_the_reserved_workers_to_look_themselves(self, new_store: NewStore) -> None:
        store = AsyncStore(new_store())
        channels = [Recorder() for _ in range(3)]
        for i, channel in enumerate(channels):
            channel.name = f"c{i}"
        workers = [Worker(store, channel, POLICY) for channel in channels]
        runs = await parked(workers)
        reservation = Reservation(workers)
        assert all(w.handed is not None for w in workers)
        reservation.release()  # as App does when the step's store call failed
        assert all(w.handed is None for w in workers)
        ev = event()
        await store.record([(ev, [Planned(c.name, message(ev)) for c in channels])], {}, 5.0)
        for worker in workers:
            worker.poke()  # as Senders pokes the workers it did not reserve
        for _ in range(300):
            if all(c.sent for c in channels):
                break
            await asyncio.sleep(0.01)
        for worker in workers:
            worker.stop()
        await asyncio.gather(*runs)
        assert [len(c.sent) for c in channels] == [1, 1, 1]


class CountedStore(AsyncStore):
    """The store's facade, counting the calls made on the store's thread."""

    calls = 0

    async def call(self, fn: Any) -> Any:
        self.calls += 1
        return await super().call(fn)


class Counting(Recorder):
    """A channel double that notes how many store calls had been made when its request left."""

    def __init__(self, name: str, store: CountedStore) -> None:
        super().__init__()
        self.name, self.store = name, store
        self.calls_at_send: list[int] = []

    async def send(self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: Any = None) -> Sent:
        self.calls_at_send.append(self.store.calls)
        return await super().send(message, idempotency_key=idempotency_key, reply_to=reply_to, created=created)


class TestOneCallPerStep:
    """A step that finds a change makes one call to the store's thread before its first requests can
    leave: what was announced, the plan, the messages, the record and the first batch (issue 15:
    reading what was announced was a call of its own, ~0.5 ms before the first request)."""

    async def test_the_step_then_every_post_once(self, new_store: NewStore, write_config: WriteConfig) -> None:
        names = [f"c{i:02d}" for i in range(CHANNELS)]
        config = load(write_config("\n".join(f"  {name}: {{type: console, language: fr}}" for name in names)))
        store = CountedStore(new_store())
        channels = [Counting(name, store) for name in names]
        workers = [Worker(store, channel, POLICY) for channel in channels]
        runs = await parked(workers)
        announcer = Announcer(config, store, Composer(config), {c.name: c for c in channels})
        reservation = Reservation(workers)
        try:
            before = store.calls
            wanted = {Target("main"): StatusEntry(level=Level.CLOSED, message={"fr": "Fuite d'eau."}, by="alice")}
            plan = await announcer.step(wanted, datetime.now(UTC), reservation=reservation)
            # The first batch's requests left during the step's one call, with the other batches
            # asked for at once and nothing else: their workers' own calls come after.
            assert channels[0].calls_at_send[0] - before == 1 + len(reservation.batches) - 1
            assert [event.level for event in plan.events] == [Level.CLOSED]
            assert reservation.first is not None and all(isinstance(taken, Ready) for taken in reservation.first)
            await hand_out(store, reservation)
            for _ in range(300):
                if all(c.sent for c in channels):
                    break
                await asyncio.sleep(0.01)
            assert [len(c.sent) for c in channels] == [1] * CHANNELS
            again = await announcer.step(wanted, datetime.now(UTC))  # said already: nothing more
            assert again.events == [] and [len(c.sent) for c in channels] == [1] * CHANNELS
        finally:
            reservation.release()
            for worker in workers:
                worker.stop()
            await asyncio.wait_for(asyncio.gather(*runs), 5.0)


class Writing(Recorder):
    """A channel double that, like aiohttp on Python 3.11, writes its request a turn of the loop
    after making it; `log` is shared by all, in the order things happened."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    async def send(self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: Any = None) -> Sent:
        self.log.append(f"made {self.name}")
        await asyncio.sleep(0)
        self.log.append(f"written {self.name}")
        return await super().send(message, idempotency_key=idempotency_key, reply_to=reply_to, created=created)


class TestTheFirstRequestFirst:
    """Handed from the store's thread, the first batch's first request is written before the
    others are made (on Python 3.11 all four were made before any was written: ~2 ms at 128)."""

    async def test_written_before_the_next_is_made(self, new_store: NewStore) -> None:
        store = AsyncStore(new_store())
        log: list[str] = []
        channels = [Writing(f"c{i}", log) for i in range(FIRST_BATCH)]
        workers = [Worker(store, channel, POLICY) for channel in channels]
        runs = await parked(workers)
        try:
            ev = event()
            reservation = Reservation(workers)
            hand = reservation.handing()

            def record_and_hand(sync: Any) -> None:
                _, taken = record_then_take(sync, [(ev, [Planned(c.name, message(ev)) for c in channels])],
                                            {}, 5.0, reservation.asks)
                hand(taken, True)  # waits (briefly) until the batch's requests are written

            await store.run(record_and_hand)
            await hand_out(store, reservation)
            for _ in range(300):
                if all(c.sent for c in channels):
                    break
                await asyncio.sleep(0.01)
            assert log[:2] == ["made c0", "written c0"], log
            assert sorted(log) == sorted(f"{step} c{i}" for i in range(FIRST_BATCH) for step in ("made", "written"))
            assert [len(c.sent) for c in channels] == [1] * FIRST_BATCH
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.wait_for(asyncio.gather(*runs), 5.0)

    async def test_a_hand_out_that_ends_at_once_still_gives_the_batch_what_was_taken(
            self, new_store: NewStore) -> None:
        store = AsyncStore(new_store())
        channels = [Witness(f"c{i}", AsyncStore(new_store())) for i in range(FIRST_BATCH)]
        workers = [Worker(store, channel, POLICY) for channel in channels]
        runs = await parked(workers)
        try:
            ev = event()
            reservation = Reservation(workers)
            reservation.take_rest(store)  # one batch: nothing more to take
            taken = await store.run(lambda sync: record_then_take(
                sync, [(ev, [Planned(c.name, message(ev)) for c in channels])], {}, 5.0, reservation.asks)[1])
            assert taken is not None and all(isinstance(one, Ready) for one in taken)
            # As the loop would run it from the store's thread, and the hand-out (one batch: nothing
            # more to take) ending before the rest of the batch was given a turn later.
            reservation._hand_first(asyncio.get_running_loop(), taken, threading.Event())
            await hand_out(store, reservation)
            for _ in range(300):
                if all(c.sent for c in channels):
                    break
                await asyncio.sleep(0.01)
            # Each sent as taken, `sending` already: none left to find its own (uncertain) way.
            assert [len(c.sent) for c in channels] == [1] * FIRST_BATCH
            assert {state for c in channels for state in c.states} == {SENDING}
            assert [c.lookups for c in channels] == [0] * FIRST_BATCH
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.wait_for(asyncio.gather(*runs), 5.0)


class TestNoCollectionMeanwhile:
    """The garbage collector makes no pause while a reservation's hand-out goes on (collector.py)."""

    async def test_held_from_the_reservation_to_the_hand_out_s_end(self, new_store: NewStore) -> None:
        store = AsyncStore(new_store())
        channels = [Recorder() for _ in range(CHANNELS)]
        for i, channel in enumerate(channels):
            channel.name = f"c{i:02d}"
        workers = [Worker(store, channel, POLICY) for channel in channels]
        runs = await parked(workers)
        assert gc.isenabled()
        try:
            ev = event()
            await store.record([(ev, [Planned(c.name, message(ev)) for c in channels])], {}, 5.0)
            reservation = Reservation(workers)
            assert not gc.isenabled()
            await hand_out(store, reservation)
            assert gc.isenabled()
            for _ in range(300):  # all sent, and waiting again
                if all(c.sent for c in channels) and all(w.parked and w.handed is None for w in workers):
                    break
                await asyncio.sleep(0.01)
            failed = Reservation(workers)
            assert not gc.isenabled()
            failed.release()  # as after a failed step
            assert gc.isenabled()
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.wait_for(asyncio.gather(*runs), 5.0)
