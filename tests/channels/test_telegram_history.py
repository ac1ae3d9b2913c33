"""An undo on Telegram past its 48 hours edits the message to say it was withdrawn, and
`statusd history` says that is what happened, not that it was deleted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from statusd.channels.telegram import WITHDRAWN, WITHDRAWN_NOTE, Telegram
from statusd.commands.report import _print_updates
from statusd.compose.message import Message
from statusd.config.types import DeliveryConfig
from statusd.events import Event, EventKind
from statusd.model import Level, Target
from statusd.outbox.contract import Store
from statusd.outbox.sqlite import SqliteStore
from statusd.outbox.store import Planned
from statusd.outbox.worker import Worker
from tests.support.channels import ChannelBuilder
from tests.support.fakes.telegram import CHAT_ID, FakeTelegram
from tests.support.stores import facade

pytestmark = pytest.mark.unit

TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHANNEL = """\
  tg:
    type: telegram
    language: fr
    chat_id: '{chat}'
    token: {{env: TEST_TELEGRAM_HISTORY_TOKEN}}
    api_url: {url}
    timeout: 0.5s
"""


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def channel(write_config: Callable[..., Path], channel_builder: ChannelBuilder, telegram: FakeTelegram) -> Telegram:
    path = write_config(channels=CHANNEL.format(chat=CHAT_ID, url=telegram.url))
    return channel_builder.build(path, "tg", Telegram, {"TEST_TELEGRAM_HISTORY_TOKEN": TOKEN})


async def drain(worker: Worker, seconds: float = 5.0) -> None:
    task = asyncio.create_task(worker.run())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        if worker.store.sync.next_due("tg") is None and not worker.busy:
            break
    worker.stop()
    await asyncio.wait_for(task, 2.0)


async def posted_and_undone(tmp_path: Path, channel: Telegram, telegram: FakeTelegram, age_hours: float) -> Store:
    """A closure posted to Telegram, made `age_hours` old, then taken back through the outbox."""
    store = SqliteStore(tmp_path / "statusd.db")
    ev = Event(EventKind.STATUS_CHANGED, Target.parse("main"), Level.CLOSED, Level.OPEN, {"fr": "Fermé"},
               datetime.now(UTC), "alice", "r1")
    store.record([(ev, [Planned("tg", Message("Fermé.", "fr", None, ev.id, ev.kind.value, "main", "closed"))])],
                 {}, deadline=3600.0)
    worker = Worker(facade(store), channel, DeliveryConfig())
    await drain(worker)
    post = store.post_for(ev.id, "tg")
    assert post is not None and post.remote_id
    store.mark_sent(post.id, telegram.age(post.remote_id, hours=age_hours), post.remote_url)
    store.retract(ev.id, "bob", None, restore_target=False)
    await drain(Worker(facade(store), channel, DeliveryConfig()))  # a stopped worker stays stopped
    return store


class TestHistorySaysWithdrawn:
    """What history prints for an undo is what happened on Telegram."""

    async def test_old_post_is_edited_and_history_says_so(self, tmp_path: Path, channel: Telegram,
                                                          telegram: FakeTelegram,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
        store = await posted_and_undone(tmp_path, channel, telegram, age_hours=49)
        (message,) = telegram.visible()
        assert message.text == WITHDRAWN["fr"] and message.edits == ["Fermé."]
        _print_updates(store, 5, UTC)
        out = capsys.readouterr().out
        assert "tg (delete)" in out and WITHDRAWN_NOTE in out
        assert WITHDRAWN_NOTE == "withdrawn (edited; Telegram deletes only within 48 h)"

    async def test_young_post_is_deleted_and_history_says_so(self, tmp_path: Path, channel: Telegram,
                                                             telegram: FakeTelegram,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
        store = await posted_and_undone(tmp_path, channel, telegram, age_hours=1)
        assert telegram.visible() == []
        _print_updates(store, 5, UTC)
        out = capsys.readouterr().out
        assert "deleted   id" in out and "withdrawn" not in out


class TestFakeKeepsTelegramsLimits:
    """The fake refuses what Telegram refuses, in Telegram's words, whatever the client checks first."""

    async def test_delete_after_48_hours(self, telegram: FakeTelegram, channel: Telegram) -> None:
        import aiohttp

        sent = await channel.send(Message("Fermé.", "fr", None, "e", "status_changed", "main", "closed"),
                                  idempotency_key="k", reply_to=None)
        chat, message_id, _ = telegram.age(sent.remote_id, hours=48.01).split(":")
        async with aiohttp.ClientSession() as http, http.post(
                f"{telegram.url}/bot{TOKEN}/deleteMessage", json={"chat_id": chat, "message_id": message_id}) as a:
            body = await a.json()
        assert a.status == 400 and body["description"] == "Bad Request: message can't be deleted for everyone"

    async def test_4096_utf16_units(self, telegram: FakeTelegram) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            url = f"{telegram.url}/bot{TOKEN}/sendMessage"
            async with http.post(url, json={"chat_id": CHAT_ID, "text": "🔥" * 2048}) as at_limit:
                assert at_limit.status == 200
            async with http.post(url, json={"chat_id": CHAT_ID, "text": "🔥" * 2048 + "x"}) as over:
                body = await over.json()
        assert over.status == 400 and body["description"] == "Bad Request: message is too long"

    async def test_429_names_retry_after(self, telegram: FakeTelegram) -> None:
        import aiohttp

        telegram.script("flood")
        async with aiohttp.ClientSession() as http, http.post(
                f"{telegram.url}/bot{TOKEN}/sendMessage", json={"chat_id": CHAT_ID, "text": "x"}) as answer:
            body = await answer.json()
        assert answer.status == 429 and body["parameters"]["retry_after"] == 5
