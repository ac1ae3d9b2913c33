"""The Telegram channel over real HTTP against a fake Bot API that answers like Telegram."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd.channels import CHANNELS
from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.telegram import MAX_CHARS, WITHDRAWN, Telegram, answer, parse_remote_id
from statusd.compose.message import Message
from statusd.config.options import Duration, Url
from statusd.config.types import ChannelConfig, DeliveryConfig, Secret
from statusd.loading import load
from tests.fakes import blackhole, refusing_port
from tests.fakes.common import standalone
from tests.fakes.telegram import CHAT_ID, CHAT_USERNAME, FakeTelegram, recorded
from tests.support import channels as support
from tests.support.channels import LINK, TEXT, ChannelBuilder, linked

pytestmark = pytest.mark.unit

ENV = "TEST_TELEGRAM_TOKEN"
TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
KEY = "delivery-0001"
TOKEN_FILE = Path(tempfile.gettempdir()) / f"statusd-test-telegram-token-{os.getpid()}"

CHANNEL = """\
  tg:
    type: telegram
    language: fr
    chat_id: '{chat}'
    token: {{env: {env}}}
    api_url: {url}
    timeout: 0.5s
"""

MakeChannel = Callable[..., Telegram]


def message(text: str = TEXT) -> Message:
    return support.message(linked(text, LINK))


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def make_channel(write_config: Callable[..., Path], channel_builder: ChannelBuilder) -> MakeChannel:
    """Real Telegram channels built from a statusd.yaml; closed after the test."""

    def make(url: str, *, token: str = TOKEN, chat: str = str(CHAT_ID)) -> Telegram:
        path = write_config(channels=CHANNEL.format(chat=chat, env=ENV, url=url))
        return channel_builder.build(path, "tg", Telegram, {ENV: token})

    return make


@pytest.fixture
def channel(make_channel: MakeChannel, telegram: FakeTelegram) -> Telegram:
    return make_channel(telegram.url)


async def post(channel: Telegram, sample: Message | None = None, reply_to: Reply | None = None) -> Sent:
    return await channel.send(sample or message(), idempotency_key=KEY, reply_to=reply_to)


class TestConfig:
    """The channel is registered, read from statusd.yaml, and off while its token is unset."""

    def test_registered(self) -> None:
        assert CHANNELS["telegram"] is Telegram
        assert (Telegram.kind, Telegram.honours_idempotency) == ("telegram", False)

    def test_token_unset_makes_it_inactive(self, write_config: Callable[..., Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(ENV, raising=False)
        config = load(write_config(channels=CHANNEL.format(chat=CHAT_ID, env=ENV, url="http://127.0.0.1:9")))
        assert config.inactive["tg"] == f"off until environment variable {ENV} is set"

    def test_measures_in_utf16_units(self, make_channel: MakeChannel) -> None:
        channel = make_channel("http://127.0.0.1:9")
        assert channel.max_chars == MAX_CHARS == 4096
        assert channel.measure("Wi-Fi ✓ 图书馆 👩🏽") == 12 + 2 + 2


class TestSend:
    """A message becomes one message in the chat, with its link previewed; the id holds chat and date."""

    async def test_posts_once(self, channel: Telegram, telegram: FakeTelegram) -> None:
        sent = await post(channel)
        (stored,) = telegram.visible()
        assert stored.text == message().text and stored.link_preview == LINK
        assert sent == Sent(f"{CHAT_ID}:{stored.message_id}:{stored.date}",
                            f"https://t.me/{CHAT_USERNAME}/{stored.message_id}")

    async def test_only_staff_announcements_ring(self, channel: Telegram, telegram: FakeTelegram) -> None:
        await post(channel)
        await post(channel, Message("Places : 12 libres", "fr", None, "e2", "seats_changed", "main", "open"))
        assert [m.silent for m in telegram.visible()] == [False, True]

    async def test_token_only_in_the_path(self, channel: Telegram, telegram: FakeTelegram) -> None:
        await post(channel)
        ((path, method, params),) = telegram.requests
        assert (path, method) == (f"/bot{TOKEN}/sendMessage", "sendmessage")
        assert TOKEN not in str(params)

    async def test_thread_update_is_a_reply(self, channel: Telegram, telegram: FakeTelegram) -> None:
        first = await post(channel)
        second = await post(channel, message("Toujours fermé demain."), Reply(first.remote_id, first.remote_id))
        root, update = telegram.visible()
        assert update.reply_to == root.message_id == parse_remote_id(first.remote_id)[1]
        assert parse_remote_id(second.remote_id)[1] == update.message_id

    async def test_reply_to_a_deleted_post_still_goes_out(self, channel: Telegram, telegram: FakeTelegram) -> None:
        first = await post(channel)
        await channel.delete(first.remote_id)
        await post(channel, message("Mise à jour"), Reply(first.remote_id, first.remote_id))
        (update,) = telegram.visible()
        assert update.reply_to is None and update.text.startswith("Mise à jour")

    async def test_whoami_names_bot_and_chat(self, make_channel: MakeChannel, telegram: FakeTelegram) -> None:
        channel = make_channel(telegram.url, chat=f"@{CHAT_USERNAME}")
        assert await channel.whoami() == (f"Telegram bot @biblio_statut_bot in channel Bibliothèque centrale "
                                          f"(@{CHAT_USERNAME})")

    @settings(max_examples=25)
    @given(text=st.text(min_size=1, max_size=300).filter(str.strip))
    async def test_hostile_text_arrives_as_typed(self, text: str) -> None:
        async with FakeTelegram(token=TOKEN) as fake:
            channel = _bare(fake.url)
            try:
                await channel.send(Message(text, "fr", None, "e", "status_changed", "main", "closed"),
                                   idempotency_key=KEY, reply_to=None)
            finally:
                await channel.close()
            assert [m.text for m in fake.visible()] == [text]


class TestLength:
    """4,096 UTF-16 units pass; one more is refused before any request."""

    async def test_limit_exactly(self, channel: Telegram, telegram: FakeTelegram) -> None:
        text = "é" * (MAX_CHARS - 2) + "👩"
        await channel.send(Message(text, "fr", None, "e", "k", "main", "closed"), idempotency_key=KEY, reply_to=None)
        assert telegram.visible()[0].text == text

    async def test_one_over_is_refused_without_a_request(self, channel: Telegram, telegram: FakeTelegram) -> None:
        with pytest.raises(PermanentError, match="4097 characters; Telegram takes at most 4096"):
            await channel.send(Message("x" * 4095 + "👩", "fr", None, "e", "k", "main", "closed"),
                               idempotency_key=KEY, reply_to=None)
        assert telegram.requests == []


class TestUndo:
    """Within 48 hours a post is deleted; after, it is edited to say it was withdrawn, and the log says so."""

    async def test_recent_post_is_deleted(self, channel: Telegram, telegram: FakeTelegram) -> None:
        sent = await post(channel)
        await channel.delete(sent.remote_id)
        assert telegram.visible() == []

    async def test_old_post_is_withdrawn_by_edit(self, channel: Telegram, telegram: FakeTelegram) -> None:
        sent = await post(channel)
        old = telegram.age(sent.remote_id, hours=49)
        with capture_logs() as logs:
            await channel.delete(old)
        (stored,) = telegram.visible()
        assert stored.text == WITHDRAWN["fr"] and stored.edits == [message().text]
        assert "deletemessage" not in [m for _, m, _ in telegram.requests]
        assert [entry["event"] for entry in logs] == ["telegram_withdrawn"]
        assert logs[0]["remote_id"] == old and logs[0]["age_hours"] == 49.0

    async def test_refusal_at_the_edge_of_the_window_withdraws(
        self, channel: Telegram, telegram: FakeTelegram
    ) -> None:
        """Our record says 47.5 h, Telegram's clock says past 48 h: it refuses, and the post is withdrawn."""
        sent = await post(channel)
        telegram.age(sent.remote_id, hours=48.2)
        ours = f"{CHAT_ID}:{parse_remote_id(sent.remote_id)[1]}:{int(time.time() - 47.5 * 3600)}"
        await channel.delete(ours)
        assert [m.text for m in telegram.visible()] == [WITHDRAWN["fr"]]

    async def test_refusal_of_a_young_post_means_missing_rights(
        self, channel: Telegram, telegram: FakeTelegram
    ) -> None:
        sent = await post(channel)
        telegram.script("cant_delete")
        with pytest.raises(PermanentError, match="needs the right to delete messages"):
            await channel.delete(sent.remote_id)
        assert len(telegram.visible()) == 1

    async def test_repeated_undo_is_quiet(self, channel: Telegram, telegram: FakeTelegram) -> None:
        sent = await post(channel)
        await channel.delete(sent.remote_id)
        await channel.delete(sent.remote_id)  # "message to delete not found": already done
        old = await post(channel)
        aged = telegram.age(old.remote_id, hours=60)
        await channel.delete(aged)
        await channel.delete(aged)  # "message is not modified": already withdrawn
        assert [m.text for m in telegram.visible()] == [WITHDRAWN["fr"]]

    async def test_foreign_remote_id_is_refused(self, channel: Telegram) -> None:
        with pytest.raises(PermanentError, match="not a Telegram message id made by statusd"):
            await channel.delete("12345")


