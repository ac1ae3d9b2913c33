"""An event recorded with its first batch's deliveries, the rest a moment later: nothing lost between.

At many channels the step records the deliveries of the first batch of idle channels,
hands that batch to the loop and only then composes and records the others (issue 15).
The event is kept `unfinished` in the store between the two; these tests cut that
moment (a failed write, the rows read back by the next step) and read back what every
channel was sent. The daemon killed there is tests/faults/test_unfinished_crash.py.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from statusd.announcer import Announcer
from statusd.compose.composer import Composer
from statusd.loading import load
from statusd.model import Announced, Level, StatusEntry, Target
from statusd.outbox.contract import Store
from statusd.outbox.facade import AsyncStore
from statusd.outbox.handout import FIRST_BATCH, Hand, Reservation, hand_out
from statusd.outbox.records import Planned, StoreError
from statusd.outbox.store import PENDING, SENT
from statusd.outbox.worker import Worker
from statusd.rules import Plan
from tests.conftest import WriteConfig
from tests.outbox.test_handout import parked
from tests.outbox.test_outbox import POLICY, Recorder, event, message
from tests.support.stores import NewStore

pytestmark = pytest.mark.unit

CHANNELS = 24
FIRE = {Target("main"): StatusEntry(level=Level.CLOSED, message={"fr": "Incendie."}, by="alice")}
FLOOD = {Target("main"): StatusEntry(level=Level.CLOSED, message={"fr": "Inondation."}, by="bob")}


class Daemonish:
    """An announcer, its channels and their parked workers on one store: the daemon's step, in process."""

    def __init__(self, config: Any, store: AsyncStore, count: int = CHANNELS) -> None:
        self.store = store
        self.channels = []
        for i in range(count):
            self.channels.append(Recorder())
            self.channels[-1].name = f"c{i:02d}"
        self.workers = [Worker(store, channel, POLICY) for channel in self.channels]
        self.announcer = Announcer(config, store, Composer(config), {c.name: c for c in self.channels})
        self.runs: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.runs = await parked(self.workers)

    async def step(self, wanted: Any, reservation: Reservation | None = None) -> Plan:
        """A step as App makes it: on a failure the reserved workers are handed what was taken, or look."""
        reservation = Reservation(self.workers) if reservation is None else reservation
        try:
            plan = await self.announcer.step(wanted, datetime.now(UTC), reservation=reservation)
        except BaseException:
            await hand_out(self.store, reservation)
            raise
        await hand_out(self.store, reservation)
        return plan

    async def sent(self, texts: int) -> list[list[str]]:
        """What each channel was sent, once each has `texts` (or after 3 s)."""
        for _ in range(300):
            if all(len(c.sent) >= texts for c in self.channels):
                break
            await asyncio.sleep(0.01)
        return [[text for text, _ in c.sent] for c in self.channels]

    async def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
            worker.poke()
        await asyncio.wait_for(asyncio.gather(*self.runs), 5.0)


async def unfinished(store: AsyncStore) -> list[str]:
    """The ids of the events the store keeps unfinished."""
    return [one.event.id for one in await store.run(lambda sync: sync.unfinished())]


def configured(write_config: WriteConfig, count: int = CHANNELS) -> Any:
    return load(write_config("\n".join(f"  c{i:02d}: {{type: console, language: fr}}" for i in range(count))))


class Noting(Reservation):
    """A reservation that notes, in `order`, when the store's thread handed the first batch."""

    def __init__(self, idle: list[Worker], order: list[str]) -> None:
        super().__init__(idle)
        self.order = order

    def handing(self) -> Hand:
        hand = super().handing()

        def noted(taken: Any, wait: bool) -> None:
            self.order.append(f"handed {len(taken or [])}, wait={wait}")
            hand(taken, wait)

        return noted


def finishing(store: Store, order: list[str], fail: int = 0) -> None:
    """Note each `finish` of `store` in `order`; in the first `fail` of them the write fails as on a full disk."""
    real = store.finish

    def full(*args: Any) -> None:
        raise StoreError("database or disk is full")

    def finish(rests: Any, deadline: float) -> dict[str, int]:
        rests = [(event_id, list(planned)) for event_id, planned in rests]
        order.append(f"finish {sum(len(planned) for _, planned in rests)}")
        if order.count("failed") >= fail:
            return real(rests, deadline)
        order.append("failed")
        store._insert_deliveries = full  # type: ignore[attr-defined]  # inside the store's own transaction
        try:
            return real(rests, deadline)
        finally:
            del store._insert_deliveries  # type: ignore[attr-defined]

    store.finish = finish  # type: ignore[method-assign]


async def started(new_store: NewStore, config: Any, fail: int = 0,
                  count: int = CHANNELS) -> tuple[AsyncStore, list[str], Daemonish]:
    """A store whose `finish` is noted (the first `fail` failing), and the daemon's step on it, started."""
    store = AsyncStore(new_store())
    order: list[str] = []
    finishing(store.sync, order, fail)
    daemon = Daemonish(config, store, count)
    await daemon.start()
    return store, order, daemon


