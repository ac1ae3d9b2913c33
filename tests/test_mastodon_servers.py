"""The Mastodon channel, with the real Mastodon.py, on every kind of Mastodon-API server seen.

Stock Mastodon and two servers that are not Mastodon (tests/fakes/mastodon_shapes.py):
each limit read where the server keeps it, each text counted as the server counts it,
each refusal understood, each post found again after a send whose answer was lost.
"""

from __future__ import annotations

import asyncio
import html
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statusd.channels.base import PermanentError, Reply, TransientError
from statusd.channels.mastodon import Mastodon
from statusd.channels.mastodon_servers import comparable, comparable_content, is_stock, too_long
from statusd.compose.message import Message
from statusd.textfit import fit
from tests.fakes import refusing_port
from tests.fakes.common import standalone
from tests.fakes.mastodon import SHAPES, MastodonServer, Shape, mastodon_length, to_html
from tests.support import channels as support
from tests.support.channels import LENGTH_TABLE, ChannelBuilder

pytestmark = pytest.mark.e2e

TOKEN = "mastodon-access-token-for-tests-0123456789"
ENV = "TEST_MASTODON_TOKEN"
# A real hostname in public_url: the case that made every post too long on raw-counting servers.
LINK = "https://statut.bibliotheques-municipales-lyon.fr/sites/centrale#main"
CONFIG = """\
public_url: https://statut.bibliotheques-municipales-lyon.fr
languages: [fr]
alerts: {alerts}
sites:
  main:
    name: {{fr: Bibliothèque centrale}}
    timezone: Europe/Paris
channels:
  toot:
    type: mastodon
    language: fr
    instance: {instance}
    token: {{env: {env}}}
    timeout: 0.5s
"""
ALERTS = Path(__file__).resolve().parent.parent / "alerts"
LIMITS = {"mastodon": 500, "go": 300, "django": 5000}

MakeChannel = Callable[[MastodonServer | str], Mastodon]


def message(text: str, link: str | None = LINK) -> Message:
    return support.message(text, link=link, event_id="evt-1")


@pytest.fixture
def make_channel(tmp_path: Path, channel_builder: ChannelBuilder) -> MakeChannel:
    """Real channels built from statusd.yaml, pointed at a fake; closed after the test."""

    def make(server: MastodonServer | str) -> Mastodon:
        """A channel for the fake `server` (or a base URL)."""
        url = server if isinstance(server, str) else server.url
        path = tmp_path / "statusd.yaml"
        path.write_text(CONFIG.format(alerts=ALERTS, instance=url, env=ENV), encoding="utf-8")
        return channel_builder.build(path, "toot", Mastodon, {ENV: TOKEN})

    return make


@pytest.fixture(params=sorted(SHAPES))
async def server(request: pytest.FixtureRequest) -> AsyncIterator[MastodonServer]:
    async with MastodonServer(token=TOKEN, shape=request.param) as fake:
        yield fake


class TestWhatTheServerSays:
    """Each server's limit is read where it keeps it, and only stock Mastodon is trusted with keys."""

    async def test_limit_and_trust(self, make_channel: MakeChannel, server: MastodonServer) -> None:
        channel = make_channel(server)
        await channel.open()
        assert channel.max_chars == LIMITS[server.shape.name]
        assert channel.server.read
        assert channel.honours_idempotency is (server.shape.name == "mastodon")
        expected = "/api/v2/instance" if server.shape.v2_instance else "/api/v1/instance"
        assert channel.server.endpoint == expected

    async def test_v1_configuration_when_v2_is_missing(self, make_channel: MakeChannel) -> None:
        shape = replace(SHAPES["django"], v1_limit="configuration", default_max=300)
        async with MastodonServer(token=TOKEN, shape=shape) as fake:
            channel = make_channel(fake)
            await channel.open()
            assert (channel.max_chars, channel.server.endpoint) == (300, "/api/v1/instance")
            assert [a.path for a in fake.attempts] == ["/api/v2/instance/", "/api/v1/instance/"]

    async def test_no_limit_anywhere_keeps_the_default(self, make_channel: MakeChannel) -> None:
        async with MastodonServer(token=TOKEN, shape="django", max_characters=None) as fake:
            channel = make_channel(fake)
            await channel.open()
            assert (channel.max_chars, channel.server.read) == (500, False)

    @pytest.mark.parametrize(("version", "source", "stock"), [
        ("4.3.2", "https://github.com/mastodon/mastodon", True),
        ("4.4.0-beta.1", None, True),
        ("3.5.19", None, True),
        ("4.3.2+glitch", None, False),
        ("2.7.2 (compatible; Pleroma 2.7.0)", None, False),
        ("0.17.3", None, False),
        ("0.17.3+git-9c1a2f", None, False),
        ("4.3.2", "https://codeberg.org/someone/fork", False),
        ("takahe/0.11", None, False),
        ("", None, False),
    ])
    def test_which_versions_are_stock(self, version: str, source: str | None, stock: bool) -> None:
        assert is_stock(version, source) is stock


