"""The webhook channel over real HTTP against a receiver that answers like real servers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from email.utils import formatdate
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.http import retry_after
from statusd.channels.webhook import Webhook
from statusd.compose.message import Message
from statusd.config.load import Config
from statusd.loading import load
from tests.support import channels as support
from tests.support.channels import ChannelBuilder
from tests.support.fakes.common import standalone
from tests.support.fakes.webhook import (
    WebhookReceiver,
    blackhole,
    expected_signature,
    refusing_port,
    url_for,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent.parent
ENV = "TEST_HOOK_SECRET"
SECRET = "hook-secret-for-tests"
KEY = "delivery-0001"

MakeChannel = Callable[..., Webhook]

CONFIG = """\
public_url: http://127.0.0.1:8080
languages: [fr, en]
sites:
  main:
    name: {{fr: Bibliothèque centrale, en: Central library}}
    timezone: Europe/Paris
    services:
      wifi: {{fr: Wi-Fi, en: Wi-Fi}}
channels:
  hook:
    type: webhook
    language: fr
    url: {url}
    secret: {{env: {env}}}
    timeout: {timeout}
"""


def write_config(directory: Path, url: str, timeout: str = "0.3s") -> Path:
    path = directory / "statusd.yaml"
    path.write_text(CONFIG.format(url=url, env=ENV, timeout=timeout), encoding="utf-8")
    return path


def message(text: str = "Bibliothèque fermée — dégât des eaux", **changes: str) -> Message:
    return support.message(text, **changes)


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as receiver:
        yield receiver


@pytest.fixture
def make_channel(tmp_path: Path, channel_builder: ChannelBuilder) -> MakeChannel:
    """Build real Webhook channels from a statusd.yaml; each is closed after the test."""

    def make(url: str, *, secret: str = SECRET, timeout: str = "0.3s") -> Webhook:
        return channel_builder.build(write_config(tmp_path, url, timeout), "hook", Webhook, {ENV: secret})

    return make


@pytest.fixture
def channel(make_channel: MakeChannel, hook: WebhookReceiver) -> Webhook:
    return make_channel(hook.url)


class TestConfig:
    """A webhook channel is built from statusd.yaml and stays off while its secret is unset."""

    def test_secret_set_makes_it_active(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(ENV, SECRET)
        config = load(write_config(tmp_path, "http://127.0.0.1:9/hook"))
        assert config.channels["hook"].options.timeout == pytest.approx(0.3)
        assert config.channels["hook"].secrets["secret"].read() == SECRET

    def test_secret_unset_makes_it_inactive(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(ENV, raising=False)
        config: Config = load(write_config(tmp_path, "http://127.0.0.1:9/hook"))
        assert "hook" not in config.channels
        assert ENV in config.inactive["hook"]


class TestSend:
    """A message POSTed to a working receiver comes back as Sent with the receiver's id."""

    async def test_returns_the_receivers_id(self, channel: Webhook, hook: WebhookReceiver) -> None:
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert sent == Sent(remote_id=hook.arrivals[0].remote_id)
        assert sent.remote_id == "msg-1"

    async def test_sends_the_idempotency_key(self, channel: Webhook, hook: WebhookReceiver) -> None:
        await channel.send(message(), idempotency_key=KEY, reply_to=None)
        (attempt,) = hook.attempts
        assert (attempt.method, attempt.key) == ("POST", KEY)

    @pytest.mark.parametrize(
        ("target", "reply_to", "site", "service"),
        [
            ("main", None, "main", None),
            ("main/wifi", "msg-7", "main", "wifi"),
        ],
    )
    async def test_payload_fields(
        self, channel: Webhook, hook: WebhookReceiver,
        target: str, reply_to: str | None, site: str, service: str | None,
    ) -> None:
        sent_message = message(target=target)
        reply = Reply(parent=reply_to, root="msg-1") if reply_to else None
        await channel.send(sent_message, idempotency_key=KEY, reply_to=reply)
        (body,) = hook.received
        assert body == {
            "id": KEY,
            "event_id": "evt-42",
            "kind": "status_changed",
            "site": site,
            "service": service,
            "level": "closed",
            "language": "fr",
            "text": sent_message.text,
            "link": "http://127.0.0.1:8080/#main",
            "reply_to": reply_to,
        }


