"""The outbox: deliveries recorded before sending, sent in order, retried, superseded."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from statusd.channels.base import DuplicateError, PermanentError, Reply, Sent, TransientError
from statusd.channels.bluesky_keys import tid
from statusd.channels.console import Console
from statusd.compose.message import Message
from statusd.config.types import DeliveryConfig
from statusd.events import Event, EventKind
from statusd.model import Announced, Level, Target
from statusd.outbox.store import FAILED, PENDING, SENDING, SENT, SUPERSEDED, Planned, Store
from statusd.outbox.worker import Worker
from tests.support.stores import facade

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
POLICY = DeliveryConfig(deadline=5.0, backoff=0.01, backoff_max=0.05, timeout=1.0)


def event(target: str = "main", level: Level = Level.CLOSED, rev: str = "r1") -> Event:
    return Event(EventKind.STATUS_CHANGED, Target.parse(target), level, Level.OPEN, {"fr": "x"}, NOW, "alice", rev)


def timed_out(reason: str = "no answer within 10 s") -> TransientError:
    """A TransientError as a channel raises it from a timeout: the post may have been made."""
    err = TransientError(reason)
    err.__cause__ = TimeoutError()
    return err


def refused() -> TransientError:
    """A TransientError as a channel raises it from a refused connection: nothing was posted."""
    err = TransientError("cannot reach http://127.0.0.1:9: Connection refused")
    err.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return err


def message(ev: Event) -> Message:
    return Message(f"text {ev.id}", "fr", None, ev.id, ev.kind.value, str(ev.target), ev.level.value)


class Recorder:
    """A channel double: answers from a script of outcomes and records what it was sent."""

    kind: ClassVar[str] = "recorder"
    honours_idempotency: ClassVar[bool] = False
    Options: ClassVar[type[Any]] = Console.Options  # never loaded from a file
    max_chars: int | None = None
    language = "fr"

    def __init__(self, outcomes: list[Exception | None] | None = None, found: Sent | None = None) -> None:
        self.name = "rec"
        self.outcomes = outcomes or []
        self.sent: list[tuple[str, str]] = []
        self.found = found
        self.lookups = 0

    def measure(self, text: str) -> int:
        return len(text)

    async def open(self) -> None:
        return None

    async def whoami(self) -> str:
        return self.name

    async def send(self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: Any = None) -> Sent:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.sent.append((message.text, idempotency_key))
        return Sent(f"remote-{len(self.sent)}")

    async def delete(self, remote_id: str) -> None:
        return None

    async def find(self, message: Message, *, idempotency_key: str, since: object = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        self.lookups += 1
        return self.found

    async def close(self) -> None:
        return None


def record(store: Store, ev: Event, channels: tuple[str, ...] = ("rec",), batch: list[Event] | None = None) -> list[str]:
    items = [(e, [Planned(c, message(e)) for c in channels]) for e in (batch or [ev])]
    return store.record(items, {str(ev.target): Announced(ev.level.value, "fp", "", ev.id, 0.0)}, deadline=5.0)


async def drain(worker: Worker, seconds: float = 2.0) -> None:
    task = asyncio.create_task(worker.run())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        due = worker.store.sync.next_due(worker.channel.name)
        if due is None and not worker.busy:
            break
        await asyncio.sleep(0.01)
    worker.stop()
    await asyncio.wait_for(task, 1.0)


class TestRecording:
    """An event and its deliveries are stored together, once."""

    def test_record_twice_stores_once(self, store: Store) -> None:
        ev = event()
        assert record(store, ev, ("a", "b")) == [ev.id]
        assert record(store, ev, ("a", "b")) == []
        assert store.counts() == {PENDING: 2}
        assert store.announced()["main"].event_id == ev.id

    def test_newer_status_supersedes_unsent_older_one(self, store: Store) -> None:
        first, second = event(rev="r1"), event(level=Level.OPEN, rev="r2")
        record(store, first, ("a", "b"))
        delivery = store.next_due("a")
        assert delivery is not None
        store.mark_sent(delivery.id, "x1", None)
        record(store, second, ("a", "b"))
        states = {(d.event_id, d.channel): d.state for _, _, ds in store.recent() for d in ds}
        assert states[(first.id, "a")] == SENT
        assert states[(first.id, "b")] == SUPERSEDED
        assert states[(second.id, "b")] == PENDING

    def test_other_targets_are_not_superseded(self, store: Store) -> None:
        record(store, event("main"))
        record(store, event("annexe", rev="r9"))
        assert store.counts() == {PENDING: 2}

    def test_events_recorded_together_all_stand(self, store: Store) -> None:
        a, b = event(rev="a"), event(rev="b")
        record(store, a, batch=[a, b])
        assert store.counts() == {PENDING: 2}

    def test_a_template_error_is_recorded_as_failed(self, store: Store) -> None:
        ev = event()
        store.record([(ev, [Planned("rec", None, "template error: x")])], {}, deadline=5.0)
        [(_, _, [delivery])] = store.recent()
        assert (delivery.state, delivery.last_error) == (FAILED, "template error: x")


    def test_deliveries_recorded_together_never_share_their_creation_time(self, store: Store) -> None:
        """Bluesky's record key is a TID made from it: one batch must not give two posts one key."""
        batch = [event(f"site{i}", rev=f"r{i}") for i in range(300)]
        store.record([(e, [Planned("sky", message(e))]) for e in batch], {}, deadline=5.0, now=1_764_657_600.0)
        created = [d.created_at for _, _, ds in store.recent(400) for d in ds]
        keys = {tid(datetime.fromtimestamp(c, UTC), "the same key") for c in created}
        assert len(created) == 300 and len(keys) == 300

    def test_a_clock_standing_still_or_stepping_back_never_repeats_a_creation_time(self, store: Store) -> None:
        """Each record takes a time after every delivery before it, whichever channels they were for."""
        moments = (1_764_657_600.0, 1_764_657_600.0, 1_764_657_590.0)  # the same second, then 10 s back
        events = [event(f"site{number}", rev=f"c{number}") for number in range(len(moments))]
        for number, (ev, now) in enumerate(zip(events, moments, strict=True)):
            channels = ("other",) if number == 1 else ("sky", "other")  # the middle one: not on sky
            store.record([(ev, [Planned(c, message(ev)) for c in channels])], {}, deadline=5.0, now=now)
        times = {d.event_id: d.created_at for _, _, ds in store.recent() for d in ds}
        in_order = [times[ev.id] for ev in events]
        assert in_order == sorted(set(in_order)), in_order


    def test_the_next_due_of_many_channels_in_one_read_is_each_ones_next_due(self, store: Store) -> None:
        """A hand-out reads every idle channel's next delivery at once: the same as one by one."""
        first, second = event("main", rev="r1"), event("annexe", rev="r2")
        record(store, first, ("a", "b", "c"))
        record(store, second, ("a", "b"))
        taken = store.next_due("b")
        assert taken is not None
        store.mark_sent(taken.id, "x1", None)
        channels = ["a", "b", "c", "none"]
        one_by_one = {c: due for c in channels if (due := store.next_due(c)) is not None}
        assert store.next_due_many(channels) == one_by_one and set(one_by_one) == {"a", "b", "c"}

    def test_taking_back_an_update_revives_the_posts_it_had_superseded(self, store: Store) -> None:
        """Closed (not yet sent), then emergency, then undo: closed goes out after all."""
        closed, emergency = event(rev="r1"), event(level=Level.EMERGENCY, rev="r2")
        record(store, closed, ("a",))
        record(store, emergency, ("a",))
        states = {d.event_id: d.state for _, _, ds in store.recent() for d in ds}
        assert states == {closed.id: SUPERSEDED, emergency.id: PENDING}
        stored = store.event(emergency.id)
        assert stored is not None and stored.previous is not None
        store.retract(emergency.id, "desk", stored.previous, restore_target=True)
        due = store.next_due("a")
        assert due is not None and due.event_id == closed.id and due.action == "post"
        assert store.announced()["main"].event_id == closed.id


