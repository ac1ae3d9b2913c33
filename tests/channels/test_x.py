"""The X channel: tweepy's AsyncClient over real TLS to a fake api.twitter.com on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import ssl
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.x import X, comparable, rate_limit_wait, snowflake_time, weighted_length
from statusd.compose.composer import Composer
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig
from statusd.errors import ConfigError
from statusd.events import Event, EventKind
from statusd.loading import load
from statusd.model import Level, Target
from statusd.textfit import fit
from tests.support import channels as support
from tests.support.channels import LENGTH_TABLE, ChannelBuilder
from tests.support.fakes import blackhole, refusing_port
from tests.support.fakes.common import standalone
from tests.support.fakes.x import ACCOUNT, Credentials, Tls, XServer, make_tls, snowflake, x_length

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent.parent
ALERTS = ROOT / "alerts"
KEYS = Credentials()
SECRETS = (KEYS.consumer_key, KEYS.consumer_secret, KEYS.access_token, KEYS.access_token_secret)
ENV = {"consumer_key": "TEST_X_CONSUMER_KEY", "consumer_secret": "TEST_X_CONSUMER_SECRET",
       "access_token": "TEST_X_ACCESS_TOKEN", "access_token_secret": "TEST_X_ACCESS_SECRET"}
LINK = "https://bib.test/#main"
PARIS = ZoneInfo("Europe/Paris")

CONFIG = """\
public_url: https://bib.test
languages: [fr, en, sv]
alerts: {alerts}
sites:
  main:
    name: {{fr: Bibliothèque centrale, en: Central Library, sv: Centralbiblioteket}}
    timezone: Europe/Paris
    services:
      wifi: Wi-Fi