class TestSignature:
    """The receiver verifies the HMAC signature, and a wrong secret is refused for good."""

    async def test_signature_verifies(self, channel: Webhook, hook: WebhookReceiver) -> None:
        await channel.send(message(), idempotency_key=KEY, reply_to=None)
        (attempt,) = hook.attempts
        assert attempt.signature_ok
        assert hook.rejected == []

    async def test_wrong_secret_is_a_permanent_error(
        self, make_channel: MakeChannel, hook: WebhookReceiver
    ) -> None:
        channel = make_channel(hook.url, secret="not-the-receivers-secret")
        with pytest.raises(PermanentError, match="401") as caught:
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert not isinstance(caught.value, TransientError)
        assert "not-the-receivers-secret" not in str(caught.value)
        assert (len(hook.rejected), hook.received) == (1, [])


class TestIdempotency:
    """The same idempotency key sent twice leaves one message at the receiver."""

    async def test_same_key_twice_keeps_one(self, channel: Webhook, hook: WebhookReceiver) -> None:
        first = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        second = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert first == second
        assert (len(hook.received), hook.repeats, len(hook.attempts)) == (1, 1, 2)

    async def test_different_keys_make_two(self, channel: Webhook, hook: WebhookReceiver) -> None:
        await channel.send(message(), idempotency_key="a", reply_to=None)
        await channel.send(message(), idempotency_key="b", reply_to=None)
        assert [a.key for a in hook.arrivals] == ["a", "b"]

    async def test_retry_after_a_lost_answer_says_nothing_twice(
        self, channel: Webhook, hook: WebhookReceiver
    ) -> None:
        hook.mode = "accept_then_drop"
        with pytest.raises(TransientError):
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        hook.mode = "ok"
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert sent.remote_id == hook.arrivals[0].remote_id
        assert (len(hook.received), hook.repeats) == (1, 1)


class TestTransientFailures:
    """Server errors, rate limits, silence and unreachable hosts raise TransientError."""

    async def test_500_with_an_html_body(self, channel: Webhook, hook: WebhookReceiver) -> None:
        hook.mode = "error500"
        with pytest.raises(TransientError, match="HTTP 500") as caught:
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert caught.value.retry_after is None
        assert hook.received == []

    async def test_429_carries_retry_after(self, channel: Webhook, hook: WebhookReceiver) -> None:
        hook.mode, hook.retry_after = "ratelimit", 7
        with pytest.raises(TransientError, match="HTTP 429") as caught:
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert caught.value.retry_after == pytest.approx(7.0)

    async def test_hang_times_out_quickly(self, channel: Webhook, hook: WebhookReceiver) -> None:
        hook.mode = "hang"
        started = time.monotonic()
        with pytest.raises(TransientError, match="0.3 s"):
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert 0.25 < time.monotonic() - started < 1.5

    async def test_connection_refused(self, make_channel: MakeChannel) -> None:
        channel = make_channel(url_for(refusing_port()))
        with pytest.raises(TransientError, match="cannot reach"):
            await channel.send(message(), idempotency_key=KEY, reply_to=None)

    async def test_connected_but_silent(self, make_channel: MakeChannel) -> None:
        with blackhole() as port:
            channel = make_channel(url_for(port))
            started = time.monotonic()
            with pytest.raises(TransientError):
                await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert time.monotonic() - started < 1.5


class TestStatusClassification:
    """Each HTTP status is a TransientError or a PermanentError as a platform means it."""

    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (400, PermanentError),
            (403, PermanentError),
            (404, PermanentError),
            (408, TransientError),
            (410, PermanentError),
            (422, PermanentError),
            (502, TransientError),
            (503, TransientError),
            (504, TransientError),
        ],
    )
    async def test_status(
        self, channel: Webhook, hook: WebhookReceiver, status: int, error: type[Exception]
    ) -> None:
        hook.mode, hook.status = "status", status
        with pytest.raises((PermanentError, TransientError)) as caught:
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert type(caught.value) is error
        assert f"HTTP {status}" in str(caught.value)

    async def test_401_is_permanent(self, channel: Webhook, hook: WebhookReceiver) -> None:
        hook.mode = "unauthorized"
        with pytest.raises(PermanentError, match="invalid token"):
            await channel.send(message(), idempotency_key=KEY, reply_to=None)