class TestErrors:
    """Telegram's answers become TransientError or PermanentError with what an operator should do."""

    async def test_flood_carries_retry_after(self, channel: Telegram, telegram: FakeTelegram) -> None:
        telegram.script("flood")
        with pytest.raises(TransientError, match="Too Many Requests: retry after 5") as caught:
            await post(channel)
        assert caught.value.retry_after == 5.0 and telegram.visible() == []

    @pytest.mark.parametrize(("mode", "words"), [
        ("unauthorized", "bot token from environment variable TEST_TELEGRAM_TOKEN is not valid"),
        ("kicked", "bot was kicked"),
        ("not_member", "add the bot to the chat as an administrator"),
        ("migrated", "set chat_id to '-1001987654321'"),
    ])
    async def test_permanent(self, channel: Telegram, telegram: FakeTelegram, mode: str, words: str) -> None:
        telegram.script(mode)
        with pytest.raises(PermanentError, match=words) as caught:
            await post(channel)
        assert TOKEN not in str(caught.value)

    async def test_wrong_token(self, make_channel: MakeChannel, telegram: FakeTelegram) -> None:
        with pytest.raises(PermanentError, match="Unauthorized") as caught:
            await post(make_channel(telegram.url, token="1:wrong"))
        assert "1:wrong" not in str(caught.value)

    async def test_chat_not_found(self, make_channel: MakeChannel, telegram: FakeTelegram) -> None:
        with pytest.raises(PermanentError, match=r"chat not found.*check chat_id"):
            await post(make_channel(telegram.url, chat="-100999"))

    async def test_bad_chat_id_named(self, make_channel: MakeChannel, telegram: FakeTelegram) -> None:
        with pytest.raises(PermanentError, match="chat_id 'biblio' of channel tg"):
            await post(make_channel(telegram.url, chat="biblio"))

    @pytest.mark.parametrize("mode", ["server_error", "bad_gateway"])
    async def test_server_errors_are_transient(self, channel: Telegram, telegram: FakeTelegram, mode: str) -> None:
        telegram.script(mode)
        with pytest.raises(TransientError):
            await post(channel)

    async def test_dropped_answer_is_transient(self, channel: Telegram, telegram: FakeTelegram) -> None:
        telegram.script("drop_after_post")
        with pytest.raises(TransientError, match="cannot reach the Bot API for sendMessage") as caught:
            await post(channel)
        assert TOKEN not in str(caught.value)

    async def test_refused_and_silent_ports(self, make_channel: MakeChannel) -> None:
        with pytest.raises(TransientError, match="cannot reach"):
            await post(make_channel(f"http://127.0.0.1:{refusing_port()}"))
        with blackhole() as port, pytest.raises(TransientError, match=r"did not answer sendMessage within 0\.5 s"):
            await post(make_channel(f"http://127.0.0.1:{port}"))

    def test_recorded_flood_body(self) -> None:
        status, body = recorded("flood")
        with pytest.raises(TransientError) as caught:
            answer(status, {}, json.dumps(body), "post")
        assert caught.value.retry_after == 5.0

    @given(status=st.integers(100, 599), body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
            st.sampled_from(["ok", "result", "error_code", "description", "parameters", "retry_after",
                             "migrate_to_chat_id", "message_id", "chat", "date"]), inner, max_size=5),
        max_leaves=12))
    def test_any_answer_is_a_result_or_a_channel_error(self, status: int, body: object) -> None:
        try:
            result = answer(status, {"Retry-After": "x"}, json.dumps(body), "post")
        except (TransientError, PermanentError) as err:
            assert str(err) and (not isinstance(err, TransientError) or err.retry_after is None
                                 or 0 < err.retry_after <= 86400)
        else:
            assert isinstance(result, dict)

    def test_retry_after_header_when_the_body_is_not_json(self) -> None:
        with pytest.raises(TransientError) as caught:
            answer(429, {"Retry-After": "7"}, "<html>slow down</html>", "post")
        assert caught.value.retry_after == 7.0


class TestStandaloneFake:
    """The fake runs as its own process, for daemons and benches: it posts, shows, and switches modes."""

    async def test_post_switch_and_read_back(self, make_channel: MakeChannel) -> None:
        with standalone("telegram", "--token", TOKEN) as (url,):
            channel = make_channel(url)
            await post(channel)
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{url}/_fake/mode", json={"mode": "flood"}) as answer:
                    assert (await answer.json())["mode"] == "flood"
                with pytest.raises(TransientError):
                    await post(channel)
                async with session.get(f"{url}/_fake/messages") as answer:
                    assert [m["text"] for m in await answer.json()] == [message().text]


def _bare(url: str) -> Telegram:
    """A channel without a config file, for property tests that make many (the token from a file)."""
    TOKEN_FILE.write_text(TOKEN, encoding="utf-8")
    config = ChannelConfig(name="tg", type="telegram", language="fr", sites=None, events=None,
                           options=Telegram.Options(token=Secret("file", str(TOKEN_FILE)), chat_id=str(CHAT_ID),
                                                    api_url=Url(url), timeout=Duration(2.0)),
                           secrets={"token": Secret("file", str(TOKEN_FILE))})
    return Telegram(config, DeliveryConfig())
