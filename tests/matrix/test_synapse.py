"""The Matrix channel against a real Synapse on 127.0.0.1: post, thread, redact, retry without a second event."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.matrix import KEY_FIELD, Matrix
from statusd.compose.message import Message
from statusd.config.options import Duration, Url
from statusd.config.types import ChannelConfig, DeliveryConfig, Secret
from tests.fakes.common import drop
from tests.matrix.conftest import fresh_room_name, join
from tests.matrix.server import Account, Synapse
from tests.support import channels as support
from tests.support.channels import LINK, TEXT, ChannelBuilder, linked

pytestmark = pytest.mark.e2e

ENV = "TEST_MATRIX_TOKEN"
CHANNEL = """\
  mx:
    type: matrix
    language: fr
    homeserver: {url}
    room: '{room}'
    token: {{env: {env}}}
    timeout: 5s
"""

MakeChannel = Callable[..., Matrix]


@pytest.fixture(scope="module")
def bot_token_file(bot: Account, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "matrix-token"
    path.write_text(bot.access_token, encoding="utf-8")
    return path


@pytest.fixture
def make_channel(write_config: Callable[..., Path], channel_builder: ChannelBuilder,
                 synapse: Synapse, bot: Account) -> MakeChannel:
    """Matrix channels built from a statusd.yaml, as the daemon builds them; closed after the test."""

    def make(room: str, *, token: str | None = None, url: str | None = None) -> Matrix:
        path = write_config(channels=CHANNEL.format(url=url or synapse.url, room=room, env=ENV))
        return channel_builder.build(path, "mx", Matrix, {ENV: token or bot.access_token})

    return make


@pytest.fixture
def channel(make_channel: MakeChannel, room: tuple[str, str]) -> Matrix:
    return make_channel(room[0])


def message(text: str = TEXT) -> Message:
    return support.message(linked(text, LINK))


def notices(synapse: Synapse, reader: Account, room_id: str) -> list[dict[str, Any]]:
    """The room's messages as the patron sees them, oldest first."""
    return synapse.messages(reader, room_id)


class TestPost:
    """A message becomes one m.notice with a plain and an HTML body, in the room the alias names."""

    async def test_one_notice(self, channel: Matrix, synapse: Synapse, reader: Account,
                              room: tuple[str, str]) -> None:
        sent = await channel.send(message(), idempotency_key="k-post", reply_to=None)
        (event,) = notices(synapse, reader, room[1])
        assert event["event_id"] == sent.remote_id and event["sender"] == "@librarybot:localhost"
        content = event["content"]
        assert (content["msgtype"], content["body"], content["format"]) == (
            "m.notice", message().text, "org.matrix.custom.html")
        assert f'<a href="{LINK}">{LINK}</a>' in content["formatted_body"]
        assert content[KEY_FIELD] == "k-post"
        assert sent.url == f"https://matrix.to/#/{room[1]}/{quote(sent.remote_id, safe='$')}"

    async def test_whoami(self, channel: Matrix, room: tuple[str, str]) -> None:
        assert await channel.whoami() == f"Matrix user @librarybot:localhost in room {room[0]} ({room[1]})"

    @settings(max_examples=8)
    @given(text=st.text(st.characters(codec="utf-8"), min_size=1, max_size=200))
    async def test_hostile_text_arrives_as_typed(self, text: str, synapse: Synapse, bot: Account,
                                                 reader: Account, bot_token_file: Path) -> None:
        room_id = synapse.create_room(bot, fresh_room_name())
        join(synapse, reader, room_id)
        channel = Matrix(_config(synapse.url, room_id, bot_token_file), DeliveryConfig())
        try:
            await channel.send(Message(text, "fr", None, "e", "k", "main", "closed"),
                               idempotency_key=f"hostile-{text}", reply_to=None)
        finally:
            await channel.close()
        (event,) = notices(synapse, reader, room_id)
        assert event["content"]["body"] == text
        assert "<script" not in event["content"]["formatted_body"].lower()


class TestThread:
    """Updates are m.thread events under the first post, each answering the one before."""

    async def test_thread_of_three(self, channel: Matrix, synapse: Synapse, reader: Account,
                                   room: tuple[str, str]) -> None:
        root = await channel.send(message(), idempotency_key="t-1", reply_to=None)
        second = await channel.send(message("Toujours fermé."), idempotency_key="t-2",
                                    reply_to=Reply(root.remote_id, root.remote_id))
        third = await channel.send(message("Réouverture demain."), idempotency_key="t-3",
                                   reply_to=Reply(second.remote_id, root.remote_id))
        events = {e["event_id"]: e for e in notices(synapse, reader, room[1])}
        for update, parent in ((second, root), (third, second)):
            relation = events[update.remote_id]["content"]["m.relates_to"]
            assert relation["rel_type"] == "m.thread" and relation["event_id"] == root.remote_id
            assert relation["m.in_reply_to"] == {"event_id": parent.remote_id}
        path = f"/_matrix/client/v1/rooms/{quote(room[1])}/relations/{quote(root.remote_id)}/m.thread"
        thread = synapse.call("GET", path, token=reader.access_token)["chunk"]
        assert {e["event_id"] for e in thread} == {second.remote_id, third.remote_id}
        summary = events[root.remote_id]["unsigned"]["m.relations"]["m.thread"]
        assert summary["count"] == 2