class TestPlainAnswer:
    """A 200 answer that is not JSON counts as sent, under the idempotency key."""

    async def test_text_body(self, channel: Webhook, hook: WebhookReceiver) -> None:
        hook.mode = "plain"
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert sent == Sent(remote_id=KEY)
        assert len(hook.received) == 1


class TestDelete:
    """delete sends a signed DELETE naming the post to retract."""

    async def test_signed_delete(self, channel: Webhook, hook: WebhookReceiver) -> None:
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        await channel.delete(sent.remote_id)
        assert hook.deleted == [{"retract": "msg-1"}]
        seen = [(a.method, a.signature_ok) for a in hook.attempts]
        assert seen == [("POST", True), ("DELETE", True)]

    async def test_failed_delete_raises(self, channel: Webhook, hook: WebhookReceiver) -> None:
        hook.mode = "error500"
        with pytest.raises(TransientError):
            await channel.delete("msg-1")
        assert hook.deleted == []


NOW = 1_700_000_000.0


class TestRetryAfter:
    """retry_after reads Retry-After (seconds or HTTP date) before X-RateLimit-Reset (epoch)."""

    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"Retry-After": "120"}, 120.0),
            ({"Retry-After": "0"}, 0.0),
            ({"Retry-After": "1.5"}, 1.5),
            ({"Retry-After": "-5"}, 0.0),
            ({"Retry-After": formatdate(NOW + 90, usegmt=True)}, 90.0),
            ({"Retry-After": formatdate(NOW - 90, usegmt=True)}, 0.0),
            ({"X-RateLimit-Reset": str(int(NOW) + 30)}, 30.0),
            ({"x-ratelimit-reset": str(int(NOW) + 30)}, 30.0),
            ({"X-RateLimit-Reset": str(int(NOW) - 30)}, 0.0),
            ({"Retry-After": "10", "X-RateLimit-Reset": str(int(NOW) + 30)}, 10.0),
            ({"Retry-After": "soon", "X-RateLimit-Reset": str(int(NOW) + 5)}, 5.0),
            ({"Retry-After": "soon"}, None),
            ({"Retry-After": ""}, None),
            ({"X-RateLimit-Reset": "tomorrow"}, None),
            ({}, None),
        ],
    )
    def test_table(self, headers: dict[str, str], expected: float | None) -> None:
        assert retry_after(CIMultiDict(headers), now=NOW) == expected

    @pytest.mark.parametrize("value", ["inf", "Infinity", "1e999"])
    def test_infinite_is_not_a_wait(self, value: str) -> None:
        result = retry_after(CIMultiDict({"Retry-After": value}), now=NOW)
        assert result is None or result < float("inf")

    @given(st.integers(min_value=0, max_value=10**9))
    def test_whole_seconds_round_trip(self, seconds: int) -> None:
        assert retry_after(CIMultiDict({"Retry-After": str(seconds)}), now=NOW) == seconds

    @given(st.text(), st.text())
    def test_never_negative(self, after: str, reset: str) -> None:
        headers = CIMultiDict({"Retry-After": after, "X-RateLimit-Reset": reset})
        result = retry_after(headers, now=NOW)
        assert result is None or result >= 0.0


