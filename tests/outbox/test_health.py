"""Honest health: a channel whose posts fail, or whose credentials are refused, says so and why."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from statusd import metrics
from statusd.channels.bluesky import Bluesky
from statusd.channels.facebook import FacebookPage
from statusd.compose.message import Message
from statusd.config.load import Config
from statusd.events import Event, EventKind
from statusd.loading import load
from statusd.model import Level, Target
from statusd.outbox import health
from statusd.outbox.budget import budget_for
from statusd.outbox.health import Health
from statusd.outbox.store import Planned, Store
from statusd.outbox.worker import Worker
from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.fakes import refusing_port
from tests.support.fakes.bluesky import FakeBluesky
from tests.support.fakes.facebook import FakeGraph
from tests.support.stores import NewStore, facade
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

HANDLE, PASSWORD = "library.bib.test", "abcd-efgh-ijkl-mnop"
NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
SKY = ("  sky: {{type: bluesky, language: fr, service: '{url}', handle: library.bib.test,"
       " app_password: {{env: SKY_PASSWORD}}, timeout: 1s}}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeBluesky]:
    async with FakeBluesky(HANDLE, PASSWORD) as pds:
        yield pds


def sky_config(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, url: str,
               password: str = PASSWORD) -> Config:
    monkeypatch.setenv("SKY_PASSWORD", password)
    return load(write_config(SKY.format(url=url)))


def record(store: Store, i: int) -> None:
    ev = Event(EventKind.STATUS_CHANGED, Target.parse(f"main/s{i}"), Level.CLOSED, Level.OPEN,
               {"fr": "x"}, NOW, "alice", f"r{i}")
    message = Message(f"Fermé {i}", "fr", None, ev.id, ev.kind.value, str(ev.target), "closed")
    store.record([(ev, [Planned("sky", message)])], {}, deadline=30.0)


async def deliver(store: Store, config: Config) -> None:
    channel = Bluesky(config.channels["sky"], config.delivery)
    worker = Worker(facade(store), channel, config.delivery)
    while (due := store.next_due("sky")) is not None:
        await worker.attempt(due)
    await channel.close()


class TestFailingDeliveries:
    """The last delivery failing permanently makes the channel failing, with that reason."""

    async def test_revoked_password_then_fixed(
        self, new_store: NewStore, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, fake: FakeBluesky,
        tmp_path: Path,
    ) -> None:
        store = new_store("state.db")
        record(store, 1)
        await deliver(store, sky_config(write_config, monkeypatch, fake.url, "revoked-pass"))
        entry = health.report(store, ["sky"], {}, {})["sky"]
        assert entry["state"] == "failing"
        assert "refused to log in as library.bib.test" in entry["reason"]
        assert "revoked-pass" not in json.dumps(entry)
        record(store, 2)
        await deliver(store, sky_config(write_config, monkeypatch, fake.url))
        assert health.report(store, ["sky"], {}, {})["sky"] == {"state": "ok", "pending": 0}

    async def test_metrics_carry_state_reason_and_budget(
        self, new_store: NewStore, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, fake: FakeBluesky,
        tmp_path: Path,
    ) -> None:
        store = new_store("state.db")
        record(store, 1)
        config = sky_config(write_config, monkeypatch, fake.url, "revoked-pass")
        await deliver(store, config)
        report = health.report(store, ["sky"], {"sky": budget_for(config.channels["sky"])}, {})
        health.update_metrics(report, {})
        text = metrics.render().decode()
        assert 'statusd_channel_health{channel="sky",reason="Bluesky at' in text
        assert 'state="failing"} 1.0' in text
        assert 'statusd_budget_remaining{channel="sky",period="24h"} 11666.0' in text
        assert 'statusd_budget_remaining{channel="sky",period="window"} 1666.0' in text


class TestCredentialCheck:
    """The periodic check asks each platform, and warns before a token expires."""

    async def test_refused_credentials_fail(
        self, new_store: NewStore, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, fake: FakeBluesky,
        tmp_path: Path,
    ) -> None:
        config = sky_config(write_config, monkeypatch, fake.url, "revoked-pass")
        channel = Bluesky(config.channels["sky"], config.delivery)
        check = await Health(None, 3600, 2.0).check(channel)
        await channel.close()
        assert check.ok is False and "refused to log in" in check.reason
        entry = health.report(new_store("s.db"), ["sky"], {}, {"sky": check})["sky"]
        assert entry["state"] == "failing" and entry["reason"] == check.reason

    async def test_unreachable_is_unknown_not_failing(
        self, new_store: NewStore, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    ) -> None:
        config = sky_config(write_config, monkeypatch, f"http://127.0.0.1:{refusing_port()}")
        channel = Bluesky(config.channels["sky"], config.delivery)
        check = await Health(None, 3600, 2.0).check(channel)
        await channel.close()
        entry = health.report(new_store("s.db"), ["sky"], {}, {"sky": check})["sky"]
        assert check.ok is None and entry["state"] == "ok"
        assert entry["credentials"].startswith("could not check: cannot reach Bluesky")

    async def test_facebook_token_expiry_warns_ahead(
        self, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async with FakeGraph(token="page-token", page_id="104857600123456") as graph:
            graph.token_expires_at = int(time.time()) + 3 * 86400
            graph.data_access_expires_at = int(time.time()) + 80 * 86400
            monkeypatch.setenv("FB_TOKEN", "page-token")
            config = load(write_config(
                "  fb: {type: facebook, language: fr, page_id: '104857600123456',"
                f" token: {{env: FB_TOKEN}}, graph_url: '{graph.graph_url}', timeout: 2s}}"))
            channel = FacebookPage(config.channels["fb"], config.delivery)
            with capture_logs() as logs:
                check = await Health(None, 3600, 2.0).check(channel)
            await channel.close()
        assert check.ok is True
        assert set(check.expires) == {"expires_at", "data_access_expires_at"}
        (warning,) = check.warnings
        assert warning.startswith("expires_at expires ") and "renew the token" in warning
        assert [e["token"] for e in logs if e["event"] == "token_expiring"] == ["expires_at"]
        health.update_metrics({}, {"fb": check})
        assert 'statusd_token_expires_seconds{channel="fb",token="expires_at"}' in metrics.render().decode()

    async def test_watch_rechecks_and_keeps_the_result(
        self, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, fake: FakeBluesky,
        tmp_path: Path,
    ) -> None:
        config = sky_config(write_config, monkeypatch, fake.url)
        channel = Bluesky(config.channels["sky"], config.delivery)
        watcher = Health(tmp_path, 0.2, 2.0)
        task = asyncio.create_task(watcher.watch(lambda: {"sky": channel}))
        try:
            await until(lambda: fake.calls.count("com.atproto.server.getSession") >= 3, "three checks")
        finally:
            task.cancel()
            await channel.close()
        assert health.read_checks(tmp_path)["sky"].ok is True
        assert fake.session_creates == 1

    async def test_a_restart_does_not_ask_again(
        self, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, fake: FakeBluesky,
        tmp_path: Path,
    ) -> None:
        config = sky_config(write_config, monkeypatch, fake.url)
        for _ in range(3):  # three starts within the re-check interval
            channel = Bluesky(config.channels["sky"], config.delivery)
            task = asyncio.create_task(Health(tmp_path, 3600, 2.0).watch(lambda: {"sky": channel}))  # noqa: B023
            await until(lambda: (tmp_path / "health.json").exists(), "the first check kept")
            await asyncio.sleep(0.3)  # time enough for a check, were one made
            task.cancel()
            await channel.close()
        assert fake.calls.count("com.atproto.server.getSession") == 1

    async def test_a_refused_check_is_repeated_at_start(
        self, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, fake: FakeBluesky,
        tmp_path: Path,
    ) -> None:
        refused = sky_config(write_config, monkeypatch, fake.url, "revoked-pass")
        for config in (refused, sky_config(write_config, monkeypatch, fake.url)):
            channel = Bluesky(config.channels["sky"], config.delivery)
            watcher = Health(tmp_path, 3600, 2.0)
            task = asyncio.create_task(watcher.watch(lambda: {"sky": channel}))  # noqa: B023
            await until(lambda: "sky" in watcher.checks, "a check")  # noqa: B023
            task.cancel()
            await channel.close()
        assert health.read_checks(tmp_path)["sky"].ok is True


class TestDaemon:
    """The running daemon shows a refused channel as failing in /readyz, /metrics and show."""

    async def test_refused_channel_everywhere(
        self, write_config: WriteConfig, fake: FakeBluesky, tmp_path: Path
    ) -> None:
        daemon = Daemon(write_config(SKY.format(url=fake.url)), tmp_path / "state",
                        env={"SKY_PASSWORD": "revoked-pass"}).start()
        try:
            def readyz() -> dict[str, object]:
                with urllib.request.urlopen(f"{daemon.ops_url}/readyz", timeout=5) as answer:
                    body: dict[str, object] = json.loads(answer.read())
                return body

            def failing() -> bool:
                try:
                    return bool(readyz()["channels"]["sky"]["state"] == "failing")  # type: ignore[index]
                except OSError:
                    return False

            await until(failing, "the channel to show as failing", timeout=15, blocking=True)
            def scrape() -> str:
                with urllib.request.urlopen(f"{daemon.ops_url}/metrics", timeout=5) as answer:
                    return str(answer.read().decode())

            sky = (await asyncio.to_thread(readyz))["channels"]["sky"]  # type: ignore[index]
            assert "refused to log in as library.bib.test" in sky["reason"]
            text = await asyncio.to_thread(scrape)
            assert 'state="failing"' in text and 'statusd_budget_remaining{channel="sky"' in text
            show = (await asyncio.to_thread(daemon.cli, "show")).stdout
            assert "channel sky: failing: Bluesky at" in show
            assert "channel sky: budget 11666 posts left in 24 h, 1666 in 1 h" in show
            assert show.startswith("Times in Europe/Paris")
            assert "revoked-pass" not in show + text + daemon.logs()
        finally:
            daemon.terminate()


class TestRetrying:
    """A channel whose post failed stays `retrying` while the next attempt is in flight, not `ok`."""

    def test_through_the_attempt_after_a_failure(self, new_store: NewStore) -> None:
        store = new_store("state.db")
        record(store, 1)
        due = store.next_due("sky")
        assert due is not None
        store.mark_sending(due.id)
        assert health.report(store, ["sky"], {}, {})["sky"]["state"] == "ok"  # a first attempt is no retry
        store.mark_retry(due.id, time.time(), "the server answered 500", uncertain=False)
        assert health.report(store, ["sky"], {}, {})["sky"]["state"] == "retrying"
        store.mark_sending(due.id)  # the second attempt, under way
        assert store.retry_depth() == {"sky": 1}
        assert health.report(store, ["sky"], {}, {})["sky"]["state"] == "retrying"
        store.mark_sent(due.id, "at://post/1", None)
        assert store.retry_depth() == {}
        assert health.report(store, ["sky"], {}, {})["sky"] == {"state": "ok", "pending": 0}
