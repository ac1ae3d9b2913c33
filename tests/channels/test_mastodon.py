"""The Mastodon channel, with the real Mastodon.py, against a server that answers like Mastodon."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.mastodon import Mastodon, measure, plain_text
from statusd.compose.composer import Composer
from statusd.compose.message import Message
from statusd.config.load import Config
from statusd.errors import ConfigError
from statusd.events import STAFF_KINDS, Event, EventKind
from statusd.loading import load
from statusd.model import Level, Target
from tests.support import channels as support
from tests.support.channels import ChannelBuilder
from tests.support.fakes import blackhole, refusing_port
from tests.support.fakes.common import standalone
from tests.support.fakes.mastodon import MastodonServer, mastodon_length, to_html

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent.parent
ALERTS = ROOT / "alerts"
ENV = "TEST_MASTODON_TOKEN"
TOKEN = "mastodon-access-token-for-tests-0123456789"
LINK = "https://statut.bib-lyon.fr/#main"

MakeChannel = Callable[..., Mastodon]

CONFIG = """\
public_url: https://statut.bib-lyon.fr
languages: [fr, en, sv]
alerts: {alerts}
sites:
  main:
    name: {{fr: Bibliothèque centrale, en: Central Library, sv: Centralbiblioteket}}
    timezone: Europe/Paris
    services: {{wifi: Wi-Fi}}
channels:
  toot:
    type: mastodon
    language: {language}
    instance: {instance}
    token: {{env: {env}}}
{extra}"""


def write_config(directory: Path, instance: str, language: str = "fr", **options: str) -> Path:
    path = directory / "statusd.yaml"
    extra = "".join(f"    {key}: {value}\n" for key, value in options.items())
    path.write_text(CONFIG.format(alerts=ALERTS, instance=instance, env=ENV, language=language,
                                  extra=extra), encoding="utf-8")
    return path


def message(text: str = f"Bibliothèque centrale : fermé.\n\n{LINK}", **changes: str) -> Message:
    return support.message(text, **{"link": LINK, "event_id": "evt-1", **changes})


@pytest.fixture
async def server() -> AsyncIterator[MastodonServer]:
    async with MastodonServer(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def make_channel(tmp_path: Path, channel_builder: ChannelBuilder) -> MakeChannel:
    """Build real Mastodon channels from a statusd.yaml; each is closed after the test."""

    def make(
        instance: str, *, token: str = TOKEN, timeout: str = "0.3s", **options: str
    ) -> Mastodon:
        path = write_config(tmp_path, instance, timeout=timeout, **options)
        return channel_builder.build(path, "toot", Mastodon, {ENV: token})

    return make


@pytest.fixture
def channel(make_channel: MakeChannel, server: MastodonServer) -> Mastodon:
    return make_channel(server.url)


async def send(channel: Mastodon, key: str = "delivery-1", text: str | None = None,
               reply_to: Reply | None = None) -> Sent:
    sample = message() if text is None else message(text)
    return await channel.send(sample, idempotency_key=key, reply_to=reply_to)


class TestConfig:
    """A Mastodon channel is built from statusd.yaml and stays off while its token is unset."""

    def test_options(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(ENV, TOKEN)
        config = load(write_config(tmp_path, "https://social.bib-lyon.fr", visibility="unlisted",
                                   timeout="4s"))
        options = config.channels["toot"].options
        assert (options.instance, options.visibility, options.timeout) == (
            "https://social.bib-lyon.fr", "unlisted", pytest.approx(4.0))

    def test_token_unset_makes_it_inactive(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(ENV, raising=False)
        config = load(write_config(tmp_path, "https://social.bib-lyon.fr"))
        assert "toot" not in config.channels
        assert ENV in config.inactive["toot"]

    def test_building_makes_no_request(self, make_channel: MakeChannel) -> None:
        channel = make_channel(f"http://127.0.0.1:{refusing_port()}")
        facts = (channel.kind, channel.honours_idempotency, channel.max_chars)
        assert facts == ("mastodon", False, 500)  # trusted with keys once it says it is Mastodon


class TestOpen:
    """open() reads the instance's own character limit, 500 when it does not say."""

    @pytest.mark.parametrize(("announced", "expected"), [(500, 500), (5000, 5000), (None, 500)])
    async def test_limit(self, channel: Mastodon, server: MastodonServer,
                         announced: int | None, expected: int) -> None:
        server.max_characters = announced
        await channel.open()
        assert channel.max_chars == expected

    async def test_unreachable_keeps_the_default(self, make_channel: MakeChannel) -> None:
        channel = make_channel(f"http://127.0.0.1:{refusing_port()}")
        with pytest.raises(TransientError, match="cannot reach"):
            await channel.open()
        assert channel.max_chars == 500

    def test_bad_visibility_is_refused_at_load(self, make_channel: MakeChannel,
                                               server: MastodonServer) -> None:
        with pytest.raises(ConfigError, match="channels.toot.visibility: should be one of public, unlisted"):
            make_channel(server.url, visibility="everyone")


