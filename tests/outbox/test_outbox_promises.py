"""The outbox's promises, read back from what a channel double holds: order per target,
uncertain sends resolved, claimed posts excluded, every attempt counted, nothing said twice."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from statusd.channels.base import Reply, Sent, TransientError
from statusd.compose.message import Message
from statusd.config.types import DeliveryConfig
from statusd.events import Event, EventKind
from statusd.model import Announced, Level, Target
from statusd.outbox.outcome import may_have_posted
from statusd.outbox.store import PENDING, SENT, SUPERSEDED, Planned, Store
from statusd.outbox.worker import Worker
from tests.support.stores import NewStore, facade

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
POLICY = DeliveryConfig(deadline=30.0, backoff=0.01, backoff_max=0.05, timeout=1.0)


def event(target: str, level: Level, rev: str, previous: Level = Level.OPEN) -> Event:
    return Event(EventKind.STATUS_CHANGED, Target.parse(target), level, previous, {"en": rev}, NOW, "alice", rev)


def message(ev: Event, text: str) -> Message:
    return Message(text, "en", None, ev.id, ev.kind.value, str(ev.target), ev.level.value)


def timed_out() -> TransientError:
    err = TransientError("no answer within 1 s")
    err.__cause__ = TimeoutError()
    return err


def refused() -> TransientError:
    err = TransientError("cannot reach http://127.0.0.1:9: Connection refused")
    err.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return err


class Platform:
    """A channel double that holds its posts like a platform: a list, oldest first.

    `outcomes` scripts each send: None posts it, an exception is raised; "timeout after"
    posts it and then raises a timeout (the answer was lost). `gate` holds the next send
    until set. `lookups` scripts find(): "fail" raises, anything else reads the posts.
    """

    kind: ClassVar[str] = "platform"
    honours_idempotency: ClassVar[bool] = False
    max_chars: int | None = None
    language = "en"

    def __init__(self, outcomes: list[Any] | None = None, *, lookups: list[str] | None = None) -> None:
        self.name = "rec"
        self.outcomes = outcomes or []
        self.lookups = lookups or []
        self.posts: list[tuple[str, str, str]] = []  # (remote id, text, key)
        self.found_calls: list[frozenset[str]] = []
        self.gate: asyncio.Event | None = None
        self.sending = asyncio.Event()  # set when a send has begun
        self.sends = 0

    def measure(self, text: str) -> int:
        return len(text)

    async def open(self) -> None:
        return None

    async def whoami(self) -> str:
        return "a platform double"

    def texts(self) -> list[str]:
        return [text for _, text, _ in self.posts]

    async def send(self, message: Message, *, idempotency_key: str, reply_to: Reply | None,
                   created: Any = None) -> Sent:
        self.sends += 1
        self.sending.set()
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.wait()
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome == "timeout after":
            self._post(message, idempotency_key)
            raise timed_out()
        if isinstance(outcome, Exception):
            raise outcome
        return Sent(self._post(message, idempotency_key))

    def _post(self, message: Message, key: str) -> str:
        if self.honours_idempotency:
            for remote_id, _, seen in self.posts:
                if seen == key:
                    return remote_id
        remote_id = f"p{len(self.posts) + 1}"
        self.posts.append((remote_id, message.text, key))
        return remote_id

    async def delete(self, remote_id: str) -> None:
        return None

    async def find(self, message: Message, *, idempotency_key: str, since: object = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        self.found_calls.append(exclude)
        if self.lookups and self.lookups.pop(0) == "fail":
            raise TransientError("HTTP 503 while reading the timeline")
        for remote_id, text, _ in reversed(self.posts):
            if text == message.text and remote_id not in exclude:
                return Sent(remote_id)
        return None

    async def close(self) -> None:
        return None


class Honouring(Platform):
    """A platform that remembers idempotency keys: a repeated key returns the first post."""

    honours_idempotency: ClassVar[bool] = True


def record(store: Store, ev: Event, text: str, at: float | None = None) -> None:
    announced = {str(ev.target): Announced(ev.level.value, ev.revision, "", ev.id, 0.0)}
    store.record([(ev, [Planned("rec", message(ev, text))])], announced, deadline=30.0, now=at)


def states(store: Store) -> dict[str, str]:
    return {d.message.text: d.state for _, _, ds in store.recent(100) for d in ds if d.message}


async def drain(worker: Worker, seconds: float = 3.0) -> None:
    task = asyncio.create_task(worker.run())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker.store.sync.next_due(worker.channel.name) is None and not worker.busy:
            break
        await asyncio.sleep(0.01)
    worker.stop()
    await asyncio.wait_for(task, 2.0)


class TestOrderPerTarget:
    """A post in flight when a newer status arrives is never sent after the newer one."""

    @pytest.mark.parametrize(("target", "older", "newer"), [
        ("main", (Level.OPEN, Level.CLOSED), (Level.CLOSED, Level.OPEN)),      # a reopening, then closed
        ("main/wifi", (Level.LIMITED, Level.OPEN), (Level.OPEN, Level.LIMITED)),  # a service of an open site
    ])
    async def test_a_refused_send_in_flight_is_superseded(
        self, store: Store, target: str, older: tuple[Level, Level], newer: tuple[Level, Level],
    ) -> None:
        first = event(target, older[0], "first", previous=older[1])
        record(store, first, "first", at=time.time() - 1)
        platform = Platform([TransientError("HTTP 500: Internal Server Error")])
        platform.gate = gate = asyncio.Event()
        worker = Worker(facade(store), platform, POLICY)
        running = asyncio.create_task(drain(worker))
        await asyncio.wait_for(platform.sending.wait(), 2.0)
        record(store, event(target, newer[0], "second", previous=newer[1]), "second")
        worker.poke()
        gate.set()
        await running
        assert platform.texts() == ["second"]
        assert states(store) == {"first": SUPERSEDED, "second": SENT}

    async def test_an_uncertain_earlier_post_is_resolved_before_the_newer_is_sent(self, store: Store) -> None:
        """It timed out but was made: found and recorded first, so the newer one lands last."""
        record(store, event("main", Level.CLOSED, "first"), "first", at=time.time() - 1)
        platform = Platform(["timeout after"], lookups=["fail", "fail"])
        worker = Worker(facade(store), platform, POLICY)
        await worker.attempt(store.next_due("rec"))  # type: ignore[arg-type]
        record(store, event("main", Level.OPEN, "second", previous=Level.CLOSED), "second")
        await drain(worker)
        assert platform.texts() == ["first", "second"]
        assert states(store) == {"first": SENT, "second": SENT}
        assert len(platform.found_calls) == 3  # two failed look-ups, then found; the newer waited

    async def test_an_uncertain_earlier_post_proved_absent_is_superseded(self, store: Store) -> None:
        record(store, event("main", Level.CLOSED, "first"), "first", at=time.time() - 1)
        platform = Platform([timed_out()])
        worker = Worker(facade(store), platform, POLICY)
        await worker.attempt(store.next_due("rec"))  # type: ignore[arg-type]
        record(store, event("main", Level.OPEN, "second", previous=Level.CLOSED), "second")
        await drain(worker)
        assert platform.texts() == ["second"]
        assert states(store) == {"first": SUPERSEDED, "second": SENT}


class TestUncertainSends:
    """An uncertain send is looked up or repeated with a key the platform honours; a definite one is not."""

    def test_what_is_uncertain(self) -> None:
        assert may_have_posted(timed_out())
        assert not may_have_posted(refused())
        assert not may_have_posted(TransientError("HTTP 503: busy"))
        assert not may_have_posted(TransientError("HTTP 429", retry_after=3.0))

    def test_an_answer_from_x_is_definite(self) -> None:
        """tweepy is looked up, not imported, by the outcome (outbox/outcome.py): its error for an
        answer from X still means nothing was posted, and a timeout under it still may have."""
        import tweepy  # type: ignore[import-untyped]

        class Answer:
            status_code, reason = 503, "Service Unavailable"

        answered = TransientError("X answered 503")
        answered.__cause__ = tweepy.errors.TwitterServerError(Answer(), response_json={"errors": []})
        assert not may_have_posted(answered)
        broken = TransientError("X: no answer")
        broken.__cause__ = TimeoutError()
        assert may_have_posted(broken)

    async def test_a_refused_connection_is_sent_again_without_a_look_up(self, store: Store) -> None:
        record(store, event("main", Level.CLOSED, "one"), "one")
        platform = Platform([refused()])
        await drain(Worker(facade(store), platform, POLICY))
        assert (platform.texts(), platform.found_calls) == (["one"], [])

    async def test_without_honoured_keys_every_uncertain_attempt_is_looked_up(self, store: Store) -> None:
        record(store, event("main", Level.CLOSED, "one"), "one")
        platform = Platform([timed_out(), timed_out()])
        await drain(Worker(facade(store), platform, POLICY))
        assert platform.texts() == ["one"]
        assert len(platform.found_calls) == 2

    async def test_with_honoured_keys_the_same_key_is_sent_again(self, store: Store) -> None:
        record(store, event("main", Level.CLOSED, "one"), "one")
        platform = Honouring(["timeout after"])
        await drain(Worker(facade(store), platform, POLICY))
        assert (platform.texts(), platform.found_calls, platform.sends) == (["one"], [], 2)

    async def test_a_crash_mid_send_is_found_not_repeated(self, store: Store) -> None:
        record(store, event("main", Level.CLOSED, "one"), "one")
        platform = Platform()
        platform._post(message(event("main", Level.CLOSED, "one"), "one"), "k")
        delivery = store.next_due("rec")
        assert delivery is not None
        store.mark_sending(delivery.id)  # the daemon died here
        await drain(Worker(facade(store), platform, POLICY))
        assert platform.texts() == ["one"]
        assert store.delivery(delivery.id).remote_id == "p1"  # type: ignore[union-attr]


class TestClaimedPosts:
    """A remote post claimed by one delivery is never claimed by another."""

    async def test_two_updates_with_the_same_text_are_two_posts(self, store: Store) -> None:
        record(store, event("main", Level.CLOSED, "a"), "Café: closed", at=time.time() - 5)
        record(store, event("annexe", Level.CLOSED, "b"), "Café: closed", at=time.time() - 4)
        platform = Platform([None, timed_out()])
        await drain(Worker(facade(store), platform, POLICY))
        assert platform.texts() == ["Café: closed", "Café: closed"]
        remote = {d.event_id: d.remote_id for _, _, ds in store.recent() for d in ds}
        assert sorted(r or "" for r in remote.values()) == ["p1", "p2"]
        assert platform.found_calls == [frozenset({"p1"})]

    async def test_a_claimed_post_returned_by_a_channel_is_not_taken(self, store: Store) -> None:
        class Careless(Platform):
            async def find(self, message: Message, *, idempotency_key: str, since: object = None,
                           reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
                self.found_calls.append(exclude)
                return Sent("p1")  # ignores `exclude`

        record(store, event("main", Level.CLOSED, "a"), "same", at=time.time() - 5)
        record(store, event("annexe", Level.CLOSED, "b"), "same", at=time.time() - 4)
        platform = Careless([None, refused(), timed_out()])
        await drain(Worker(facade(store), platform, POLICY))
        remote = sorted(d.remote_id or "" for _, _, ds in store.recent() for d in ds)
        assert remote == ["p1", "p2"]


class TestBackoff:
    """Every attempt counts towards the backoff, look-ups included."""

    async def test_failing_look_ups_back_off(self, store: Store) -> None:
        record(store, event("main", Level.CLOSED, "one"), "one")
        platform = Platform([timed_out()], lookups=["fail"] * 100)
        policy = replace(POLICY, backoff=0.05, backoff_max=30.0)
        task = asyncio.create_task(Worker(facade(store), platform, policy).run())
        await asyncio.sleep(1.5)
        task.cancel()
        [(_, _, [delivery])] = store.recent()
        # 0.05, 0.1, 0.2, 0.4, 0.8 s at most between attempts: no more than six in 1.5 s.
        assert 2 <= len(platform.found_calls) <= 6
        assert delivery.attempts == 1 + len(platform.found_calls)
        assert delivery.state == PENDING and delivery.uncertain


class _StockMastodon:
    """Stock Mastodon: remembers an Idempotency-Key for an hour after the post it made; can be searched."""

    kind = "mastodon"
    name = "m"
    language = "en"
    max_chars = None
    honours_idempotency = True

    def __init__(self, clock: list[float], script: list[str]) -> None:
        self.clock, self.script = clock, script
        self.posts: list[tuple[str, str, float]] = []
        self.keys: dict[str, tuple[str, float]] = {}

    def measure(self, text: str) -> int:
        return len(text)

    async def send(self, message: Message, *, idempotency_key: str, reply_to: Reply | None,
                   created: Any = None) -> Sent:
        outcome = self.script.pop(0) if self.script else "ok"
        if outcome == "refused":
            raise TransientError("cannot reach: Connection refused") from ConnectionRefusedError()
        known = self.keys.get(idempotency_key)
        if known and self.clock[0] - known[1] < 3600:
            return Sent(known[0])
        remote = f"p{len(self.posts)}"
        self.posts.append((remote, message.text, self.clock[0]))
        self.keys[idempotency_key] = (remote, self.clock[0])
        if outcome == "timeout":
            raise TransientError("no answer within 10 s") from TimeoutError()
        return Sent(remote)

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        start = since.timestamp() if since else 0.0
        return next((Sent(r) for r, text, at in self.posts if text == message.text and at >= start
                     and r not in exclude), None)

    async def delete(self, remote_id: str) -> None:
        return None


class TestKeyWindow:
    """After an outage longer than the platform remembers keys, the post is looked up, not repeated."""

    async def test_two_hours_of_refusals_after_a_timeout_make_one_post(
        self, new_store: NewStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import statusd.outbox.store as store_module
        import statusd.outbox.worker as worker_module

        clock = [1_800_000_000.0]

        steady = time.monotonic

        class Clock:
            time = staticmethod(lambda: clock[0])
            monotonic = staticmethod(steady)

        monkeypatch.setattr(store_module, "time", Clock)
        monkeypatch.setattr(worker_module, "time", Clock)
        store = new_store("o.db")
        ev = Event(EventKind.STATUS_CHANGED, Target.parse("main"), Level.CLOSED, Level.OPEN, {"en": "x"},
                   datetime.now(UTC), "a", "r1")
        text = Message("Main: closed.", "en", None, ev.id, ev.kind.value, "main", "closed")
        store.record([(ev, [Planned("m", text)])], {}, 6 * 3600.0, now=clock[0])
        platform = _StockMastodon(clock, ["timeout"] + ["refused"] * 60)
        # Retries every few minutes: each one alone looks recent, the first post is hours old.
        worker = Worker(facade(store), platform, DeliveryConfig(backoff_max=300.0))  # type: ignore[arg-type]
        for _ in range(300):  # bounded: each step is one attempt
            due = store.next_due("m")
            if due is None:
                break
            clock[0] = max(clock[0], due.next_attempt)
            await worker.attempt(due)
        assert [text for _, text, _ in platform.posts] == ["Main: closed."]
        assert platform.script == [] or store.next_due("m") is None
        store.close()