class TestWorker:
    """A worker sends in order, retries transient errors and stops on permanent ones."""

    async def test_sends_each_delivery_once(self, store: Store) -> None:
        channel = Recorder()
        for rev in ("1", "2", "3"):
            record(store, event(f"main/s{rev}", rev=rev))
        await drain(Worker(facade(store), channel, POLICY))
        assert len(channel.sent) == 3
        assert store.counts() == {SENT: 3}

    async def test_transient_errors_retry_with_the_same_key(self, store: Store) -> None:
        channel = Recorder([TransientError("HTTP 500"), TransientError("timeout"), None])
        record(store, event())
        await drain(Worker(facade(store), channel, POLICY))
        assert store.counts() == {SENT: 1}
        [(_, _, [delivery])] = store.recent()
        assert delivery.attempts == 3
        assert channel.sent[0][1] == delivery.idempotency_key

    async def test_permanent_error_fails_with_its_reason(self, store: Store) -> None:
        channel = Recorder([PermanentError("HTTP 401: bad token")])
        record(store, event())
        await drain(Worker(facade(store), channel, POLICY))
        [(_, _, [delivery])] = store.recent()
        assert (delivery.state, delivery.last_error) == (FAILED, "HTTP 401: bad token")

    async def test_gives_up_at_the_deadline(self, store: Store) -> None:
        channel = Recorder([TransientError("HTTP 503")])
        record(store, event())  # a deadline 5 s away; the next try would be 10 s away
        worker = Worker(facade(store), channel, replace(POLICY, backoff=10.0, backoff_max=10.0))
        await worker.attempt(store.next_due("rec"))  # type: ignore[arg-type]
        [(_, _, [delivery])] = store.recent()
        assert (delivery.state, delivery.last_error) == (FAILED, "gave up after 1 attempts: HTTP 503")

    async def test_retry_after_pauses_the_channel(self, store: Store) -> None:
        channel = Recorder([TransientError("HTTP 429", retry_after=0.4)])
        record(store, event())
        worker = Worker(facade(store), channel, POLICY)
        await worker.attempt(store.next_due("rec"))  # type: ignore[arg-type]
        due = store.next_due("rec")
        assert due is not None and due.next_attempt >= time.time() + 0.3
        assert worker.paused_until >= time.time() + 0.3

    async def test_unknown_outcome_is_looked_up_before_sending_again(self, store: Store) -> None:
        record(store, event())
        delivery = store.next_due("rec")
        assert delivery is not None
        store.mark_sending(delivery.id)  # the daemon died here, mid-send
        channel = Recorder(found=Sent("already-there"))
        await drain(Worker(facade(store), channel, POLICY))
        [(_, _, [after])] = store.recent()
        assert (after.state, after.remote_id, channel.sent, channel.lookups) == (SENT, "already-there", [], 1)

    async def test_a_timeout_is_looked_up_before_sending_again(self, store: Store) -> None:
        """The platform may have the post although no answer came."""
        channel = Recorder([timed_out()], found=Sent("made-it"))
        record(store, event())
        await drain(Worker(facade(store), channel, POLICY))
        [(_, _, [after])] = store.recent()
        assert (after.state, after.remote_id, channel.sent, channel.lookups) == (SENT, "made-it", [], 1)

    async def test_a_duplicate_refusal_finds_the_post(self, store: Store) -> None:
        channel = Recorder([DuplicateError("duplicate: already posted")], found=Sent("the-original"))
        record(store, event())
        await drain(Worker(facade(store), channel, POLICY))
        [(_, _, [after])] = store.recent()
        assert (after.state, after.remote_id) == (SENT, "the-original")

    async def test_unknown_outcome_not_found_is_sent(self, store: Store) -> None:
        record(store, event())
        delivery = store.next_due("rec")
        assert delivery is not None
        store.mark_sending(delivery.id)
        assert store.next_due("rec").state == SENDING  # type: ignore[union-attr]
        channel = Recorder()
        await drain(Worker(facade(store), channel, POLICY))
        assert len(channel.sent) == 1


class TestUnknownOutcome:
    """When the lookup itself fails, nothing is posted until the outcome is known."""

    async def test_a_failed_lookup_waits_instead_of_posting(self, store: Store) -> None:
        class Blind(Recorder):
            async def find(self, message: Message, *, idempotency_key: str, since: object = None,
                           reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
                self.lookups += 1
                raise TransientError("HTTP 503 while reading the timeline")

        channel = Blind([timed_out()])
        record(store, event())
        worker = Worker(facade(store), channel, POLICY)
        await worker.attempt(store.next_due("rec"))  # type: ignore[arg-type]
        await worker.attempt(store.next_due("rec"))  # type: ignore[arg-type]
        [(_, _, [after])] = store.recent()
        assert (after.state, channel.sent, channel.lookups) == (PENDING, [], 1)
        assert after.last_error == "cannot tell yet whether the last attempt was posted"