class TestWhoami:
    """whoami() checks the token against the instance and names the account."""

    async def test_names_the_account(self, channel: Mastodon, server: MastodonServer) -> None:
        assert await channel.whoami() == f"@library@127.0.0.1:{server.port} (Bibliothèque)"

    async def test_revoked_token(self, make_channel: MakeChannel, server: MastodonServer) -> None:
        channel = make_channel(server.url, token="revoked-token-0123456789")
        with pytest.raises(PermanentError) as caught:
            await channel.whoami()
        reason = str(caught.value)
        assert "HTTP 401: The access token is invalid" in reason
        assert "create a new one" in reason and f"environment variable {ENV}" in reason
        assert "revoked-token-0123456789" not in reason

    async def test_unreachable(self, make_channel: MakeChannel) -> None:
        channel = make_channel(f"http://127.0.0.1:{refusing_port()}")
        with pytest.raises(TransientError, match=r"cannot reach 127.0.0.1:\d+: Connection refused"):
            await channel.whoami()


class TestSend:
    """send() posts the text once, in the channel's language and visibility."""

    async def test_posts(self, channel: Mastodon, server: MastodonServer) -> None:
        sent = await send(channel)
        (post,) = server.posts
        assert sent == Sent(remote_id=post["id"], url=f"{server.url}/@library/{post['id']}")
        assert (post["text"], post["visibility"], post["language"], post["in_reply_to_id"]) == (
            message().text, "public", "fr", None)
        assert server.attempts[-1].key == "delivery-1"
        assert server.attempts[-1].authorization == f"Bearer {TOKEN}"

    async def test_visibility_option(
        self, make_channel: MakeChannel, server: MastodonServer
    ) -> None:
        channel = make_channel(server.url, visibility="unlisted")
        await send(channel)
        assert server.posts[0]["visibility"] == "unlisted"

    def test_bad_visibility_sends_nothing(self, make_channel: MakeChannel,
                                          server: MastodonServer) -> None:
        with pytest.raises(ConfigError, match="visibility"):
            make_channel(server.url, visibility="Everyone")
        assert server.attempts == []

    async def test_thread_of_three(self, channel: Mastodon, server: MastodonServer) -> None:
        root = await send(channel, "k1", "⚠ URGENCE — incendie, évacuation.")
        second = await send(channel, "k2", "Toujours fermé.", Reply(root.remote_id, root.remote_id))
        third = await send(channel, "k3", "Réouverture.", Reply(second.remote_id, root.remote_id))
        chain = [(p["id"], p["in_reply_to_id"]) for p in server.posts]
        assert chain == [(root.remote_id, None), (second.remote_id, root.remote_id),
                         (third.remote_id, second.remote_id)]

    async def test_reply_to_a_deleted_status(
        self, channel: Mastodon, server: MastodonServer
    ) -> None:
        root = await send(channel, "k1")
        await channel.delete(root.remote_id)
        with pytest.raises(PermanentError, match="HTTP 404: Record not found"):
            await send(channel, "k2", reply_to=Reply(root.remote_id, root.remote_id))