class TestLengthTable:
    """A message cut to the limit the channel read is accepted by the server at its own limit."""

    @pytest.mark.parametrize("row", sorted(LENGTH_TABLE))
    async def test_accepted_at_the_limit(self, make_channel: MakeChannel, server: MastodonServer,
                                         row: str) -> None:
        if server.shape.name == "django":
            server.max_characters = 300  # the same table, at a limit it reaches
        channel = make_channel(server)
        await channel.open()
        text = fit(LENGTH_TABLE[row] * 80, LINK, channel.max_chars, channel.measure)
        await channel.send(message(text), idempotency_key=f"row-{row}", reply_to=None)
        posts = [a for a in server.attempts if a.method == "POST"]
        assert len(posts) == 1, "refused first, so the count was wrong"
        assert server.posts[0]["text"] == server.shape.stored(text)
        counted = mastodon_length(text, raw_urls=server.shape.raw_urls, graphemes=server.shape.graphemes)
        limit = server.max_characters or 0
        # Short of the limit by no more than a word (and a short URL's 25 where it counts raw).
        slack = max(25, *(len(word) for word in LENGTH_TABLE[row].split())) + 2
        assert limit - slack <= counted <= limit and text.endswith(LINK)


class TestRefusedAsTooLong:
    """A server that still refuses a status as too long gets it shortened by the difference, once."""

    @pytest.mark.parametrize("too", ["422", "spoiler", "status"])
    async def test_shortened_and_posted(self, make_channel: MakeChannel, too: str) -> None:
        # Claims to be stock Mastodon (so URLs count 23 here) but counts them raw.
        shape = Shape(name="liar", raw_urls=True, too_long=too, default_max=300)
        async with MastodonServer(token=TOKEN, shape=shape) as fake:
            channel = make_channel(fake)
            await channel.open()
            text = fit("Fermé. Voir https://exemple.org/un/chemin/vraiment/tres/long/vers/la/page " * 9,
                       LINK, channel.max_chars, channel.measure)
            sent = await channel.send(message(text), idempotency_key="k", reply_to=None)
            (post,) = fake.posts
            assert post["id"] == sent.remote_id and post["text"].endswith(LINK)
            assert mastodon_length(post["text"], raw_urls=True) <= 300 < mastodon_length(text, raw_urls=True)
            assert [a.key for a in fake.attempts if a.method == "POST"] == ["k", "k.fit"]
            # After a restart, a look-up finds the shortened status as this message's.
            again = make_channel(fake)
            await again.open()
            assert await again.find(message(text), idempotency_key="k") == sent
            assert again.measure(LINK) == 23, "a look-up changes nothing in how texts are counted"
            # What was learned holds for the next message: it fits the first time.
            second = fit("Rouvert demain " * 40, LINK, channel.max_chars, channel.measure)
            await channel.send(message(second), idempotency_key="k2", reply_to=None)
            assert len([a for a in fake.attempts if a.method == "POST"]) == 3

    @pytest.mark.parametrize(("code", "detail", "limit"), [
        (422, "Validation failed: Text character limit of 500 exceeded", 500),
        (400, "Bad Request: text with spoiler exceed max chars (300)", 300),
        (400, "Status is too long", 0),
        (400, "Bad Request", None),
        (422, "Validation failed: Text can't be blank", None),
        (500, "Status is too long", None),
    ])
    def test_which_refusals_mean_too_long(self, code: int, detail: str, limit: int | None) -> None:
        assert too_long(code, detail) == limit


class TestErrorsOnEveryShape:
    """A bad token reads as a token problem with its fix on every server, and no secret shows."""

    async def test_bad_token(self, make_channel: MakeChannel, server: MastodonServer) -> None:
        server.token = "another-token-the-server-wants-000000"
        channel = make_channel(server)
        for attempt in (channel.whoami(), channel.send(message("Fermé."), idempotency_key="k", reply_to=None)):
            with pytest.raises(PermanentError) as caught:
                await attempt
            said = str(caught.value)
            assert "the access token is invalid or revoked" in said
            assert f"set it in environment variable {ENV}" in said
            assert TOKEN not in said and "<" not in said and len(said) < 500
        if server.shape.bad_token == "html400":
            assert "HTTP 400" in said and "Invalid Bearer token" in said

    async def test_an_answer_that_is_not_json(self, make_channel: MakeChannel, server: MastodonServer) -> None:
        server.mode, server.status = "html", 200
        channel = make_channel(server)
        with pytest.raises(TransientError) as caught:
            await channel.send(message("Fermé."), idempotency_key="k", reply_to=None)
        said = str(caught.value)
        assert "not Mastodon's API" in said and "<" not in said and len(said) < 400