class TestRedact:
    """Undo redacts the post: patrons see it emptied; undoing twice is harmless."""

    async def test_redacted_for_the_reader(self, channel: Matrix, synapse: Synapse, reader: Account,
                                           room: tuple[str, str]) -> None:
        sent = await channel.send(message(), idempotency_key="r-1", reply_to=None)
        await channel.delete(sent.remote_id)
        await channel.delete(sent.remote_id)
        (event,) = notices(synapse, reader, room[1])
        assert event["event_id"] == sent.remote_id
        assert event["content"] == {} and event["unsigned"]["redacted_because"]["content"]["reason"] == "withdrawn"


class TestNoSecondEvent:
    """The same idempotency key is the same event: on a plain retry, after a lost answer, after a kill."""

    async def test_retry_gets_the_first_event(self, channel: Matrix, synapse: Synapse, reader: Account,
                                              room: tuple[str, str]) -> None:
        first = await channel.send(message(), idempotency_key="same", reply_to=None)
        again = await channel.send(message(), idempotency_key="same", reply_to=None)
        assert again.remote_id == first.remote_id
        assert [e["event_id"] for e in notices(synapse, reader, room[1])] == [first.remote_id]

    async def test_retry_after_a_lost_answer(self, make_channel: MakeChannel, synapse: Synapse,
                                             reader: Account, room: tuple[str, str]) -> None:
        async with _answer_dropping_proxy(synapse.url) as proxy_url:
            lossy = make_channel(room[0], url=proxy_url)
            with pytest.raises(TransientError, match="cannot reach the homeserver"):
                await lossy.send(message(), idempotency_key="lost", reply_to=None)
        (made,) = notices(synapse, reader, room[1])  # the homeserver did take it
        retried = await make_channel(room[0]).send(message(), idempotency_key="lost", reply_to=None)
        assert retried.remote_id == made["event_id"]
        assert len(notices(synapse, reader, room[1])) == 1

    async def test_retry_after_the_homeserver_is_killed(self, make_channel: MakeChannel, synapse: Synapse,
                                                        reader: Account, room: tuple[str, str]) -> None:
        first = await make_channel(room[0]).send(message(), idempotency_key="killed", reply_to=None)
        synapse.kill()  # SIGKILL: its in-memory transaction cache is gone
        synapse.start()
        # A restarted daemon: a new channel, a new connection, the same key.
        retried = await make_channel(room[0]).send(message(), idempotency_key="killed", reply_to=None)
        assert retried.remote_id == first.remote_id
        assert [e["event_id"] for e in notices(synapse, reader, room[1])] == [first.remote_id]


class TestFind:
    """Past the homeserver's memory of transaction ids, the room is read back for the delivery's key."""

    async def test_finds_its_own_event(self, channel: Matrix) -> None:
        sent = await channel.send(message(), idempotency_key="find-me", reply_to=None)
        assert await channel.find(message(), idempotency_key="find-me") == Sent(sent.remote_id, sent.url)
        assert await channel.find(message(), idempotency_key="find-me", exclude=frozenset({sent.remote_id})) is None
        assert await channel.find(message(), idempotency_key="never-sent") is None


class TestRefusals:
    """A wrong token, an unknown room or one the bot may not enter is a PermanentError saying what to do."""

    async def test_wrong_token(self, make_channel: MakeChannel, room: tuple[str, str]) -> None:
        with pytest.raises(PermanentError, match=r"M_UNKNOWN_TOKEN.*log the bot in again") as caught:
            await make_channel(room[0], token="syt_wrong_token_0000").send(message(), idempotency_key="x",
                                                                             reply_to=None)
        assert "syt_wrong" not in str(caught.value)

    async def test_unknown_alias(self, make_channel: MakeChannel) -> None:
        with pytest.raises(PermanentError, match="no such room"):
            await make_channel("#nowhere:localhost").open()

    async def test_private_room_not_invited(self, make_channel: MakeChannel, synapse: Synapse,
                                            reader: Account) -> None:
        private = synapse.call("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"},
                               reader.access_token)["room_id"]
        with pytest.raises(PermanentError, match=r"M_FORBIDDEN.*invite the bot"):
            await make_channel(private).open()


def _config(url: str, room: str, token_file: Path) -> ChannelConfig:
    """A ChannelConfig without a statusd.yaml (the property test makes many channels)."""
    return ChannelConfig(name="mx", type="matrix", language="fr", sites=None, events=None,
                         options=Matrix.Options(homeserver=Url(url), token=Secret("file", str(token_file)),
                                                room=room, timeout=Duration(5.0)),
                         secrets={"token": Secret("file", str(token_file))})


class _Proxy:
    """Forwards each request to the homeserver, then drops the connection instead of answering."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with aiohttp.ClientSession() as session, session.request(
                request.method, f"{self.upstream}{request.path_qs}", data=body, headers=headers) as answer:
            await answer.read()
            if request.method == "PUT":
                return drop(request)  # the event is made; its answer is lost
            return web.Response(status=answer.status, body=await answer.read(), content_type="application/json")


@asynccontextmanager
async def _answer_dropping_proxy(upstream: str) -> AsyncIterator[str]:
    """A proxy in front of the homeserver that loses the answers to PUTs; its URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _Proxy(upstream).handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
