"""Crashes and stalls while the same words are posted again and again: each post exists once.

The daemon is killed while a post is made but unanswered, or the platform stalls past the
channel's timeout after making it; the updates alternate between two wordings, so the
same text is posted many times. Reading every platform back afterwards finds each update
once: no duplicate, no loss. Mastodon runs as each kind of Mastodon-API server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from statusd.outbox.store import SENT, WAITING
from tests.conftest import WriteConfig
from tests.faults.audit import read_outbox
from tests.support.daemon import Daemon
from tests.support.fakes.common import Fake
from tests.support.fakes.facebook import FakeGraph
from tests.support.fakes.mastodon import SHAPES, MastodonServer
from tests.support.fakes.x import Credentials, XServer, make_tls
from tests.support.waiting import until

pytestmark = pytest.mark.faults

KEYS = Credentials()
ENV = {
    "MASTODON_TOKEN": "fake-token",
    "X_CONSUMER_KEY": KEYS.consumer_key, "X_CONSUMER_SECRET": KEYS.consumer_secret,
    "X_ACCESS_TOKEN": KEYS.access_token, "X_ACCESS_SECRET": KEYS.access_token_secret,
    "FB_TOKEN": FakeGraph.token,
}
TIMEOUT = 1.0  # the channel's; a stall lasts longer
# Each update: how its send goes wrong ("crash": the daemon is killed once the post exists and
# before its answer; "stall": the answer comes after the channel gave up; "ok").
PLAN = ("crash", "stall", "ok", "stall", "crash", "ok", "crash", "stall")


@dataclass
class Platform:
    """One fake platform, the channel that posts to it, and how to read it back."""

    fake: Fake
    channel: str
    crash_mode: str
    texts: Callable[[], list[str]]  # the live posts' texts, oldest first


async def start(kind: str, directory: Path) -> Platform:
    """The fake for `kind` ("mastodon-SHAPE", "x", "facebook"), started, with its channel line."""
    common = f"language: fr, timeout: {TIMEOUT:g}s"
    if kind.startswith("mastodon-"):
        server = MastodonServer(shape=kind.removeprefix("mastodon-"), max_characters=500)
        await server.start()
        return Platform(server, f"  social: {{type: mastodon, {common}, instance: '{server.url}',"
                                " token: {env: MASTODON_TOKEN}}", "accept_then_hang",
                        lambda: [str(p["text"]) for p in server.posts])
    if kind == "x":
        tls = make_tls(directory)
        xs = XServer(tls)
        await xs.start()
        return Platform(xs, f"  social: {{type: x, {common}, connect_to: '{xs.connect_to}', ca_file: '{tls.ca_file}',"
                            " consumer_key: {env: X_CONSUMER_KEY}, consumer_secret: {env: X_CONSUMER_SECRET},"
                            " access_token: {env: X_ACCESS_TOKEN}, access_token_secret: {env: X_ACCESS_SECRET}}",
                        "accept_then_hang", lambda: [str(p["text"]) for p in xs.posts])
    graph = FakeGraph()
    await graph.start()

    def texts() -> list[str]:
        live = [*graph.live_posts(), *(c for c in graph.comments if not c.deleted)]
        return [f"{p.message or ''}|{p.link or ''}" for p in sorted(live, key=lambda p: p.created)]

    return Platform(graph, f"  social: {{type: facebook, {common}, graph_url: '{graph.graph_url}',"
                           f" page_id: '{graph.page_id}', token: {{env: FB_TOKEN}}}}", "drop_after_post", texts)


def made(fake: Fake) -> int:
    """How many posts the platform ever made (deleted ones too)."""
    if isinstance(fake, MastodonServer):
        return len(fake.statuses)
    if isinstance(fake, XServer):
        return len(fake.tweets)
    assert isinstance(fake, FakeGraph)
    return len(fake.posts) + len(fake.comments)


def wording(i: int, kind: str) -> tuple[str, str]:
    """Update i's level and message: two wordings in turn, so texts repeat.

    X and Facebook refuse a text they already hold from this account (X 403, Graph #506),
    so there the wordings carry the update's number and the repeats are the retries.
    """
    numbered = "" if kind.startswith("mastodon") else f" (avis {i})"
    return ("closed", f"fr:Fermé : dégât des eaux &amp; coupure{numbered}.") if i % 2 == 0 else \
        ("limited", f"fr:Accès limité au rez-de-chaussée{numbered}.")


class TestRepeatedTextsThroughCrashesAndStalls:
    """Every update reaches its platform exactly once, whatever went wrong while it was sent."""

    @pytest.mark.parametrize("kind", [*(f"mastodon-{s}" for s in sorted(SHAPES)), "x", "facebook"])
    async def test_each_update_once(self, kind: str, write_config: WriteConfig, tmp_path: Path) -> None:
        platform = await start(kind, tmp_path / "tls")
        daemon = Daemon(write_config(platform.channel), tmp_path / "state", env=ENV)
        await asyncio.to_thread(daemon.start)
        try:
            for i, trouble in enumerate(PLAN):
                await self._update(daemon, platform, kind, i, trouble)
            await until(lambda: not read_outbox(daemon.state_dir).waiting(), "every delivery done", timeout=20)
            await asyncio.sleep(TIMEOUT)  # a late duplicate would show by now
            outbox = read_outbox(daemon.state_dir)
        finally:
            await asyncio.to_thread(daemon.kill)
            await platform.fake.stop()
        texts = platform.texts()
        sent = [d for d in outbox.deliveries() if d.state == SENT]
        problems = [f"{d.event_id}: {d.state} ({d.last_error})" for d in outbox.deliveries() if d.state != SENT]
        assert problems == [] and len(sent) == len(PLAN), problems
        assert len({d.remote_id for d in sent}) == len(PLAN), "one post claimed twice"
        assert len(texts) == len(PLAN), f"{len(texts)} posts for {len(PLAN)} updates:\n" + "\n".join(texts)
        if kind.startswith("mastodon"):
            assert [texts[i % 2] for i in range(len(PLAN))] == texts and texts[0] != texts[1]

    async def _update(self, daemon: Daemon, platform: Platform, kind: str, i: int, trouble: str) -> None:
        fake, before = platform.fake, made(platform.fake)
        if trouble == "crash":
            fake.mode = platform.crash_mode
        elif trouble == "stall":
            fake.delay = TIMEOUT * 2
        level, text = wording(i, kind)
        await asyncio.to_thread(daemon.cli, "set", "main", level, "-m", text)
        await until(lambda: made(fake) > before, f"update {i} ({trouble}) reached the platform", timeout=10)
        if trouble == "crash":
            await asyncio.to_thread(daemon.kill)
            fake.mode = "ok"
            await asyncio.to_thread(daemon.start)
        elif trouble == "stall":
            await asyncio.sleep(TIMEOUT)  # the channel gives up; the platform answers later
            fake.delay = 0.0
        await until(lambda: _settled(daemon), f"update {i} ({trouble}) recorded", timeout=15)


def _settled(daemon: Daemon) -> bool:
    outbox = read_outbox(daemon.state_dir)
    return bool(outbox.events) and not any(d.state in WAITING for d in outbox.deliveries())