class TestFindAfterAStall:
    """A status made while its answer stalled is found by its text as the server rewrote it."""

    TEXT = f"Travaux &amp; fermeture : voir https://exemple.org/{'tres-' * 12}long/plan\n\n{LINK}"

    async def test_found_once(self, make_channel: MakeChannel, server: MastodonServer) -> None:
        channel = make_channel(server)
        await channel.open()
        since = datetime.now(UTC)
        server.delay = 1.0  # the status exists at once; the answer comes after the timeout
        with pytest.raises(TransientError, match="no answer"):
            await channel.send(message(self.TEXT), idempotency_key="k", reply_to=None)
        server.delay = 0.0
        found = await channel.find(message(self.TEXT), idempotency_key="k", since=since)
        assert found is not None and [p["id"] for p in server.posts] == [found.remote_id]
        # Another delivery's claim, an older status, or another thread's reply: not this one.
        assert await channel.find(message(self.TEXT), idempotency_key="k", since=since,
                                  exclude=frozenset({found.remote_id})) is None
        assert await channel.find(message(self.TEXT), idempotency_key="k",
                                  since=since + timedelta(seconds=5)) is None
        assert await channel.find(message(self.TEXT), idempotency_key="k", since=since,
                                  reply_to=Reply(found.remote_id, found.remote_id)) is None

    @pytest.mark.parametrize(("typed", "shown"), [
        ("A &amp; B", "<p>A &amp; B</p>"),          # a server that unescapes typed entities
        ("A &amp; B", "<p>A &amp;amp; B</p>"),      # Mastodon, which keeps them
        ("un  deux\n\ntrois", "<p>un deux</p><p>trois</p>"),
        (f"voir {LINK}", '<p>voir <a href="x">statut.bibliotheques-municipales-lyon.fr/…</a></p>'),
        ("#incendie fermé", '<p><a href="/tags/incendie" class="hashtag">#<span>incendie</span></a> fermé</p>'),
    ])
    def test_rewritten_text_matches(self, typed: str, shown: str) -> None:
        assert comparable(typed) == comparable_content(shown)

    def test_different_words_differ(self) -> None:
        assert comparable("#incendie fermé") != comparable_content(to_html("#inondation fermé"))


class TestPreview:
    """`statusd preview` cuts to the limit the server says, or says it used a default."""

    def _preview(self, path: Path, text: str) -> str:
        (path.parent / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "statusd", "--config", str(path), "--state-dir", str(path.parent / "state"),
             "preview", "main", "closed", "-m", f"fr:{text}"],
            capture_output=True, text=True, timeout=60, env={**os.environ, ENV: TOKEN}, cwd=path.parent)
        assert done.returncode == 0, done.stderr
        return done.stdout

    async def test_the_servers_limit(self, tmp_path: Path) -> None:
        async with MastodonServer(token=TOKEN, shape="go") as fake:
            path = tmp_path / "statusd.yaml"
            path.write_text(CONFIG.format(alerts=ALERTS, instance=fake.url, env=ENV), encoding="utf-8")
            out = await asyncio.to_thread(self._preview, path, "Dégât des eaux, voir https://exemple.org/plan " * 20)
        assert f"toot: 300 characters, read from 127.0.0.1:{fake.port}/api/v2/instance" in out
        assert "URLs count at their raw length" in out
        post = out.split("status_changed\n", 1)[1].strip()
        assert mastodon_length(post, raw_urls=True, graphemes=False) <= 300 and post.endswith("#main")

    async def test_a_default_when_the_server_does_not_answer(self, tmp_path: Path) -> None:
        path = tmp_path / "statusd.yaml"
        path.write_text(CONFIG.format(alerts=ALERTS, instance=f"http://127.0.0.1:{refusing_port()}", env=ENV),
                        encoding="utf-8")
        out = await asyncio.to_thread(self._preview, path, "Fermé.")
        assert "toot: 500 characters, a default: the server was not read (cannot reach 127.0.0.1:" in out


URLISH = st.sampled_from(["https://exemple.org/a?b=1&c=2", "http://192.168.1.2:8080/x", "www.bib.fr",
                          "#incendie", "@bib@social.example", "&amp;", "&lt;b&gt;", "\n\n", "  "])


class TestRewritingProperties:
    """Whatever was typed, the status a server stores matches it again, as Mastodon or unescaped."""

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.one_of(st.text(max_size=12), URLISH), max_size=10).map(" ".join))
    def test_stored_status_matches_the_text(self, text: str) -> None:
        for stored in (text, html.unescape(text)):
            if stored.strip():
                assert comparable_content(to_html(stored)) == comparable(text), stored


class TestStandaloneShape:
    """The fake run as its own process plays the shape it is given."""

    async def test_django_shape(self, make_channel: MakeChannel) -> None:
        with standalone("mastodon", "--token", TOKEN, "--shape", "django") as (url,):
            channel = make_channel(url)
            await channel.open()
            assert (channel.max_chars, channel.honours_idempotency, channel.server.endpoint) == (
                5000, False, "/api/v1/instance")
