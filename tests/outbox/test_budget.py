"""Posting budgets: platform defaults, per-account settings, staff first, automatics dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from statusd.channels.bluesky import Bluesky
from statusd.channels.facebook import FacebookPage
from statusd.compose.message import Message
from statusd.config.types import BudgetConfig, ChannelConfig
from statusd.errors import ConfigError
from statusd.events import Event, EventKind
from statusd.loading import load
from statusd.model import Level, Target
from statusd.outbox.budget import DROPPED, Budget, budget_for
from statusd.outbox.store import PENDING, SENT, Planned, Store
from statusd.outbox.worker import Worker
from tests.conftest import WriteConfig
from tests.support.fakes.bluesky import FakeBluesky
from tests.support.fakes.facebook import FakeGraph
from tests.support.stores import NewStore, facade

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
HANDLE, PASSWORD = "library.bib.test", "abcd-efgh-ijkl-mnop"


def channel_config(kind: str, **budget: object) -> ChannelConfig:
    return ChannelConfig("acct", kind, "fr", None, None, {}, {}, budget)


def event(i: int, kind: EventKind = EventKind.SEATS_CHANGED, level: Level = Level.OPEN) -> Event:
    return Event(kind, Target.parse(f"main/z{i}"), level, Level.OPEN, {"fr": "x"}, NOW, "sensor", f"r{i}")


def planned(ev: Event, channel: str, text: str) -> Planned:
    return Planned(channel, Message(text, "fr", None, ev.id, ev.kind.value, str(ev.target), ev.level.value))


def states(store: Store, count: int) -> list[str]:
    return [d.state for d in map(store.delivery, range(1, count + 1)) if d is not None]


async def run_until_idle(worker: Worker, seconds: float = 10.0) -> None:
    task = asyncio.create_task(worker.run())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        due = worker.store.sync.next_due(worker.channel.name)
        if (due is None or due.next_attempt > time.time() + 1) and not worker.busy:
            break
        await asyncio.sleep(0.02)
    worker.stop()
    await asyncio.wait_for(task, 5.0)


class TestDefaults:
    """Without settings each platform's published limits apply; an account may set its own."""

    @pytest.mark.parametrize(("kind", "day", "window"), [
        ("x", 17, None), ("mastodon", None, 300), ("bluesky", 11666, 1666), ("webhook", None, None),
    ])
    def test_platform_defaults(self, tmp_path: Path, kind: str, day: int | None,
                               window: int | None, new_store: NewStore) -> None:
        store = new_store("statusd.db")
        left = budget_for(channel_config(kind)).remaining(store)
        assert (left.day, left.window) == (day, window)

    def test_account_setting_overrides_one_key(self, tmp_path: Path) -> None:
        budget = budget_for(channel_config("bluesky", per_day=17))
        assert budget.limits == BudgetConfig(per_day=17, per_window=5000, window=3600.0, cost=3)

    def test_read_from_statusd_yaml(self, write_config: WriteConfig) -> None:
        config = load(write_config("  c: {type: console, language: fr, budget: {per_day: 17, window: 3h,"
                                   " per_window: 5}}"))
        assert dict(config.channels["c"].budget) == {"per_day": 17, "per_window": 5, "window": 10800.0}

    def test_a_wrong_budget_is_refused_with_its_place(self, write_config: WriteConfig) -> None:
        with pytest.raises(ConfigError) as caught:
            load(write_config("  c: {type: console, language: fr, budget: {per_dya: 17, cost: -1}}"))
        problems = " ".join(str(p) for p in caught.value.problems)
        assert "channels.c.budget.per_dya" in problems and "unknown key" in problems
        assert "channels.c.budget.cost" in problems


@pytest.fixture
async def fake() -> AsyncIterator[FakeBluesky]:
    async with FakeBluesky(HANDLE, PASSWORD) as pds:
        yield pds