channels:
  xfr:
    type: x
    language: fr
    consumer_key: {{env: TEST_X_CONSUMER_KEY}}
    consumer_secret: {{env: TEST_X_CONSUMER_SECRET}}
    access_token: {{env: TEST_X_ACCESS_TOKEN}}
    access_token_secret: {{env: TEST_X_ACCESS_SECRET}}
{options}
"""

MakeChannel = Callable[..., X]


def message(text: str = f"Bibliothèque centrale : fermée.\n\n{LINK}") -> Message:
    return support.message(text, link=LINK, event_id="evt-1")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("x-tls"))


@pytest.fixture
async def server(tls: Tls) -> AsyncIterator[XServer]:
    async with XServer(tls, retry_after=120, daily_after=5 * 3600) as fake:
        yield fake


@pytest.fixture
def make_channel(tmp_path: Path, tls: Tls, channel_builder: ChannelBuilder) -> MakeChannel:
    """Channels built as the daemon builds them: from tmp_path/statusd.yaml, keys from env."""

    def make(connect_to: str | None = None, *, ca_file: str | None = None, timeout: str = "1s",
             **keys: str) -> X:
        options = {"timeout": timeout, "connect_to": connect_to,
                   "ca_file": str(tls.ca_file) if ca_file is None else ca_file}
        lines = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in options.items() if v)
        path = tmp_path / "statusd.yaml"
        path.write_text(CONFIG.format(alerts=ALERTS, options=lines), encoding="utf-8")
        env = {variable: keys.get(name, getattr(KEYS, name)) for name, variable in ENV.items()}
        return channel_builder.build(path, "xfr", X, env)

    return make


@pytest.fixture
async def channel(make_channel: MakeChannel, server: XServer) -> AsyncIterator[X]:
    made = make_channel(server.connect_to)
    await made.open()
    yield made
    await made.close()


async def failure(coroutine: object) -> Exception:
    """The ChannelError a call raised (it must raise one)."""
    try:
        await coroutine  # type: ignore[misc]
    except (TransientError, PermanentError) as err:
        assert not any(secret in str(err) for secret in SECRETS), "a secret leaked into the reason"
        return err
    raise AssertionError("expected a TransientError or PermanentError")


class TestSend:
    """A message is posted once, signed, over TLS to api.twitter.com, as its exact text."""

    async def test_posts_the_text(self, channel: X, server: XServer) -> None:
        sent = await channel.send(message(), idempotency_key="k1", reply_to=None)
        (post,) = server.posts
        assert post["text"] == message().text
        assert sent == Sent(remote_id=post["id"], url=f"https://x.com/i/web/status/{post['id']}")
        (attempt,) = server.attempts
        assert (attempt.method, attempt.host) == ("POST", "api.twitter.com")
        assert attempt.oauth_problem is None

    def test_tweepy_never_logs_the_authorization_header(self) -> None:
        assert not logging.getLogger("tweepy.asynchronous.client").isEnabledFor(logging.DEBUG)

    async def test_thread_of_three(self, channel: X, server: XServer) -> None:
        first = await channel.send(message("Fermé."), idempotency_key="a", reply_to=None)
        second = await channel.send(message("Toujours fermé."), idempotency_key="b",
                                    reply_to=Reply(parent=first.remote_id, root=first.remote_id))
        third = await channel.send(message("Rouvert."), idempotency_key="c",
                                   reply_to=Reply(parent=second.remote_id, root=first.remote_id))
        chain = [(p["id"], p["in_reply_to"]) for p in server.posts]
        assert chain == [(first.remote_id, None), (second.remote_id, first.remote_id),
                         (third.remote_id, second.remote_id)]

    async def test_reply_to_an_unknown_post_is_permanent(self, channel: X, server: XServer) -> None:
        err = await failure(channel.send(message(), idempotency_key="k",
                                         reply_to=Reply(parent="99", root="99")))
        assert isinstance(err, PermanentError) and "does not exist" in str(err)
        assert server.posts == []

    async def test_sends_nfc_without_invisible_characters(self, channel: X,
                                                          server: XServer) -> None:
        await channel.send(message("Ferme\u0301e\ufeff."), idempotency_key="k", reply_to=None)
        assert [p["text"] for p in server.posts] == ["Fermée."]

    async def test_over_the_limit_is_refused(self, channel: X, server: XServer) -> None:
        text = "東" * 141
        assert channel.measure(text) == 282 and channel.max_chars == 280
        err = await failure(channel.send(message(text), idempotency_key="k", reply_to=None))
        assert isinstance(err, PermanentError) and "403" in str(err)
        assert server.posts == []


class TestDelete:
    """delete removes the post; removing it again is harmless."""

    async def test_delete(self, channel: X, server: XServer) -> None:
        sent = await channel.send(message(), idempotency_key="k", reply_to=None)
        await channel.delete(sent.remote_id)
        await channel.delete(sent.remote_id)
        assert (server.posts, server.deleted) == ([], [sent.remote_id])

    async def test_failed_delete_raises(self, channel: X, server: XServer) -> None:
        sent = await channel.send(message(), idempotency_key="k", reply_to=None)
        server.mode = "error"
        assert isinstance(await failure(channel.delete(sent.remote_id)), TransientError)
        assert server.deleted == []


class TestWhoami:
    """whoami names the account, or says exactly why the keys do not work."""

    async def test_names_the_account(self, channel: X) -> None:
        assert await channel.whoami() == f"@{ACCOUNT['username']} ({ACCOUNT['name']})"

    @pytest.mark.parametrize(
        ("keys", "words"),
        [
            ({"consumer_secret": "wrong-secret"}, "401"),
            ({"access_token": "42-someone-else"}, "access_token_secret"),
        ],
    )
    async def test_wrong_keys(self, make_channel: MakeChannel, server: XServer,
                              keys: dict[str, str], words: str) -> None:
        channel = make_channel(server.connect_to, **keys)
        err = await failure(channel.whoami())
        await channel.close()
        assert isinstance(err, PermanentError) and words in str(err)
        assert "wrong-secret" not in str(err) and server.attempts[0].oauth_problem is not None

    async def test_read_only_app(self, channel: X, server: XServer) -> None:
        server.mode = "readonly"
        err = await failure(channel.whoami())
        assert isinstance(err, PermanentError) and "Read and Write" in str(err)

    async def test_unreachable(self, make_channel: MakeChannel) -> None:
        channel = make_channel(f"127.0.0.1:{refusing_port()}")
        err = await failure(channel.whoami())
        await channel.close()
        assert isinstance(err, TransientError) and "cannot reach api.twitter.com" in str(err)

    async def test_untrusted_certificate(self, make_channel: MakeChannel, server: XServer,
                                         tmp_path: Path) -> None:
        other = make_tls(tmp_path / "other")
        channel = make_channel(server.connect_to, ca_file=str(other.ca_file))
        err = await failure(channel.whoami())
        await channel.close()
        assert isinstance(err, TransientError) and "certificate" in str(err).lower()


class TestFailures:
    """Each way X fails is a TransientError or a PermanentError with a reason to act on."""

    @pytest.mark.parametrize(
        ("mode", "error", "words"),
        [
            ("unauthorized", PermanentError, "consumer_key"),
            ("readonly", PermanentError, "Read and Write"),
            ("error", TransientError, "503"),
            ("html", TransientError, "502 Bad Gateway"),
            ("ratelimit", TransientError, "429"),
        ],
    )
    async def test_mode(self, channel: X, server: XServer, mode: str,
                        error: type[Exception], words: str) -> None:
        server.mode = mode
        err = await failure(channel.send(message(), idempotency_key="k", reply_to=None))
        assert type(err) is error and words in str(err)
        assert server.posts == []

    async def test_duplicate(self, channel: X, server: XServer) -> None:
        await channel.send(message(), idempotency_key="k", reply_to=None)
        err = await failure(channel.send(message(), idempotency_key="k", reply_to=None))
        assert isinstance(err, PermanentError) and str(err).startswith("duplicate:")
        assert len(server.posts) == 1

    async def test_rate_limit_waits_for_the_reset(self, channel: X, server: XServer) -> None:
        server.mode = "ratelimit"
        err = await failure(channel.send(message(), idempotency_key="k", reply_to=None))
        assert isinstance(err, TransientError) and err.retry_after is not None
        assert err.retry_after == pytest.approx(120, abs=2)

    async def test_spent_daily_cap_waits_longer(self, channel: X, server: XServer) -> None:
        server.mode = "daily"
        err = await failure(channel.send(message(), idempotency_key="k", reply_to=None))
        assert isinstance(err, TransientError) and err.retry_after is not None
        assert err.retry_after == pytest.approx(5 * 3600, abs=2)

    async def test_hang_times_out(self, make_channel: MakeChannel, server: XServer) -> None:
        channel = make_channel(server.connect_to, timeout="0.3s")
        server.mode = "hang"
        started = time.monotonic()
        err = await failure(channel.send(message(), idempotency_key="k", reply_to=None))
        await channel.close()
        assert isinstance(err, TransientError) and "no answer" in str(err) and "0.3 s" in str(err)
        assert 0.25 < time.monotonic() - started < 1.5

    async def test_connected_but_silent(self, make_channel: MakeChannel) -> None:
        with blackhole() as port:
            channel = make_channel(f"127.0.0.1:{port}", timeout="0.3s")
            err = await failure(channel.send(message(), idempotency_key="k", reply_to=None))
            await channel.close()
        assert isinstance(err, TransientError)

    @pytest.mark.parametrize("connect_to", ["127.0.0.1", "127.0.0.1:http", ":443", "h:70000"])
    def test_bad_connect_to(self, make_channel: MakeChannel, connect_to: str) -> None:
        with pytest.raises(ConfigError, match="channels.xfr.connect_to: should be HOST:PORT"):
            make_channel(connect_to)

    def test_unreadable_ca_file(self, make_channel: MakeChannel, server: XServer, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="channels.xfr.ca_file: .* cannot be read as a PEM CA bundle"):
            make_channel(server.connect_to, ca_file=str(tmp_path / "missing.pem"))


NOW = 1_700_000_000.0


class TestRateLimitWait:
    """The wait is the window's reset, or a spent daily cap's reset when that is later."""

    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"x-rate-limit-reset": str(int(NOW) + 60)}, 60.0),
            ({"x-rate-limit-reset": str(int(NOW) - 60)}, 0.0),
            ({"x-rate-limit-reset": str(int(NOW) + 60), "x-user-limit-24hour-remaining": "0",
              "x-user-limit-24hour-reset": str(int(NOW) + 7200)}, 7200.0),
            ({"x-rate-limit-reset": str(int(NOW) + 60), "x-user-limit-24hour-remaining": "3",
              "x-user-limit-24hour-reset": str(int(NOW) + 7200)}, 60.0),
            ({"x-rate-limit-reset": str(int(NOW) + 60), "x-app-limit-24hour-remaining": "0",
              "x-app-limit-24hour-reset": str(int(NOW) + 900)}, 900.0),
            ({"x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": "soon"}, None),
            ({"x-rate-limit-reset": "1e99"}, None),
            ({}, None),
        ],
    )
    def test_table(self, headers: dict[str, str], expected: float | None) -> None:
        assert rate_limit_wait(headers, now=NOW) == expected


class TestFind:
    """After a crash mid-send, find tells whether the post was made."""

    async def test_finds_a_post_whose_answer_was_lost(self, make_channel: MakeChannel,
                                                      server: XServer) -> None:
        channel = make_channel(server.connect_to, timeout="0.3s")
        server.mode = "accept_then_hang"
        err = await failure(channel.send(message(), idempotency_key="k", reply_to=None))
        assert isinstance(err, TransientError)
        server.mode = "ok"
        (post,) = server.posts
        found = await channel.find(message(), idempotency_key="k")
        await channel.close()
        assert found == Sent(remote_id=post["id"], url=f"https://x.com/i/web/status/{post['id']}")
        assert len(server.posts) == 1

    async def test_none_when_not_made(self, channel: X, server: XServer) -> None:
        await channel.send(message("Autre chose."), idempotency_key="other", reply_to=None)
        assert await channel.find(message(), idempotency_key="k") is None
        assert [a.path for a in server.attempts][-1] == f"/2/users/{ACCOUNT['id']}/tweets"

    async def test_asks_who_it_is_when_the_token_does_not_say(
        self, make_channel: MakeChannel, server: XServer
    ) -> None:
        server.keys = Credentials(access_token="opaque-token")
        channel = make_channel(server.connect_to, access_token="opaque-token")
        assert await channel.find(message(), idempotency_key="k") is None
        await channel.close()
        paths = [a.path for a in server.attempts]
        assert paths == ["/2/users/me", f"/2/users/{ACCOUNT['id']}/tweets"]

    @pytest.mark.parametrize(
        ("ours", "theirs"),
        [
            (f"Fermé & rouvert <demain>.\n\n{LINK}",
             "Fermé &amp; rouvert &lt;demain&gt;.\n\nhttps://t.co/AbC123"),
            (f"Voir {LINK} puis\n\n{LINK}", "Voir https://t.co/x1 puis\n\nhttps://t.co/x2"),
            ("Ferme\u0301e.  Deux  espaces.", "Fermée. Deux espaces."),
        ],
    )
    def test_compares_what_x_rewrites(self, ours: str, theirs: str) -> None:
        assert comparable(ours) == comparable(theirs)

    def test_different_words_differ(self) -> None:
        assert comparable(f"Fermé.\n\n{LINK}") != comparable("Ouvert.\n\nhttps://t.co/x")


# -- length ----------------------------------------------------------------------------------

RGI = ["👍", "👍🏽", "❤️", "⚠️", "✅", "☕", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🧑🏿‍💻", "🇫🇷", "🇸🇪", "1️⃣", "#️⃣",
       "©️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "😀"]
# Words in Latin script (with no ":" or "/", so that no URL is made by chance), CJK, emoji, links.
PIECES = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=0x24F, blacklist_characters=":/"), max_size=30),
    st.text(alphabet="東京図書館本日閉館서울도서관", max_size=20),
    st.sampled_from(RGI),
    st.sampled_from(["https://bib.test/#main", "http://example.org/a?b=c", "bib.fr", " ", "\n\n",
                     "«\u202fFermé\u202f»", "‘quoted’ — dash…", "e\u0301", "10:00"]),
)


class TestMeasure:
    """measure is X's weighted count: 1 or 2 per character, 23 per URL, 2 per emoji."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Fermé", 5),
            ("東京", 4),
            ("«\u202fFermé\u202f» — ‘oui’", 19),  # the narrow no-break space U+202F weighs 2
            ("👍", 2), ("👍🏽", 2), ("👨‍👩‍👧‍👦", 2), ("🏳️‍🌈", 2), ("🇫🇷", 2), ("1️⃣", 2), ("❤️", 2),
            ("©", 1), ("©️", 2), ("™", 2),
            ("https://bib.test/a/very/long/path/that/is/longer/than/23", 23),
            ("Voir https://bib.test/#main.", 5 + 23 + 1),
            ("Voir bib.fr", 5 + 23),
            ("info@bib.fr", 11),
            ("http://127.0.0.1:8080/#main", 27),
            ("Ferme\u0301", 5),
        ],
    )
    def test_table(self, text: str, expected: int) -> None:
        assert weighted_length(text) == expected

    @given(st.lists(PIECES, max_size=12).map("".join))
    def test_never_below_what_x_counts(self, text: str) -> None:
        assert weighted_length(text) >= x_length(text)

    @given(st.lists(st.sampled_from([*RGI, "Fermé ", "東京", "https://bib.test/#main "]),
                    max_size=12).map("".join))
    def test_exact_on_common_text(self, text: str) -> None:
        assert weighted_length(text) == x_length(text)