class TestIdempotency:
    """A repeated Idempotency-Key makes no second status; Mastodon does not refuse equal texts."""

    async def test_same_key_posts_once(self, channel: Mastodon, server: MastodonServer) -> None:
        first = await send(channel, "same")
        again = await send(channel, "same")
        assert (again, len(server.posts), server.repeats) == (first, 1, 1)

    async def test_a_key_is_remembered_an_hour_only(self, channel: Mastodon,
                                                    server: MastodonServer) -> None:
        first = await send(channel, "same")
        server.forget_keys()  # an hour later
        again = await send(channel, "same")
        assert first.remote_id != again.remote_id  # why the outbox must find() before resending
        assert len(server.posts) == 2

    async def test_same_text_new_key_posts_again(self, channel: Mastodon,
                                                  server: MastodonServer) -> None:
        first = await send(channel, "a")
        second = await send(channel, "b")
        assert first.remote_id != second.remote_id
        assert len(server.posts) == 2


class TestErrors:
    """Each failure is a TransientError or a PermanentError with a reason an operator can act on."""

    @pytest.mark.parametrize(
        ("mode", "status", "error", "reason"),
        [
            ("error", 500, TransientError, "HTTP 500: We're sorry"),
            ("error", 502, TransientError, "HTTP 502"),
            ("error", 503, TransientError, "HTTP 503: Service unavailable"),
            ("error", 504, TransientError, "HTTP 504"),
            ("html", 502, TransientError, "HTTP 502: Bad Gateway"),
            ("html", 503, TransientError, "HTTP 503: Service Unavailable"),
            ("error", 422, PermanentError, "HTTP 422: Validation failed"),
            ("error", 403, PermanentError, "outside the authorized scopes; the access token lacks"),
            ("error", 401, PermanentError, "invalid or revoked"),
            ("html", 401, PermanentError, "HTTP 401: Unauthorized; the access token is invalid"),
            ("html", 400, PermanentError, "HTTP 400: Bad Request"),
            ("error", 410, PermanentError, "HTTP 410: Gone"),
        ],
    )
    async def test_status(self, channel: Mastodon, server: MastodonServer, mode: str, status: int,
                          error: type[Exception], reason: str) -> None:
        server.mode, server.status = mode, status
        with pytest.raises((TransientError, PermanentError)) as caught:
            await send(channel)
        assert type(caught.value) is error
        assert reason in str(caught.value)
        assert TOKEN not in str(caught.value)
        assert server.posts == []

    async def test_rate_limit_waits_until_the_reset(self, channel: Mastodon,
                                                    server: MastodonServer) -> None:
        server.mode, server.retry_after = "ratelimit", 120
        with pytest.raises(TransientError, match="rate limit") as caught:
            await send(channel)
        # The reset is an ISO time; Mastodon.py corrects it by the server's (whole-second) Date.
        assert caught.value.retry_after == pytest.approx(120, abs=1.5)

    async def test_over_the_limit_is_shortened_once(self, channel: Mastodon,
                                                    server: MastodonServer) -> None:
        await send(channel, text="é" * 500)  # exactly at the limit is fine
        await send(channel, key="delivery-2", text="a" * 501)
        assert [p["text"] for p in server.posts] == ["é" * 500, "a" * 499 + "…"]
        assert len([a for a in server.attempts if a.method == "POST"]) == 3

    async def test_refused_when_it_cannot_be_shorter(self, channel: Mastodon,
                                                     server: MastodonServer) -> None:
        server.max_characters = 10
        with pytest.raises(PermanentError, match="Text character limit of 10 exceeded; the status is"):
            await send(channel, text=LINK)
        assert server.posts == []

    async def test_timeout(self, channel: Mastodon, server: MastodonServer) -> None:
        server.mode = "hang"
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"no answer from 127.0.0.1:\d+ within 0.3 s"):
            await send(channel)
        assert 0.25 < time.monotonic() - started < 1.5

    async def test_connected_but_silent(self, make_channel: MakeChannel) -> None:
        with blackhole() as port:
            channel = make_channel(f"http://127.0.0.1:{port}")
            with pytest.raises(TransientError, match="no answer"):
                await send(channel)

    async def test_answer_that_is_not_json(self, make_channel: MakeChannel) -> None:
        # A captive portal or a misrouted proxy answers 200 with a page: the outcome is unknown.
        async def portal(request: web.Request) -> web.Response:
            return web.Response(text="<html>Welcome</html>", content_type="text/html")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", portal)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            channel = make_channel(f"http://127.0.0.1:{runner.addresses[0][1]}")
            with pytest.raises(TransientError, match="not Mastodon's API"):
                await send(channel)
        finally:
            await runner.cleanup()