class TestShortBudget:
    """20 automatic posts and one closure meet a budget of 17: the closure goes, the rest drop."""

    async def test_closure_is_posted_and_automatics_dropped(
        self, new_store: NewStore, write_config: WriteConfig, tmp_path: Path, fake: FakeBluesky,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("SKY_PASSWORD", PASSWORD)
        config = load(write_config(
            f"  sky: {{type: bluesky, language: fr, service: '{fake.url}', handle: {HANDLE},"
            " app_password: {env: SKY_PASSWORD}, budget: {per_day: 17, cost: 1}}"))
        store = new_store("state.db")
        automatic = [event(i) for i in range(20)]
        closure = event(99, EventKind.STATUS_CHANGED, Level.CLOSED)
        store.record([(e, [planned(e, "sky", f"Places libres : {i % 3} sur 240")])
                      for i, e in enumerate(automatic)], {}, deadline=60.0)
        store.record([(closure, [planned(closure, "sky", "Fermée : incendie.")])], {}, deadline=60.0)
        channel = Bluesky(config.channels["sky"], config.delivery)
        worker = Worker(facade(store), channel, config.delivery, budget_for(config.channels["sky"]))
        with capture_logs() as logs:
            await run_until_idle(worker)
        await channel.close()
        texts = [p.record["text"] for p in fake.posts]
        assert "Fermée : incendie." in texts
        assert len(texts) == 17 - 4 + 1  # 13 automatic (4 kept for staff), then the closure
        assert states(store, 21).count(DROPPED) == 7 and PENDING not in states(store, 21)
        dropped = [e for e in logs if e["event"] == "delivery_dropped"]
        assert len(dropped) == 7 and "kept for staff changes" in dropped[0]["reason"]

    async def test_spent_budget_postpones_staff_posts(self, tmp_path: Path, new_store: NewStore) -> None:
        store = new_store("state.db")
        budget = Budget("acct", BudgetConfig(per_day=2))
        sent = [event(i, EventKind.STATUS_CHANGED) for i in range(3)]
        store.record([(e, [planned(e, "acct", "x")]) for e in sent], {}, deadline=60.0)
        for i in (1, 2):
            store.mark_sent(i, f"r{i}", None)
        delivery = store.delivery(3)
        assert delivery is not None
        assert not budget.admit(store, delivery)
        later = store.delivery(3)
        assert later is not None and later.state == PENDING
        assert later.next_attempt == pytest.approx(time.time() + 86400, abs=5)
        assert "posting budget spent" in (later.last_error or "")

    async def test_a_thread_that_will_not_fit_says_so(self, tmp_path: Path, new_store: NewStore) -> None:
        store = new_store("state.db")
        budget = Budget("acct", BudgetConfig(per_day=3, reserve=0))
        thread = [event(i, EventKind.STATUS_CHANGED, Level.EMERGENCY) for i in range(5)]
        store.record([(e, [planned(e, "acct", f"{i + 1}/5")]) for i, e in enumerate(thread)], {},
                     deadline=60.0)
        left = budget.remaining(store)
        assert (left.posts, left.waiting_staff, left.short_by) == (3, 5, 2)
        first = store.delivery(1)
        assert first is not None
        with capture_logs() as logs:
            assert budget.admit(store, first)
        assert [e["event"] for e in logs] == ["budget_short"]

    async def test_usage_survives_a_restart(self, tmp_path: Path, new_store: NewStore) -> None:
        store = new_store("state.db")
        sent = [event(i, EventKind.STATUS_CHANGED) for i in range(5)]
        store.record([(e, [planned(e, "acct", "x")]) for e in sent], {}, deadline=60.0)
        for i in range(1, 6):
            store.mark_sent(i, f"r{i}", None)
        store.close()
        reopened = new_store("state.db")
        assert budget_for(channel_config("x")).remaining(reopened).day == 12
        assert states(reopened, 5) == [SENT] * 5


class TestFacebookUsage:
    """Facebook's usage headers are its budget: past 80 % automatic posts drop, staff posts go."""

    async def test_high_usage_drops_automatics(
        self, new_store: NewStore, write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async with FakeGraph(token="page-token", page_id="104857600123456", usage_share=85) as graph:
            monkeypatch.setenv("FB_TOKEN", "page-token")
            config = load(write_config(
                "  fb: {type: facebook, language: fr, page_id: '104857600123456',"
                f" token: {{env: FB_TOKEN}}, graph_url: '{graph.graph_url}', timeout: 2s}}"))
            channel = FacebookPage(config.channels["fb"], config.delivery)
            store = new_store("state.db")
            seats, closure = event(1), event(2, EventKind.STATUS_CHANGED, Level.CLOSED)
            store.record([(seats, [planned(seats, "fb", "Places libres : 12")]),
                          (closure, [planned(closure, "fb", "Fermée : incendie.")])], {}, deadline=60.0)
            budget = budget_for(config.channels["fb"], channel)
            await channel.whoami()  # the health check's call: the usage is known from here on
            assert budget.remaining(store).usage == 85.0
            await run_until_idle(Worker(facade(store), channel, config.delivery, budget))
            await channel.close()
            assert [p.message for p in graph.live_posts()] == ["Fermée : incendie."]
        assert states(store, 2) == [DROPPED, SENT]