class TestTheRestAfterTheFirstBatch:
    async def test_the_first_batch_is_handed_before_the_rest_is_recorded(
            self, new_store: NewStore, write_config: WriteConfig) -> None:
        store, order, daemon = await started(new_store, configured(write_config))
        try:
            await daemon.step(FIRE, Noting(daemon.workers, order))
            assert order == [f"handed {FIRST_BATCH}, wait=True", f"finish {CHANNELS - FIRST_BATCH}"]
            sent = await daemon.sent(1)
            assert [len(texts) for texts in sent] == [1] * CHANNELS, sent
            assert await unfinished(store) == []
            assert await store.counts() == {SENT: CHANNELS}
        finally:
            await daemon.stop()

    async def test_channels_that_fit_in_the_first_batch_are_recorded_at_once(
            self, new_store: NewStore, write_config: WriteConfig) -> None:
        _, order, daemon = await started(new_store, configured(write_config, FIRST_BATCH), count=FIRST_BATCH)
        try:
            await daemon.step(FIRE, Noting(daemon.workers, order))
            assert order == [f"handed {FIRST_BATCH}, wait=False"]  # nothing left to record after
            assert [len(texts) for texts in await daemon.sent(1)] == [1] * FIRST_BATCH
        finally:
            await daemon.stop()

    async def test_a_failed_write_of_the_rest_is_made_by_the_next_step(
            self, new_store: NewStore, write_config: WriteConfig) -> None:
        store, _, daemon = await started(new_store, configured(write_config), fail=1)
        try:
            with pytest.raises(StoreError):
                await daemon.step(FIRE)
            # The first batch went out; the event is kept unfinished, and said to be in trouble.
            sent = await daemon.sent(1)
            assert [len(texts) for texts in sent] == [1] * FIRST_BATCH + [0] * (CHANNELS - FIRST_BATCH)
            assert len(await unfinished(store)) == 1
            assert store.trouble is not None and "cannot record" in store.trouble
            await daemon.step(FIRE)  # the daemon's retry, 2 s later: nothing new to say, the rest recorded
            sent = await daemon.sent(1)
            assert [len(texts) for texts in sent] == [1] * CHANNELS, sent
            assert await unfinished(store) == [] and store.trouble is None
        finally:
            await daemon.stop()

    async def test_a_newer_status_after_a_failed_write_supersedes_the_rest_and_lands_last(
            self, new_store: NewStore, write_config: WriteConfig) -> None:
        store, _, daemon = await started(new_store, configured(write_config), fail=1)
        try:
            with pytest.raises(StoreError):
                await daemon.step(FIRE)
            await daemon.step(FLOOD)  # the fire's rest recorded first, then superseded by the flood
            await daemon.sent(1)
            await asyncio.sleep(0.2)  # anything sent twice, or late, would be here by now
            sent = await daemon.sent(1)
            for texts in sent:
                assert texts and "Inondation" in texts[-1], sent
                assert len(texts) == len(set(texts)), sent
            assert [len(texts) for texts in sent[:FIRST_BATCH]] == [2] * FIRST_BATCH
            assert [len(texts) for texts in sent[FIRST_BATCH:]] == [1] * (CHANNELS - FIRST_BATCH)
            assert await unfinished(store) == []
        finally:
            await daemon.stop()


class TestTwoEventsOfAStep:
    async def test_said_in_the_plan_s_order_on_every_channel(
            self, new_store: NewStore, write_config: WriteConfig) -> None:
        # The first batch speaks for the annexe only: the step's second event (the main site's)
        # is carried by none of it, and must still come after the first on every other channel.
        lines = [f"  c{i:02d}: {{type: console, language: fr, sites: [annexe]}}" for i in range(FIRST_BATCH)]
        lines += [f"  c{i:02d}: {{type: console, language: fr}}" for i in range(FIRST_BATCH, CHANNELS)]
        config = load(write_config("\n".join(lines)))
        store = AsyncStore(new_store())
        daemon = Daemonish(config, store)
        await daemon.start()
        try:
            wanted = {Target("annexe"): StatusEntry(level=Level.CLOSED, message={"fr": "Incendie."}, by="alice"),
                      Target("main"): StatusEntry(level=Level.CLOSED, message={"fr": "Inondation."}, by="alice")}
            plan = await daemon.step(wanted)
            assert [str(event.target) for event in plan.events] == ["annexe", "main"]
            await daemon.sent(1)
            await asyncio.sleep(0.3)
            sent = await daemon.sent(1)
            assert [len(texts) for texts in sent[:FIRST_BATCH]] == [1] * FIRST_BATCH
            for texts in sent[FIRST_BATCH:]:
                assert len(texts) == 2 and "Incendie" in texts[0] and "Inondation" in texts[1], texts
        finally:
            await daemon.stop()