class TestReceiver:
    """The fake keeps its promises: it waits on events, holds and releases, stops promptly."""

    async def test_wait_for_names_the_shortfall(self, hook: WebhookReceiver) -> None:
        with pytest.raises(TimeoutError, match="took 0 of 1 messages"):
            await hook.wait_for(1, timeout=0.05)

    async def test_wait_for_wakes_on_arrival(
        self, make_channel: MakeChannel, hook: WebhookReceiver
    ) -> None:
        channel = make_channel(hook.url, timeout="5s")
        hook.mode = "accept_then_drop"
        sending = asyncio.create_task(channel.send(message(), idempotency_key=KEY, reply_to=None))
        (body,) = await hook.wait_for(1, timeout=2.0)
        assert body["id"] == KEY
        assert not sending.done()  # received, yet never answered
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending

    async def test_switching_mode_releases_a_held_request(
        self, make_channel: MakeChannel, hook: WebhookReceiver
    ) -> None:
        channel = make_channel(hook.url, timeout="5s")
        hook.mode = "hang"
        sending = asyncio.create_task(channel.send(message(), idempotency_key=KEY, reply_to=None))
        await hook.wait_attempts(1, timeout=2.0)
        assert hook.received == []
        hook.mode = "ok"
        assert (await asyncio.wait_for(sending, 2.0)).remote_id == "msg-1"

    async def test_stop_is_prompt_with_a_held_request(self, make_channel: MakeChannel) -> None:
        receiver = WebhookReceiver(SECRET, mode="hang")
        await receiver.start()
        channel = make_channel(receiver.url, timeout="5s")
        sending = asyncio.create_task(channel.send(message(), idempotency_key=KEY, reply_to=None))
        await receiver.wait_attempts(1, timeout=2.0)
        started = time.monotonic()
        await receiver.stop()
        with pytest.raises(TransientError):
            await asyncio.wait_for(sending, 2.0)
        assert time.monotonic() - started < 1.5

    async def test_delay_holds_the_answer_not_the_arrival(
        self, channel: Webhook, hook: WebhookReceiver
    ) -> None:
        hook.delay = 0.2
        started = time.monotonic()
        await channel.send(message(), idempotency_key=KEY, reply_to=None)
        answered = time.monotonic()
        assert answered - started >= 0.2
        assert answered - hook.arrivals[0].monotonic >= 0.2
        assert abs(hook.arrivals[0].wall - time.time()) < 5.0

    async def test_script_answers_once_then_mode_applies(
        self, channel: Webhook, hook: WebhookReceiver
    ) -> None:
        hook.script("error500")
        with pytest.raises(TransientError):
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert sent.remote_id == "msg-1"

    def test_unknown_mode_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown receiver mode 'teapot'"):
            WebhookReceiver(SECRET, mode="teapot")

    async def test_missing_signature_is_rejected(self, hook: WebhookReceiver) -> None:
        body = json.dumps({"id": KEY}).encode()
        async with aiohttp.ClientSession() as session:
            async with session.post(hook.url, data=body) as response:
                answer = (response.status, await response.json())
        assert answer == (401, {"error": "bad signature"})
        assert (len(hook.rejected), hook.received) == (1, [])

    def test_signature_helper_matches_statusd(self) -> None:
        from statusd.channels.webhook import sign

        assert sign(SECRET, b"{}") == expected_signature(SECRET, b"{}")


@pytest.fixture
def receiver_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The receiver as its own process: its URL and its log file."""
    log = tmp_path / "arrivals.jsonl"
    with standalone("webhook", "--secret", SECRET, "--delay", "0.05", "--log", str(log)) as (url,):
        yield url, log


class TestStandaloneProcess:
    """The receiver runs as its own process, logs each message once, and can be switched."""

    async def test_logs_each_message_once(
        self, make_channel: MakeChannel, receiver_process: tuple[str, Path]
    ) -> None:
        url, log = receiver_process
        channel = make_channel(url, timeout="5s")
        before = time.time()
        for key in ("a", "a", "b"):
            await channel.send(message(), idempotency_key=key, reply_to=None)
        lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        assert [(line["key"], line["id"], line["body"]["id"]) for line in lines] == [
            ("a", "msg-1", "a"),
            ("b", "msg-2", "b"),
        ]
        assert all(before <= line["received_at"] <= time.time() for line in lines)

    async def test_control_switches_the_mode(
        self, make_channel: MakeChannel, receiver_process: tuple[str, Path]
    ) -> None:
        url, _ = receiver_process
        control = url.replace("/hook", "/_control")
        async with aiohttp.ClientSession() as session:
            async with session.post(control, json={"mode": "ratelimit"}) as response:
                assert (await response.json())["mode"] == "ratelimit"
            channel = make_channel(url, timeout="5s")
            with pytest.raises(TransientError) as caught:
                await channel.send(message(), idempotency_key=KEY, reply_to=None)
            assert caught.value.retry_after == pytest.approx(2.0)
            async with session.get(control) as response:
                assert (await response.json())["attempts"] == 1
