"""SIGKILL while posts are in flight to every platform: after a restart each post exists once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import WriteConfig
from tests.daemon import Daemon
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.facebook import FakeGraph
from tests.fakes.mastodon import MastodonServer
from tests.fakes.x import Credentials, Tls, XServer, make_tls
from tests.waiting import until

pytestmark = pytest.mark.faults

KEYS = Credentials()
ENV = {
    "MASTODON_TOKEN": "fake-token",
    "X_CONSUMER_KEY": KEYS.consumer_key, "X_CONSUMER_SECRET": KEYS.consumer_secret,
    "X_ACCESS_TOKEN": KEYS.access_token, "X_ACCESS_SECRET": KEYS.access_token_secret,
    "FB_TOKEN": FakeGraph.token, "BSKY_PASSWORD": "app-pass-1234",
}


@dataclass
class Platforms:
    mastodon: MastodonServer
    x: XServer
    facebook: FakeGraph
    bluesky: FakeBluesky

    def channels(self, tls: Tls) -> str:
        return "\n".join([
            f"  mastodon: {{type: mastodon, language: fr, instance: '{self.mastodon.url}',"
            " token: {env: MASTODON_TOKEN}, timeout: 2s}",
            f"  x: {{type: x, language: en, connect_to: '{self.x.connect_to}', ca_file: '{tls.ca_file}',"
            " consumer_key: {env: X_CONSUMER_KEY}, consumer_secret: {env: X_CONSUMER_SECRET},"
            " access_token: {env: X_ACCESS_TOKEN}, access_token_secret: {env: X_ACCESS_SECRET}, timeout: 2s}",
            f"  facebook: {{type: facebook, language: fr, graph_url: '{self.facebook.graph_url}',"
            f" page_id: '{self.facebook.page_id}', token: {{env: FB_TOKEN}}, timeout: 2s}}",
            f"  bluesky: {{type: bluesky, language: en, service: '{self.bluesky.url}',"
            f" handle: {self.bluesky.handle}, app_password: {{env: BSKY_PASSWORD}}, timeout: 2s}}",
        ])

    def counts(self) -> dict[str, int]:
        return {"mastodon": len(self.mastodon.posts), "x": len(self.x.posts),
                "facebook": len(self.facebook.live_posts()) + len([c for c in self.facebook.comments if not c.deleted]),
                "bluesky": len(self.bluesky.posts)}


@pytest.fixture
async def platforms(tmp_path: Path) -> AsyncIterator[tuple[Platforms, Tls]]:
    tls = make_tls(tmp_path / "tls")
    fakes = Platforms(MastodonServer(), XServer(tls), FakeGraph(), FakeBluesky())
    for fake in (fakes.mastodon, fakes.x, fakes.facebook, fakes.bluesky):
        await fake.start()
    yield fakes, tls
    for fake in (fakes.mastodon, fakes.x, fakes.facebook, fakes.bluesky):
        await fake.stop()


class TestCrashMidSend:
    """Posts made but unanswered when the daemon dies are found, or repeated with their key, never doubled."""

    async def test_each_post_exists_once_on_each_platform(
        self, write_config: WriteConfig, tmp_path: Path, platforms: tuple[Platforms, Tls]
    ) -> None:
        fakes, tls = platforms
        # Started from a thread: the fakes answer from this test's event loop, which must keep running.
        daemon = await asyncio.to_thread(Daemon(write_config(fakes.channels(tls)), tmp_path / "state", env=ENV).start)
        try:
            await until(lambda: fakes.bluesky.session_creates == 1, "Bluesky session at start", timeout=10)
            fakes.mastodon.mode = "accept_then_hang"
            fakes.x.mode = "accept_then_hang"
            fakes.facebook.mode = "drop_after_post"
            fakes.bluesky.script("hang")
            await asyncio.to_thread(daemon.cli, "set", "main", "closed", "-m", "fr:Incendie : fermé.",
                                    "-m", "en:Fire: closed.")
            await until(lambda: len(fakes.mastodon.statuses) == 1 and len(fakes.x.tweets) == 1
                        and len(fakes.facebook.posts) == 1 and "com.atproto.repo.createRecord" in fakes.bluesky.calls,
                        "every platform reached", timeout=10)
            daemon.kill()
            for fake in (fakes.mastodon, fakes.x, fakes.facebook, fakes.bluesky):
                fake.mode = "ok"
            await asyncio.to_thread(daemon.start)
            await until(lambda: fakes.bluesky.posts != [], "Bluesky post after restart", timeout=10)
            await asyncio.to_thread(daemon.cli, "set", "main", "emergency", "-m", "fr:Évacuation.",
                                    "-m", "en:Evacuation.")
            await until(lambda: all(n == 2 for n in fakes.counts().values()), f"second update {fakes.counts()}", timeout=10)
            await asyncio.sleep(1.0)
            assert fakes.counts() == {"mastodon": 2, "x": 2, "facebook": 2, "bluesky": 2}
            # The second update answers the first on every platform with threads.
            first_toot, second_toot = fakes.mastodon.posts
            assert second_toot["in_reply_to_id"] == first_toot["id"]
            first_x, second_x = fakes.x.posts
            assert second_x["in_reply_to"] == first_x["id"]
            assert fakes.facebook.comments and fakes.facebook.comments[0].parent == fakes.facebook.posts[0].id
            assert fakes.bluesky.posts[1].record["reply"]["parent"]["uri"] == fakes.bluesky.posts[0].uri
            show = await asyncio.to_thread(daemon.cli, "show")
            assert "failed" not in show.stdout, show.stdout
        finally:
            daemon.kill()


class TestRateLimit:
    """A 429 pauses that account until its reset while every other account keeps posting."""

    async def test_one_account_paused_the_others_post(
        self, write_config: WriteConfig, tmp_path: Path, platforms: tuple[Platforms, Tls]
    ) -> None:
        fakes, tls = platforms
        fakes.mastodon.retry_after = 600
        fakes.mastodon.mode = "ratelimit"
        # Started from a thread: the fakes answer from this test's event loop, which must keep running.
        daemon = await asyncio.to_thread(Daemon(write_config(fakes.channels(tls)), tmp_path / "state", env=ENV).start)
        try:
            await asyncio.to_thread(daemon.cli, "set", "main", "closed", "-m", "fr:Fermé.", "-m", "en:Closed.")
            await until(lambda: len(fakes.x.posts) == len(fakes.facebook.posts) == len(fakes.bluesky.posts) == 1,
                        "the other accounts posted", timeout=10)
            show = (await asyncio.to_thread(daemon.cli, "show")).stdout
            assert "channel mastodon: paused until" in show
            assert fakes.mastodon.posts == []
            attempts = len(fakes.mastodon.attempts)
            await asyncio.sleep(1.5)
            assert len(fakes.mastodon.attempts) == attempts  # waits for the reset, no hammering
        finally:
            daemon.kill()


class TestCheckLive:
    """`statusd check --live` says who each account posts as, or exactly why it cannot."""

    async def test_who_each_account_posts_as(
        self, write_config: WriteConfig, tmp_path: Path, platforms: tuple[Platforms, Tls]
    ) -> None:
        fakes, tls = platforms
        config = write_config(fakes.channels(tls))
        env = {**ENV, "X_ACCESS_SECRET": "not-the-right-secret-9f2c", "FB_TOKEN": "expired-token-31ab"}
        daemon = Daemon(config, tmp_path / "state", env=env)
        result = await asyncio.to_thread(daemon.cli, "check", "--live", check=False)
        lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}
        assert result.returncode == 1
        assert "posts as" in lines["mastodon"] and "@" in lines["mastodon"]
        assert "posts as" in lines["bluesky"] and fakes.bluesky.handle in lines["bluesky"]
        assert "CANNOT POST" in lines["x"]
        assert "CANNOT POST" in lines["facebook"]
        for secret in ("not-the-right-secret-9f2c", "expired-token-31ab", "app-pass-1234", "fake-token"):
            assert secret not in result.stdout + result.stderr
