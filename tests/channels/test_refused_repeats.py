"""X and Facebook refuse a text they already hold: closed → open → closed still ends on "closed".

The second "closed" has the very words of the first, which X (403 "duplicate content") and
the Graph API (#506) refuse. The channel's last post about the target says "open", so the
worker posts the update again with the time of the change added (labels.yaml's `again`):
read back from the fakes, each platform shows the latest status last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from statusd.announcer import Announcer
from statusd.channels.base import Channel
from statusd.channels.facebook import FacebookPage
from statusd.channels.x import X
from statusd.compose.composer import Composer
from statusd.config.load import Config
from statusd.events import Event, EventKind
from statusd.loading import load
from statusd.model import Level, Target
from statusd.outbox.facade import AsyncStore
from statusd.outbox.sqlite import SqliteStore
from statusd.outbox.store import SENT
from statusd.outbox.worker import Worker
from tests.conftest import WriteConfig
from tests.outbox.test_outbox_promises import POLICY, drain
from tests.support.channels import ChannelBuilder
from tests.support.fakes.facebook import FakeGraph
from tests.support.fakes.x import Credentials, XServer, make_tls

pytestmark = pytest.mark.e2e

KEYS = Credentials()
ENV = {"X_CONSUMER_KEY": KEYS.consumer_key, "X_CONSUMER_SECRET": KEYS.consumer_secret,
       "X_ACCESS_TOKEN": KEYS.access_token, "X_ACCESS_SECRET": KEYS.access_token_secret,
       "FB_TOKEN": FakeGraph.token}
# 09:30, 09:45 and 10:10 in Paris (the site's time zone).
CHANGES = ((Level.CLOSED, Level.OPEN, 8, 30), (Level.OPEN, Level.CLOSED, 8, 45), (Level.CLOSED, Level.OPEN, 9, 10))
MESSAGE = {"en": "Water leak on the ground floor."}


class Setup:
    """The fakes, the daemon's own pieces (store, composer, announcer) and both channels."""

    def __init__(self, config: Config, store: AsyncStore, channels: dict[str, Channel],
                 xs: XServer, graph: FakeGraph) -> None:
        self.config, self.store, self.channels, self.xs, self.graph = config, store, channels, xs, graph
        self.announcer = Announcer(config, store, Composer(config), channels)

    def x_texts(self) -> list[str]:
        return [str(post["text"]) for post in self.xs.posts]

    def facebook_texts(self) -> list[str]:
        """The page's posts and the comments under them (a thread's updates), oldest first."""
        live = [*self.graph.live_posts(), *(c for c in self.graph.comments if not c.deleted)]
        return [post.message or "" for post in sorted(live, key=lambda p: p.created)]

    async def change(self, level: Level, previous: Level, hour: int, minute: int) -> Event:
        at = datetime(2026, 12, 2, hour, minute, tzinfo=UTC)
        event = Event(EventKind.STATUS_CHANGED, Target.parse("main"), level, previous,
                      MESSAGE if level is not Level.OPEN else {}, at, "alice", f"r{hour}{minute}")
        await self.announcer.announce([event])
        for channel in self.channels.values():
            await drain(Worker(self.store, channel, POLICY))
        return event


@pytest.fixture
async def setup(tmp_path: Path, write_config: WriteConfig, channel_builder: ChannelBuilder,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Setup]:
    tls = make_tls(tmp_path / "tls")
    async with XServer(tls) as xs, FakeGraph() as graph:
        path = write_config(
            f"  x: {{type: x, language: en, timeout: 1s, connect_to: '{xs.connect_to}', ca_file: '{tls.ca_file}',"
            " consumer_key: {env: X_CONSUMER_KEY}, consumer_secret: {env: X_CONSUMER_SECRET},"
            " access_token: {env: X_ACCESS_TOKEN}, access_token_secret: {env: X_ACCESS_SECRET}}\n"
            f"  facebook: {{type: facebook, language: en, timeout: 1s, graph_url: '{graph.graph_url}',"
            f" page_id: '{graph.page_id}', token: {{env: FB_TOKEN}}}}")
        channels: dict[str, Channel] = {"x": channel_builder.build(path, "x", X, ENV),
                                        "facebook": channel_builder.build(path, "facebook", FacebookPage, ENV)}
        for variable, value in ENV.items():
            monkeypatch.setenv(variable, value)
        store = AsyncStore(SqliteStore(tmp_path / "statusd.db"))
        try:
            yield Setup(load(path), store, channels, xs, graph)
        finally:
            await store.close()


class TestARefusedRepeatEndsOnTheLatest:
    """closed → open → closed with the same words: X and Facebook both show "closed" last."""

    async def test_closed_open_closed(self, setup: Setup) -> None:
        events = [await setup.change(*change) for change in CHANGES]
        for texts in (setup.x_texts(), setup.facebook_texts()):
            assert len(texts) == 3, texts
            first, reopened, last = texts
            assert "closed" in first and "open" in reopened
            assert last != first and last.startswith(first.split("\n\n")[0])
            assert "Water leak on the ground floor. (update at 10:10\u202fAM)" in last
        deliveries = {d.channel: d for _, _, ds in setup.store.sync.recent(10) for d in ds
                      if d.event_id == events[-1].id}
        assert {d.state for d in deliveries.values()} == {SENT}
        assert deliveries["x"].remote_id == setup.xs.posts[-1]["id"]

    async def test_the_same_status_again_is_not_posted(self, setup: Setup) -> None:
        """Nothing said for nothing still holds: closed, then closed with the same words again."""
        await setup.change(*CHANGES[0])
        await setup.change(Level.CLOSED, Level.CLOSED, 9, 0)
        assert len(setup.x_texts()) == 1 and len(setup.facebook_texts()) == 1

    async def test_a_variant_in_doubt_is_looked_up_not_posted_twice(self, setup: Setup) -> None:
        """The variant was made but its answer lost: the look-up finds it, no second post."""
        await setup.change(*CHANGES[0])
        await setup.change(*CHANGES[1])
        setup.xs.mode = "accept_then_hang"
        event = await setup.change(*CHANGES[2])
        setup.xs.mode = "ok"
        for channel in setup.channels.values():
            await drain(Worker(setup.store, channel, POLICY))
        texts = setup.x_texts()
        assert len(texts) == 3 and "(update at 10:10\u202fAM)" in texts[-1], texts
        (delivery,) = [d for _, _, ds in setup.store.sync.recent(10) for d in ds
                       if d.event_id == event.id and d.channel == "x"]
        assert (delivery.state, delivery.remote_id) == (SENT, setup.xs.posts[-1]["id"])