class TestTheStoreKeepsItUnfinished:
    """The store's side: an unfinished event is listed, finished once, kept by the prune, cleared by a retract."""

    def test_listed_until_finished_once(self, new_store: NewStore) -> None:
        store = new_store()
        ev = event()
        planned = [Planned(f"c{i}", message(ev)) for i in range(6)]
        assert store.record([(ev, planned[:2])], {"main": Announced("closed", "fp", "", ev.id, 0.0)}, 5.0,
                            unfinished=[ev.id]) == [ev.id]
        assert [one.event.id for one in store.unfinished()] == [ev.id]
        # After a crash the rest is composed for every channel again: the first two are kept as they were.
        assert store.finish([(ev.id, planned)], 5.0) == {ev.id: 4}  # the first two were there
        assert store.finish([(ev.id, planned)], 5.0) == {}
        assert store.unfinished() == []
        rows = [store.post_for(ev.id, f"c{i}") for i in range(6)]
        assert all(row is not None and row.state == PENDING for row in rows)
        # One creation time for all of an event's deliveries, as in one record (a Bluesky TID's source).
        assert len({row.created_at for row in rows if row is not None}) == 1
        assert len({row.next_attempt for row in rows if row is not None}) == 1

    def test_the_rest_recorded_late_still_gets_all_its_tries(self, new_store: NewStore) -> None:
        store = new_store()
        ev = event()
        planned = [Planned(f"c{i}", message(ev)) for i in range(3)]
        hours_ago = time.time() - 7200  # the disk was full from then until now
        store.record([(ev, planned[:1])], {}, 3600.0, now=hours_ago, unfinished=[ev.id])
        store.finish([(ev.id, planned)], 3600.0)
        first, *rest = [store.post_for(ev.id, f"c{i}") for i in range(3)]
        assert first is not None and first.deadline < time.time()
        for row in rest:  # due as the first was (the same order), but an hour to try from now
            assert row is not None and row.next_attempt == first.next_attempt
            assert row.deadline > time.time() + 3500

    def test_a_recorded_event_named_unfinished_again_is_not(self, new_store: NewStore) -> None:
        store = new_store()
        ev = event()
        store.record([(ev, [Planned("c0", message(ev))])], {}, 5.0)
        assert store.record([(ev, [Planned("c0", message(ev))])], {}, 5.0, unfinished=[ev.id]) == []
        assert store.unfinished() == []

    def test_the_prune_keeps_it(self, new_store: NewStore) -> None:
        store = new_store()
        old, other = event(rev="r1"), event(target="annex", rev="r2")
        for ev, rest in ((old, [old.id]), (other, [])):
            store.record([(ev, [Planned("c0", message(ev))])], {}, 5.0, now=time.time() - 10 * 86400, unfinished=rest)
        for _ in (old, other):
            store.mark_sent(store.next_due("c0").id, "remote-1", None)  # type: ignore[union-attr]
        assert store.prune(keep=86400.0) == 1  # the other one only, all its deliveries done
        assert store.stored_event(old.id) is not None and store.stored_event(other.id) is None

    def test_a_retract_clears_it(self, new_store: NewStore) -> None:
        store = new_store()
        ev = event()
        store.record([(ev, [Planned("c0", message(ev))])], {}, 5.0, unfinished=[ev.id])
        store.retract(ev.id, "alice", None, restore_target=False)
        assert store.unfinished() == []
        assert store.finish([(ev.id, [Planned("c1", message(ev))])], 5.0) == {}
        assert store.post_for(ev.id, "c1") is None


class TestAnExportSeesOneMoment:
    def test_a_rest_recorded_while_the_tables_are_read(self, new_store: NewStore) -> None:
        """The daemon records the rest while export-state reads the tables one after the other."""
        reader, daemon = new_store("shared.db"), new_store("shared.db")  # two connections, one store
        ev = event()
        planned = [Planned(f"c{i}", message(ev)) for i in range(4)]
        daemon.record([(ev, planned[:1])], {"main": Announced("closed", "fp", "", ev.id, 0.0)}, 5.0,
                      unfinished=[ev.id])
        dump = reader.dump  # type: ignore[attr-defined]

        def dump_then_finish(table: str) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = dump(table)
            if table == "deliveries":
                daemon.finish([(ev.id, planned)], 5.0)  # committed between this read and the next
            return rows

        reader.dump = dump_then_finish  # type: ignore[attr-defined]
        rows = reader.dump_all(["events", "deliveries", "unfinished"])  # type: ignore[attr-defined]
        # As it was before the rest: one delivery, still unfinished (the import finishes it).
        assert len(rows["deliveries"]) == 1 and [row["event_id"] for row in rows["unfinished"]] == [ev.id]
        assert len(reader.dump_all(["deliveries"])["deliveries"]) == 4  # type: ignore[attr-defined]
