"""The webpush channel against the local push service: encryption, VAPID, headers, gone, 429, resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from statusd.channels.base import TransientError
from statusd.channels.webpush import WebPush, topic
from statusd.channels.webpush_store import Subscriptions, store_file
from statusd.compose.message import Message
from tests.conftest import WriteConfig
from tests.push.conftest import add, push_channels
from tests.support.channels import ChannelBuilder
from tests.support.fakes.push import PushService

pytestmark = pytest.mark.e2e


def message(kind: str = "status_changed", level: str = "closed", target: str = "main",
            language: str = "fr") -> Message:
    return Message(text="Bibliothèque centrale : fermé. Dégât des eaux.", language=language, link=None,
                   event_id="e1", kind=kind, target=target, level=level)


async def build(write_config: WriteConfig, builder: ChannelBuilder, key: Path, state: Path,
                name: str = "push-fr") -> WebPush:
    path = write_config(channels=push_channels(key))
    channel = builder.build(path, name, WebPush)
    channel.keep_sessions(state)
    await channel.open()
    return channel


class TestOneClosure:
    """A closure reaches every subscription of its site and language, once, readable by the browser."""

    async def test_each_browser_decrypts_the_text_once(self, write_config: WriteConfig,
                                                       channel_builder: ChannelBuilder, vapid: tuple[Path, str],
                                                       push_service: PushService, tmp_path: Path) -> None:
        state = tmp_path / "state"
        fr = [push_service.subscribe() for _ in range(30)]
        en = [push_service.subscribe() for _ in range(5)]
        annexe = [push_service.subscribe() for _ in range(5)]
        add(state, push_service, fr)
        add(state, push_service, en, language="en")
        add(state, push_service, annexe, site="annexe")
        channel = await build(write_config, channel_builder, vapid[0], state)
        sent = await channel.send(message(), idempotency_key="k1", reply_to=None)
        assert sent.remote_id.endswith("30/30")
        assert push_service.times() == {b.id: 1 for b in fr}
        assert not push_service.refused
        first = push_service.received[0]
        assert first.payload["body"] == "Bibliothèque centrale : fermé. Dégât des eaux."
        assert (first.payload["site"], first.payload["lang"], first.payload["title"]) == ("main", "fr", "Status")
        assert (first.topic, first.ttl, first.urgency) == (topic("main"), 86400, "normal")

    async def test_the_same_key_again_sends_nothing(self, write_config: WriteConfig,
                                                     channel_builder: ChannelBuilder, vapid: tuple[Path, str],
                                                     push_service: PushService, tmp_path: Path) -> None:
        state = tmp_path / "state"
        add(state, push_service, [push_service.subscribe() for _ in range(10)])
        channel = await build(write_config, channel_builder, vapid[0], state)
        await channel.send(message(), idempotency_key="k1", reply_to=None)
        await channel.send(message(), idempotency_key="k1", reply_to=None)
        assert len(push_service.received) == 10


class TestHeadersByKind:
    """Urgency and TTL follow the kind: emergency high, status normal, seats and queues low."""

    @pytest.mark.parametrize(("kind", "level", "target", "ttl", "urgency"), [
        ("status_changed", "emergency", "main", 12 * 3600, "high"),
        ("status_changed", "open", "main", 86400, "normal"),
        ("seats_changed", "open", "main", 1800, "low"),
        ("status_changed", "closed", "main/wifi", 1800, "low"),
    ])
    async def test_headers(self, write_config: WriteConfig, channel_builder: ChannelBuilder,
                           vapid: tuple[Path, str], push_service: PushService, tmp_path: Path,
                           kind: str, level: str, target: str, ttl: int, urgency: str) -> None:
        state = tmp_path / "state"
        add(state, push_service, [push_service.subscribe()], kinds="all")
        channel = await build(write_config, channel_builder, vapid[0], state)
        await channel.send(message(kind, level, target), idempotency_key="k", reply_to=None)
        got = push_service.received[0]
        assert (got.ttl, got.urgency, got.topic) == (ttl, urgency, topic("main"))


class TestKinds:
    """Seats and queues go only to those who asked for them; status changes to everyone."""

    async def test_seats_skip_status_only(self, write_config: WriteConfig, channel_builder: ChannelBuilder,
                                          vapid: tuple[Path, str], push_service: PushService,
                                          tmp_path: Path) -> None:
        state = tmp_path / "state"
        only = [push_service.subscribe() for _ in range(3)]
        everything = [push_service.subscribe() for _ in range(2)]
        add(state, push_service, only)
        add(state, push_service, everything, kinds="all")
        channel = await build(write_config, channel_builder, vapid[0], state)
        await channel.send(message("seats_changed", "open"), idempotency_key="s", reply_to=None)
        assert set(push_service.times()) == {b.id for b in everything}
        await channel.send(message(), idempotency_key="c", reply_to=None)
        assert push_service.times() == {**{b.id: 1 for b in only}, **{b.id: 2 for b in everything}}


class TestGoneAndBusy:
    """404/410 delete the subscription; 429 waits for Retry-After; the rest still arrive."""

    async def test_gone_subscriptions_are_deleted(self, write_config: WriteConfig,
                                                   channel_builder: ChannelBuilder, vapid: tuple[Path, str],
                                                   push_service: PushService, tmp_path: Path) -> None:
        state = tmp_path / "state"
        live = [push_service.subscribe() for _ in range(8)]
        gone = [push_service.subscribe(gone=410), push_service.subscribe(gone=404)]
        add(state, push_service, live + gone)
        add(state, push_service, gone[:1], site="annexe")
        channel = await build(write_config, channel_builder, vapid[0], state)
        sent = await channel.send(message(), idempotency_key="k", reply_to=None)
        assert sent.remote_id.endswith("8/10")
        left = Subscriptions(store_file(state))
        endpoints = {s.endpoint for s in left.all()}
        left.close()
        assert endpoints == {push_service.endpoint(b) for b in live}

    async def test_retry_after_is_honoured(self, write_config: WriteConfig, channel_builder: ChannelBuilder,
                                           vapid: tuple[Path, str], push_service: PushService,
                                           tmp_path: Path) -> None:
        import time

        state = tmp_path / "state"
        browsers = [push_service.subscribe() for _ in range(5)]
        add(state, push_service, browsers)
        channel = await build(write_config, channel_builder, vapid[0], state)
        push_service.limit(3, retry_after=0.6)
        started = time.monotonic()
        await channel.send(message(), idempotency_key="k", reply_to=None)
        assert time.monotonic() - started >= 0.6
        assert push_service.times() == {b.id: 1 for b in browsers}
        assert push_service.answers[429] == 3

    async def test_a_long_retry_after_goes_back_to_the_outbox(
            self, write_config: WriteConfig, channel_builder: ChannelBuilder, vapid: tuple[Path, str],
            push_service: PushService, tmp_path: Path) -> None:
        state = tmp_path / "state"
        browsers = [push_service.subscribe() for _ in range(4)]
        add(state, push_service, browsers)
        channel = await build(write_config, channel_builder, vapid[0], state)
        push_service.limit(100, retry_after=120)
        with pytest.raises(TransientError) as caught:
            await channel.send(message(), idempotency_key="k", reply_to=None)
        assert caught.value.retry_after == 120
        assert "4 of 4 subscriptions not reached yet" in str(caught.value)

    async def test_a_long_pause_stops_the_pass_at_once(
            self, write_config: WriteConfig, channel_builder: ChannelBuilder, vapid: tuple[Path, str],
            push_service: PushService, tmp_path: Path) -> None:
        import time

        state = tmp_path / "state"
        add(state, push_service, [push_service.subscribe() for _ in range(400)])
        path = write_config(channels=push_channels(vapid[0], connections=4))
        channel = channel_builder.build(path, "push-fr", WebPush)
        channel.keep_sessions(state)
        push_service.limit(4, retry_after=3600)
        started = time.monotonic()
        with pytest.raises(TransientError):
            await channel.send(message(), idempotency_key="k", reply_to=None)
        assert time.monotonic() - started < 5
        push_service.limit(0, 0)
        channel._ready()._paused.clear()
        await channel.send(message(), idempotency_key="k", reply_to=None)
        assert len(push_service.received) == 400
        assert set(push_service.times().values()) == {1}


class TestHarsh:
    """A stalled request and HTML error pages are retried; nothing is lost or sent twice."""

    async def test_stall_and_html_errors(self, write_config: WriteConfig, channel_builder: ChannelBuilder,
                                         vapid: tuple[Path, str], push_service: PushService,
                                         tmp_path: Path) -> None:
        state = tmp_path / "state"
        browsers = [push_service.subscribe() for _ in range(20)]
        add(state, push_service, browsers)
        path = write_config(channels=push_channels(vapid[0]).replace("loopback_endpoints", "timeout: 1s, loopback_endpoints"))
        channel = channel_builder.build(path, "push-fr", WebPush)
        channel.keep_sessions(state)
        push_service.stall = 3.0
        push_service.fail(0, 500, 502, 503)
        await channel.send(message(), idempotency_key="k", reply_to=None)
        assert push_service.times() == {b.id: 1 for b in browsers}
        assert push_service.answers[500] + push_service.answers[502] + push_service.answers[503] == 3


class TestRefusedByTheService:
    """A 403 (a subscription made with another VAPID key) is counted and not retried; the others arrive."""

    async def test_wrong_key(self, write_config: WriteConfig, channel_builder: ChannelBuilder,
                             vapid: tuple[Path, str], tmp_path: Path) -> None:
        from structlog.testing import capture_logs

        from statusd.channels.webpush_keys import generate

        async with PushService(vapid_public=generate()[1]) as other:
            state = tmp_path / "state"
            add(state, other, [other.subscribe() for _ in range(3)])
            channel = await build(write_config, channel_builder, vapid[0], state)
            with capture_logs() as logs:
                sent = await channel.send(message(), idempotency_key="k", reply_to=None)
        assert sent.remote_id.endswith("0/3")
        assert other.answers[403] == 3 and not other.received
        [batch] = [e for e in logs if e["event"] == "push_batch"]
        assert (batch["log_level"], batch["refused"]) == ("warning", 3)


class TestMisconfigured:
    """A subject push services cannot contact, or an unreadable key, is one sentence without the key."""

    async def test_bad_subject(self, write_config: WriteConfig, channel_builder: ChannelBuilder,
                               vapid: tuple[Path, str], tmp_path: Path) -> None:
        from statusd.channels.base import PermanentError

        path = write_config(channels=push_channels(vapid[0]).replace("mailto:it@library.example", "it@library"))
        channel = channel_builder.build(path, "push-fr", WebPush)
        channel.keep_sessions(tmp_path / "state")
        with pytest.raises(PermanentError, match="must be a mailto: or https: address"):
            await channel.open()

    async def test_bad_key(self, write_config: WriteConfig, channel_builder: ChannelBuilder,
                           tmp_path: Path) -> None:
        from statusd.channels.base import PermanentError

        key = tmp_path / "broken.pem"
        key.write_text("-----BEGIN PRIVATE KEY-----\nsecretgarbage\n-----END PRIVATE KEY-----\n")
        channel = channel_builder.build(write_config(channels=push_channels(key)), "push-fr", WebPush)
        channel.keep_sessions(tmp_path / "state")
        with pytest.raises(PermanentError, match=f"neither a PEM P-256 key.*file {key}") as caught:
            await channel.open()
        assert "secretgarbage" not in str(caught.value)