def event(kind: EventKind, level: Level, text: str) -> Event:
    previous = Level.CLOSED if level is Level.OPEN else Level.OPEN
    return Event(kind, Target.parse("main"), level, previous, {"fr": text},
                 datetime(2026, 11, 24, 9, 0, tzinfo=PARIS), "desk", "r1",
                 starts=datetime(2026, 11, 25, 18, 0, tzinfo=PARIS),
                 until=datetime(2026, 11, 26, 10, 0, tzinfo=PARIS))


@pytest.fixture
def composer(make_channel: MakeChannel, tmp_path: Path) -> tuple[Composer, ChannelConfig, X]:
    """The real Composer over the shipped alerts/, with an X channel in French."""
    channel = make_channel("127.0.0.1:1")
    config = load(tmp_path / "statusd.yaml")
    return Composer(config), config.channels["xfr"], channel


class TestComposedMessages:
    """Every message the real Composer makes for X fits X's count and ends with the link."""

    @settings(max_examples=80, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(kind=st.sampled_from(list(EventKind)), level=st.sampled_from(list(Level)),
           text=st.text(max_size=600))
    def test_any_text_fits(self, composer: tuple[Composer, ChannelConfig, X], kind: EventKind,
                           level: Level, text: str) -> None:
        make, settings_, channel = composer
        sample = event(kind, level, text)
        rendered = make.render(sample, settings_, channel.max_chars, channel.measure)
        assert channel.measure(rendered.text) <= 280
        assert rendered.text.endswith(LINK)

    @settings(max_examples=80, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=st.lists(PIECES, min_size=20, max_size=60).map("".join))
    def test_x_would_count_it_within_the_limit(
        self, composer: tuple[Composer, ChannelConfig, X], text: str
    ) -> None:
        make, settings_, channel = composer
        sample = event(EventKind.STATUS_CHANGED, Level.EMERGENCY, text)
        rendered = make.render(sample, settings_, channel.max_chars, channel.measure)
        assert x_length(rendered.text) <= 280
        assert rendered.text.endswith(LINK)

    async def test_long_texts_are_shortened_and_accepted(
        self, composer: tuple[Composer, ChannelConfig, X], make_channel: MakeChannel,
        server: XServer,
    ) -> None:
        make, settings_, _ = composer
        channel = make_channel(server.connect_to)
        samples = ["Dégât des eaux 💧 " * 30, "図書館は本日閉館です。" * 30,
                   "Voir bib.fr 👨‍👩‍👧‍👦 " * 25, "⚠️ Alerte incendie : évacuez. " * 12]
        for number, text in enumerate(samples):
            sample = event(EventKind.STATUS_CHANGED, Level.EMERGENCY, text)
            rendered = make.render(sample, settings_, channel.max_chars, channel.measure)
            assert x_length(rendered.text) <= 280 < x_length(text)
            await channel.send(rendered, idempotency_key=str(number), reply_to=None)
        assert len(server.posts) == len(samples)


class TestFakeAnswers:
    """The fake answers with X's own bodies and headers (as in API_NOTES.md), to any client."""

    @pytest.mark.parametrize(
        ("mode", "status", "body"),
        [
            ("ok", 401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                         "detail": "Unauthorized"}),
            ("ratelimit", 429, {"title": "Too Many Requests", "detail": "Too Many Requests",
                                "type": "about:blank", "status": 429}),
        ],
    )
    async def test_unsigned_request(self, server: XServer, tls: Tls, mode: str, status: int,
                                    body: dict[str, object]) -> None:
        server.mode = mode
        async with aiohttp.ClientSession() as session, session.post(
            f"{server.url}/2/tweets", json={"text": "hi"}, ssl=tls.client_context()
        ) as response:
            answer = (response.status, await response.json())
            headers = response.headers
        assert answer == (status, body)
        assert int(headers["x-rate-limit-reset"]) > time.time()
        assert {"x-rate-limit-limit", "x-rate-limit-remaining"} <= {h.lower() for h in headers}
        assert server.posts == []
        assert server.attempts[0].oauth_problem == "no OAuth Authorization header"

    async def test_daily_cap_headers(self, channel: X, server: XServer) -> None:
        server.mode = "daily"
        async with aiohttp.ClientSession() as session, session.get(
            f"{server.url}/2/users/me", ssl=server.tls.client_context()
        ) as response:
            headers = response.headers
        assert (response.status, headers["x-user-limit-24hour-remaining"]) == (429, "0")
        assert int(headers["x-user-limit-24hour-reset"]) > int(headers["x-rate-limit-reset"])

    async def test_duplicate_body(self, channel: X, server: XServer) -> None:
        await channel.send(message(), idempotency_key="k", reply_to=None)
        err = await failure(channel.send(message(), idempotency_key="k", reply_to=None))
        assert "You are not allowed to create a Tweet with duplicate content." in str(err)


