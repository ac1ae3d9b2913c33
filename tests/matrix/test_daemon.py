"""The daemon with Telegram (fake Bot API), Matrix (real Synapse) and Apprise (json://) channels, end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import WriteConfig
from tests.matrix.server import Account, Synapse
from tests.support.daemon import Daemon
from tests.support.fakes.common import drop
from tests.support.fakes.telegram import CHAT_ID, FakeTelegram
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

TG_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


class Proxy:
    """In front of Synapse. "pass" forwards; "hold" forwards a send, then holds its answer until "pass"."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.released = asyncio.Event()
        self.sends = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with aiohttp.ClientSession() as session, session.request(
                request.method, f"{self.upstream}{request.path_qs}", data=body, headers=headers) as answer:
            data = await answer.read()
        if "/send/" in request.path:
            self.sends += 1
            if self.mode == "hold":
                await self.released.wait()
                return drop(request)
        return web.Response(status=answer.status, body=data, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def stop(self) -> None:
        self.released.set()
        assert self.runner is not None
        await self.runner.cleanup()


class JsonReceiver:
    """What Apprise's json:// plugin delivered."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/notify", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.fixture
async def services(synapse: Synapse) -> AsyncIterator[tuple[FakeTelegram, Proxy, JsonReceiver]]:
    telegram, proxy, receiver = FakeTelegram(token=TG_TOKEN), Proxy(synapse.url), JsonReceiver()
    for service in (telegram, proxy, receiver):
        await service.start()
    yield telegram, proxy, receiver
    for service in (telegram, proxy, receiver):
        await service.stop()


async def start(write_config: WriteConfig, tmp_path: Path, services: tuple[FakeTelegram, Proxy, JsonReceiver],
                bot: Account, alias: str) -> Daemon:
    """The daemon started from a thread: the fakes in this loop must answer while it opens its channels."""
    telegram, proxy, receiver = services
    channels = "\n".join([
        f"  telegram: {{type: telegram, language: fr, chat_id: '{CHAT_ID}', api_url: '{telegram.url}',"
        " token: {env: TG_TOKEN}, timeout: 2s}",
        f"  matrix: {{type: matrix, language: en, homeserver: '{proxy.url}', room: '{alias}',"
        " token: {env: MX_TOKEN}, timeout: 30s}",
        "  apprise: {type: apprise, language: fr, url: {env: APPRISE_URL}, timeout: 2s}",
    ])
    env = {"TG_TOKEN": TG_TOKEN, "MX_TOKEN": bot.access_token,
           "APPRISE_URL": f"json://127.0.0.1:{receiver.port}/notify"}
    daemon = Daemon(write_config(channels), tmp_path / "state", env=env)
    return await asyncio.to_thread(daemon.start)


async def notices(synapse: Synapse, reader: Account, room_id: str) -> list[dict[str, Any]]:
    return await asyncio.to_thread(synapse.messages, reader, room_id)


async def count(synapse: Synapse, reader: Account, room_id: str) -> int:
    return len(await notices(synapse, reader, room_id))


def matrix_sent(daemon: Daemon) -> list[dict[str, Any]]:
    """The daemon's delivery_sent log entries for the Matrix channel."""
    entries = [json.loads(line) for line in daemon.logs().splitlines() if line.startswith("{")]
    return [e for e in entries if e.get("event") == "delivery_sent" and e.get("channel") == "matrix"]


class TestCrisis:
    """A closure, an update and an undo reach each channel as it allows: posts, threads, deletions."""

    async def test_post_thread_undo(self, write_config: WriteConfig, tmp_path: Path, synapse: Synapse,
                                    bot: Account, reader: Account, room: tuple[str, str],
                                    services: tuple[FakeTelegram, Proxy, JsonReceiver]) -> None:
        telegram, _, receiver = services
        daemon = await start(write_config, tmp_path, services, bot, room[0])
        try:
            await asyncio.to_thread(daemon.cli, "set", "main", "closed", "-m", "fr:Incendie : fermé.",
                                    "-m", "en:Fire: closed.")
            await until(lambda: len(telegram.visible()) == 1 and len(receiver.received) == 1, "first posts", 15)
            await until(lambda: len(synapse.messages(reader, room[1])) == 1, "first notice", 15, blocking=True)
            await asyncio.to_thread(daemon.cli, "set", "main", "emergency", "-m", "fr:Évacuation.",
                                    "-m", "en:Evacuation.")
            await until(lambda: len(telegram.visible()) == 2 and len(receiver.received) == 2, "updates", 15)
            await until(lambda: len(synapse.messages(reader, room[1])) == 2, "second notice", 15, blocking=True)
            first, second = telegram.visible()
            assert second.reply_to == first.message_id and "Évacuation" in second.text
            root, update = await notices(synapse, reader, room[1])
            assert update["content"]["m.relates_to"]["event_id"] == root["event_id"]
            assert "Fire" in root["content"]["body"] and update["content"]["msgtype"] == "m.notice"

            await asyncio.to_thread(daemon.cli, "undo")
            await until(lambda: len(telegram.visible()) == 1, "Telegram post deleted", 15)
            await until(lambda: synapse.messages(reader, room[1])[-1]["content"] == {}, "Matrix post redacted", 15,
                        blocking=True)
            assert telegram.visible()[0].message_id == first.message_id
            assert "channel_open_failed" not in daemon.logs()
            assert len(receiver.received) == 2  # Apprise cannot take anything back, and says nothing more
        finally:
            daemon.kill()


class TestKilledMidSend:
    """The daemon killed while Synapse holds the answer: after a restart the room has the notice once."""

    async def test_one_event_after_restart(self, write_config: WriteConfig, tmp_path: Path, synapse: Synapse,
                                           bot: Account, reader: Account, room: tuple[str, str],
                                           services: tuple[FakeTelegram, Proxy, JsonReceiver]) -> None:
        _, proxy, _ = services
        proxy.mode = "hold"
        daemon = await start(write_config, tmp_path, services, bot, room[0])
        try:
            await asyncio.to_thread(daemon.cli, "set", "main", "closed", "-m", "fr:Fermé.", "-m", "en:Closed.")
            await until(lambda: len(synapse.messages(reader, room[1])) == 1, "the notice made", 15, blocking=True)
            daemon.kill()  # its send is unanswered: the store says "sending"
            proxy.mode = "pass"
            proxy.released.set()
            await asyncio.to_thread(daemon.start)
            await until(lambda: proxy.sends >= 2, "the send repeated after the restart", 15)
            await until(lambda: matrix_sent(daemon) != [], "the delivery recorded as sent", 15)
            events = await notices(synapse, reader, room[1])
            assert len(events) == 1 and "Closed" in events[0]["content"]["body"]
            assert [entry["remote_id"] for entry in matrix_sent(daemon)] == [events[0]["event_id"]]
        finally:
            daemon.kill()