class TestDelete:
    """delete() removes a status; one already gone counts as deleted."""

    async def test_deletes(self, channel: Mastodon, server: MastodonServer) -> None:
        sent = await send(channel)
        await channel.delete(sent.remote_id)
        assert (server.posts, server.deleted) == ([], [sent.remote_id])

    async def test_already_gone(self, channel: Mastodon, server: MastodonServer) -> None:
        sent = await send(channel)
        await channel.delete(sent.remote_id)
        with capture_logs() as logs:
            await channel.delete(sent.remote_id)
        assert [entry["event"] for entry in logs] == ["mastodon_delete_missing"]

    async def test_server_error(self, channel: Mastodon, server: MastodonServer) -> None:
        sent = await send(channel)
        server.mode, server.status = "error", 503
        with pytest.raises(TransientError):
            await channel.delete(sent.remote_id)
        assert server.deleted == []


class TestFind:
    """find() recognises a status whose send outcome was lost, by its text."""

    TEXT = "Fermé <aujourd'hui> & demain.\nDégât des eaux 🌊 — voir https://www.kb.se/x\n\n" + LINK

    async def test_after_a_crash_mid_send(self, channel: Mastodon, server: MastodonServer) -> None:
        server.mode = "accept_then_hang"
        with pytest.raises(TransientError):
            await send(channel, text=self.TEXT)
        server.mode = "ok"
        server.forget_keys()  # more than an hour later: a resend would post twice
        found = await channel.find(message(self.TEXT), idempotency_key="delivery-1")
        (post,) = server.posts
        assert found == Sent(remote_id=post["id"], url=post["url"])

    async def test_not_made(self, channel: Mastodon, server: MastodonServer) -> None:
        server.mode = "hang"
        with pytest.raises(TransientError):
            await send(channel, text=self.TEXT)
        server.mode = "ok"
        await send(channel, "other", text="Ouvert.")
        assert await channel.find(message(self.TEXT), idempotency_key="delivery-1") is None

    async def test_ignores_posts_before_since(self, channel: Mastodon,
                                              server: MastodonServer) -> None:
        await send(channel, "yesterday", text=self.TEXT)
        since = datetime.now(UTC) + timedelta(seconds=1)
        assert await channel.find(message(self.TEXT), idempotency_key="k", since=since) is None
        found = await channel.find(message(self.TEXT), idempotency_key="k",
                                   since=since - timedelta(minutes=5))
        assert found is not None

    async def test_newest_match_wins(self, channel: Mastodon, server: MastodonServer) -> None:
        await send(channel, "a", text=self.TEXT)
        second = await send(channel, "b", text=self.TEXT)
        assert await channel.find(message(self.TEXT), idempotency_key="b") == second

    async def test_lookup_failure_is_transient(self, channel: Mastodon,
                                               server: MastodonServer) -> None:
        server.mode, server.status = "html", 502
        with pytest.raises(TransientError):
            await channel.find(message(self.TEXT), idempotency_key="k")

    @given(st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1))
    def test_html_round_trip(self, text: str) -> None:
        assert " ".join(plain_text(to_html(text)).split()) == " ".join(text.split())


URLS = st.sampled_from([
    "https://www.kb.se/", "http://a.fr", "https://bib.test/x", "http://127.0.0.1:8080/#main",
    "https://example.org/" + "x" * 40, "https://a.fr,https://b.fr", "(https://a.io/x).", " ",
    "https://xn--bibliothque-9db.fr/a?b=c#d", "@library@social.bib-lyon.fr",
])
TEXTS = st.lists(st.one_of(st.text(), URLS), max_size=8).map("".join)