# -- the fake as its own process -------------------------------------------------------------------

@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The fake X API as its own process: its base URL and its CA file."""
    with standalone("x", "--tls-dir", str(tmp_path / "tls"), lines=2) as (url, ca_line):
        yield url, Path(ca_line.removeprefix("ca_file="))


class TestStandaloneProcess:
    """The fake runs as its own process; /_fake/posts shows what the channel posted."""

    async def test_posts_are_listed(self, make_channel: MakeChannel,
                                    server_process: tuple[str, Path]) -> None:
        url, ca_file = server_process
        channel = make_channel(url.removeprefix("https://"), ca_file=str(ca_file))
        sent = await channel.send(message(), idempotency_key="k", reply_to=None)
        await channel.close()
        context = ssl.create_default_context(cafile=str(ca_file))
        async with aiohttp.ClientSession() as session, \
                session.get(f"{url}/_fake/posts", ssl=context) as response:
            posts = await response.json()
        assert [(p["id"], p["text"]) for p in posts] == [(sent.remote_id, message().text)]


class TestLengthTable:
    """A message cut to 280 by the channel's count is accepted by the fake at X's weighted 280."""

    @pytest.mark.parametrize("row", sorted(LENGTH_TABLE))
    async def test_accepted_at_the_limit(self, channel: X, server: XServer, row: str) -> None:
        text = fit(LENGTH_TABLE[row] * 40, LINK, channel.max_chars, channel.measure)
        await channel.send(message(text), idempotency_key=row, reply_to=None)
        (post,) = server.posts
        assert post["text"] == unicodedata.normalize("NFC", text) and text.endswith(LINK)
        slack = max(23, *(len(word) * 2 for word in LENGTH_TABLE[row].split())) + 2
        assert 280 - slack <= x_length(text) <= 280


class TestFindOnlyThisDelivery:
    """A look-up never takes a post older than the delivery's first attempt, nor another's."""

    async def test_since_and_exclude(self, channel: X, server: XServer) -> None:
        older = await channel.send(message(), idempotency_key="a", reply_to=None)
        since = datetime.now(UTC) + timedelta(seconds=5)
        assert await channel.find(message(), idempotency_key="b", since=since) is None
        earlier = datetime.now(UTC) - timedelta(seconds=5)
        assert await channel.find(message(), idempotency_key="b", since=earlier) == older
        assert await channel.find(message(), idempotency_key="b", since=earlier,
                                  exclude=frozenset({older.remote_id})) is None

    def test_snowflake_time(self) -> None:
        assert snowflake_time(snowflake(7, now=1_764_000_000.25)) == pytest.approx(1_764_000_000.25, abs=0.001)
        # The recorded responses' id: a post made in November 2021.
        assert 1_635_724_800 < (snowflake_time("1456012973835788293") or 0) < 1_638_316_800
        assert snowflake_time("not-an-id") is None


class TestErrorBodies:
    """An answer that is not JSON, or is a page, never crashes the classification nor shows raw."""

    async def test_html_page(self, channel: X, server: XServer) -> None:
        server.mode = "html"
        err = await failure(channel.send(message(), idempotency_key="k", reply_to=None))
        assert isinstance(err, TransientError)
        assert "<" not in str(err) and len(str(err)) < 400