class TestMeasure:
    """measure() never counts less than Mastodon does: code points, URLs as 23."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", 0),
            ("Ouvert", 6),
            ("https://www.kb.se/" + "x" * 100, 23),
            ("voir https://a.fr.", 5 + 23 + 1),
            ("🇫🇷 e\u0301", 5),  # two regional indicators, a space, e and a combining accent
            ("字" * 10, 10),
            (LINK, 23),
            ("http://127.0.0.1:8080/#main", 23 + 4),  # not a link for Mastodon: counted whole
            ("http://a.test", 23),  # maybe a link: never counted less than one
        ],
    )
    def test_table(self, text: str, expected: int) -> None:
        assert measure(text) == expected

    @given(TEXTS)
    def test_never_less_than_mastodon(self, text: str) -> None:
        assert measure(text) >= mastodon_length(text)


PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=PARIS)
MESSAGES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=700)


@pytest.fixture(scope="module")
def composing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Composer]:
    path = tmp_path_factory.mktemp("compose") / "statusd.yaml"
    path.write_text(CONFIG.format(alerts=ALERTS, instance="https://social.bib-lyon.fr",
                                  env=ENV, language="fr", extra="").replace(
        "channels:\n  toot:", "channels:\n  console_fr: {type: console, language: fr}\n"
        "  console_en: {type: console, language: en}\n"
        "  console_sv: {type: console, language: sv}\n  toot:"), encoding="utf-8")
    config = load(path)
    return config, Composer(config)


class TestComposedMessagesFit:
    """Every message the real Composer renders fits Mastodon's count and ends with the link."""

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(
        text=MESSAGES,
        kind=st.sampled_from(STAFF_KINDS),
        level=st.sampled_from(list(Level)),
        language=st.sampled_from(["fr", "en", "sv"]),
        target=st.sampled_from(["main", "main/wifi"]),
        limit=st.sampled_from([500, 120, 60]),
    )
    def test_fits(self, composing: tuple[Config, Composer], text: str, kind: EventKind,
                  level: Level, language: str, target: str, limit: int) -> None:
        config, composer = composing
        event = Event(kind, Target.parse(target), level, Level.OPEN, {language: text}, NOW,
                      "desk", "r1", starts=NOW + timedelta(days=1), until=NOW + timedelta(days=2))
        rendered = composer.render(event, config.channels[f"console_{language}"], limit, measure)
        assert mastodon_length(rendered.text) <= limit
        assert measure(rendered.text) <= limit
        assert rendered.text.endswith(LINK)

    async def test_the_server_accepts_a_full_message(
        self, composing: tuple[Config, Composer], channel: Mastodon, server: MastodonServer
    ) -> None:
        config, composer = composing
        await channel.open()
        long = "Dégât des eaux 🌊👨‍👩‍👧 字字 e\u0301 " * 60
        event = Event(EventKind.STATUS_CHANGED, Target.parse("main"), Level.CLOSED, Level.OPEN,
                      {"fr": long}, NOW, "desk", "r1")
        rendered = composer.render(event, config.channels["console_fr"], channel.max_chars,
                                   channel.measure)
        await channel.send(rendered, idempotency_key="full", reply_to=None)
        assert server.posts[0]["text"] == rendered.text
        assert 400 < mastodon_length(rendered.text) <= 500


@pytest.fixture
def server_process() -> Iterator[str]:
    """The fake as its own process: its base URL."""
    with standalone("mastodon", "--token", TOKEN, "--max-characters", "5000") as (url,):
        yield url


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


class TestStandaloneProcess:
    """The fake runs as its own process and shows what it stored."""

    async def test_posts_are_listed(self, make_channel: MakeChannel, server_process: str) -> None:
        channel = make_channel(server_process, timeout="5s")
        await channel.open()
        assert channel.max_chars == 5000
        for key in ("a", "a", "b"):
            await send(channel, key)
        posts = await asyncio.to_thread(_get, f"{server_process}/_fake/posts")
        assert isinstance(posts, list)
        assert [(p["idempotency_key"], p["text"]) for p in posts] == [
            ("a", message().text), ("b", message().text)]

    async def test_control_switches_the_mode(self, make_channel: MakeChannel,
                                             server_process: str) -> None:
        request = urllib.request.Request(
            f"{server_process}/_fake/control", data=json.dumps({"mode": "ratelimit"}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=5).read())
        channel = make_channel(server_process, timeout="5s")
        with pytest.raises(TransientError) as caught:
            await send(channel)
        assert caught.value.retry_after == pytest.approx(30, abs=1.5)
