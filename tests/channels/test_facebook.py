"""The Facebook page channel over real HTTP against a fake Graph API that answers like Facebook."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as event_note
from hypothesis import strategies as st
from multidict import CIMultiDict

from statusd.channels import CHANNELS
from statusd.channels.base import DuplicateError, PermanentError, Reply, Sent, TransientError
from statusd.channels.facebook import MAX_CHARS, FacebookPage, feed_fields
from statusd.channels.facebook_errors import DEFAULT_WAIT, answer, classify, usage_retry_after
from statusd.compose.composer import Composer
from statusd.compose.message import Message
from statusd.config.load import Config
from statusd.config.options import PathSegment
from statusd.config.types import ChannelConfig, DeliveryConfig, Secret
from statusd.events import STAFF_KINDS, Event
from statusd.loading import load
from statusd.model import Level, Target
from statusd.textfit import SEPARATOR, fit
from tests.conftest import ALERTS, BASE, CONSOLE
from tests.support import channels as support
from tests.support.channels import LENGTH_TABLE, LINK, TEXT, ChannelBuilder, linked
from tests.support.fakes import blackhole, refusing_port
from tests.support.fakes.common import standalone
from tests.support.fakes.facebook import RESPONSES, FakeGraph

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent.parent
ENV = "TEST_FACEBOOK_TOKEN"
TOKEN = "EAAB-page-token-for-tests-0123456789"
PAGE = "104857600123456"
KEY = "delivery-0001"

MakeChannel = Callable[..., FacebookPage]

CHANNEL = """\
  fb:
    type: facebook
    language: fr
    page_id: '{page}'
    token: {{env: {env}}}
    graph_url: {url}
    timeout: {timeout}
"""


def message(text: str = TEXT, *, link: str | None = LINK) -> Message:
    """A message as the Composer makes it: the body, a blank line, the link."""
    return support.message(linked(text, link), link=link)


def recorded(name: str) -> dict[str, object]:
    """A recorded Graph error object from tests/support/fakes/responses/facebook."""
    body = json.loads((RESPONSES / f"{name}.json").read_text(encoding="utf-8"))["body"]
    error: dict[str, object] = body["error"]
    return error


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(token=TOKEN, page_id=PAGE) as fake:
        yield fake


@pytest.fixture
def make_channel(write_config: Callable[..., Path], channel_builder: ChannelBuilder) -> MakeChannel:
    """Build real FacebookPage channels from a statusd.yaml; each is closed after the test."""

    # 5 s: an answer late on a loaded machine is no failure of these tests; the hang test sets 0.3 s.
    def make(url: str, *, token: str = TOKEN, timeout: str = "5s") -> FacebookPage:
        path = write_config(channels=CHANNEL.format(page=PAGE, env=ENV, url=url, timeout=timeout))
        return channel_builder.build(path, "fb", FacebookPage, {ENV: token})

    return make


@pytest.fixture
def channel(make_channel: MakeChannel, graph: FakeGraph) -> FacebookPage:
    return make_channel(graph.graph_url)


async def post(channel: FacebookPage, sample: Message | None = None,
               reply_to: Reply | None = None) -> Sent:
    return await channel.send(sample or message(), idempotency_key=KEY, reply_to=reply_to)


class TestConfig:
    """The channel is registered, built from statusd.yaml, and off while its token is unset."""

    def test_registered_under_its_kind(self) -> None:
        assert CHANNELS["facebook"] is FacebookPage
        assert (FacebookPage.kind, FacebookPage.honours_idempotency) == ("facebook", False)

    def test_options_loaded(self, make_channel: MakeChannel) -> None:
        channel = make_channel("http://127.0.0.1:9/v21.0")
        assert (channel.name, channel.language, channel.max_chars) == ("fb", "fr", MAX_CHARS)
        assert channel.measure("Wi-Fi ✓ 图书馆 👩🏽‍💻") == len("Wi-Fi ✓ 图书馆 👩🏽‍💻")

    def test_token_unset_makes_it_inactive(
        self, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(ENV, raising=False)
        channels = CHANNEL.format(page=PAGE, env=ENV, url="http://127.0.0.1:9", timeout="1s")
        config = load(write_config(channels=channels))
        assert "fb" not in config.channels
        assert config.inactive["fb"] == f"off until environment variable {ENV} is set"


class TestSend:
    """A message becomes one feed post: the text without its link, the link as an attachment."""

    async def test_posts_once_as_the_page(self, channel: FacebookPage, graph: FakeGraph) -> None:
        sent = await post(channel)
        (stored,) = graph.posts
        assert sent == Sent(stored.id, f"https://www.facebook.com/{stored.id}")
        assert stored.id.startswith(f"{PAGE}_")
        assert (stored.message, stored.link) == ("Bibliothèque centrale : fermé. Dégât des eaux.",
                                                 LINK)

    async def test_token_in_header_never_in_url(
        self, channel: FacebookPage, graph: FakeGraph
    ) -> None:
        await post(channel)
        await channel.whoami()
        await channel.find(message(), idempotency_key=KEY)
        assert [r.authorization for r in graph.requests] == [f"Bearer {TOKEN}"] * 3
        assert all(TOKEN not in json.dumps(r.query) + r.path for r in graph.requests)
        assert all("access_token" not in r.form for r in graph.requests)

    @pytest.mark.parametrize(
        ("text", "link", "fields"),
        [
            (f"Fermé.{SEPARATOR}{LINK}", LINK, {"message": "Fermé.", "link": LINK}),
            (LINK, LINK, {"link": LINK}),
            ("Fermé… voir le site", LINK, {"message": "Fermé… voir le site", "link": LINK}),
            (f"Fermé.{SEPARATOR}{LINK}", None, {"message": f"Fermé.{SEPARATOR}{LINK}"}),
            (f"Voir {LINK} et {LINK}", LINK, {"message": f"Voir {LINK} et {LINK}", "link": LINK}),
        ],
    )
    def test_feed_fields(self, text: str, link: str | None, fields: dict[str, str]) -> None:
        sample = Message(text, "fr", link, "e", "status_changed", "main", "closed")
        assert feed_fields(sample) == fields

    async def test_unreadable_success_is_transient(
        self, channel: FacebookPage, graph: FakeGraph
    ) -> None:
        graph.mode = "html"
        expected = re.escape("HTTP 200 with no JSON: Facebook | Error")
        with pytest.raises(TransientError, match=expected):
            await post(channel)


class TestThread:
    """Updates in a thread are comments on its first post, each with its own id."""

    async def test_thread_of_three(self, channel: FacebookPage, graph: FakeGraph) -> None:
        first = await post(channel, message("Fermé : dégât des eaux."))
        second = await post(channel, message("Mise à jour : pompiers sur place."),
                            Reply(parent=first.remote_id, root=first.remote_id))
        third = await post(channel, message("Réouverture demain 10:00."),
                           Reply(parent=second.remote_id, root=first.remote_id))
        assert len({first.remote_id, second.remote_id, third.remote_id}) == 3
        assert [p.id for p in graph.posts] == [first.remote_id]
        assert [(c.id, c.parent) for c in graph.comments] == [
            (second.remote_id, first.remote_id), (third.remote_id, first.remote_id)]
        # A comment has no link attachment, so its link stays in the text.
        assert graph.comments[1].message == f"Réouverture demain 10:00.{SEPARATOR}{LINK}"
        assert (second.url, third.url) == (None, None)

    async def test_reply_to_a_deleted_post(self, channel: FacebookPage, graph: FakeGraph) -> None:
        first = await post(channel)
        await channel.delete(first.remote_id)
        with pytest.raises(PermanentError, match="code 100/33: Unsupported post request"):
            await post(channel, message("Suite"), Reply(first.remote_id, first.remote_id))

    async def test_reply_to_an_impossible_id(self, channel: FacebookPage, graph: FakeGraph) -> None:
        with pytest.raises(PermanentError, match="is not a Facebook post id"):
            await post(channel, reply_to=Reply("1/../../me", "1/../../me"))
        assert graph.requests == []


class TestDelete:
    """delete removes a post or a comment; what is not there is a PermanentError."""

    async def test_post_and_comment(self, channel: FacebookPage, graph: FakeGraph) -> None:
        first = await post(channel)
        reply = await post(channel, message("Suite"), Reply(first.remote_id, first.remote_id))
        await channel.delete(reply.remote_id)
        await channel.delete(first.remote_id)
        assert graph.deleted == [reply.remote_id, first.remote_id]
        assert graph.live_posts() == []

    async def test_unknown_post(self, channel: FacebookPage, graph: FakeGraph) -> None:
        with pytest.raises(PermanentError, match="Unsupported delete request"):
            await channel.delete(f"{PAGE}_42")


class TestTokenProblems:
    """A bad page token is permanent and tells the operator to renew it, never showing it."""

    @pytest.mark.parametrize(
        ("mode", "says"),
        [
            ("expired", "has expired"),
            ("password_changed", "changed their password"),
            ("app_removed", "the app was removed"),
            ("invalid_token", "is not valid"),
        ],
    )
    async def test_code_190(
        self, channel: FacebookPage, graph: FakeGraph, mode: str, says: str
    ) -> None:
        graph.mode = mode
        with pytest.raises(PermanentError, match=says) as caught:
            await post(channel)
        assert "renew the page token" in str(caught.value)
        assert f"environment variable {ENV}" in str(caught.value)
        assert "code 190" in str(caught.value)
        assert TOKEN not in str(caught.value)
        assert graph.posts == []

    async def test_wrong_token(self, make_channel: MakeChannel, graph: FakeGraph) -> None:
        channel = make_channel(graph.graph_url, token="EAAB-not-the-right-one")
        expected = "is not valid .*code 190: Invalid OAuth"
        with pytest.raises(PermanentError, match=expected) as caught:
            await post(channel)
        assert "EAAB-not-the-right-one" not in str(caught.value)


class TestDuplicates:
    """Facebook's refusals of a repeated post read "duplicate:"; other blocks are plain refusals."""

    async def test_same_text_twice(self, channel: FacebookPage, graph: FakeGraph) -> None:
        await post(channel)
        with pytest.raises(PermanentError, match=r"^duplicate: .*code 506"):
            await post(channel)
        assert len(graph.posts) == 1

    async def test_already_posted_368(self, channel: FacebookPage, graph: FakeGraph) -> None:
        graph.mode = "already_posted"
        with pytest.raises(PermanentError, match=r"^duplicate: .*code 368"):
            await post(channel)

    async def test_policy_block_368(self, channel: FacebookPage, graph: FakeGraph) -> None:
        graph.mode = "policy_blocked"
        with pytest.raises(PermanentError, match="blocked the page") as caught:
            await post(channel)
        assert not str(caught.value).startswith("duplicate:")


class TestLimit:
    """Facebook takes 63,206 characters and refuses one more."""

    async def test_at_the_limit(self, channel: FacebookPage, graph: FakeGraph) -> None:
        await post(channel, message("é" * MAX_CHARS, link=None))
        assert len(graph.posts[0].message or "") == MAX_CHARS

    async def test_over_the_limit(self, channel: FacebookPage, graph: FakeGraph) -> None:
        with pytest.raises(PermanentError, match="code 100: .*too long"):
            await post(channel, message("é" * (MAX_CHARS + 1), link=None))
        assert graph.posts == []


class TestThrottling:
    """Codes 4, 17, 32 and 613 wait as long as the usage headers estimate, else 60 s."""

    @pytest.mark.parametrize("mode", ["throttle_app", "throttle_user", "throttle_page",
                                      "throttle_api"])
    async def test_each_code(self, channel: FacebookPage, graph: FakeGraph, mode: str) -> None:
        graph.mode = mode
        with pytest.raises(TransientError, match="rate limit") as caught:
            await post(channel)
        assert caught.value.retry_after == pytest.approx(120.0)  # 2 minutes, business use case

    @pytest.mark.parametrize(
        ("regain", "expected"),
        [
            ({"X-Page-Usage": 3}, 180.0),
            ({"X-App-Usage": 1, "X-Business-Use-Case-Usage": 5}, 300.0),
            ({}, DEFAULT_WAIT),
        ],
    )
    async def test_estimate_from_any_header(
        self, channel: FacebookPage, graph: FakeGraph, regain: dict[str, float], expected: float
    ) -> None:
        graph.mode, graph.regain = "throttle_page", regain
        with pytest.raises(TransientError) as caught:
            await post(channel)
        assert caught.value.retry_after == pytest.approx(expected)

    async def test_http_429_without_json(self) -> None:
        with pytest.raises(TransientError, match="HTTP 429") as caught:
            answer(429, CIMultiDict(), "Too Many Requests", "post to the page")
        assert caught.value.retry_after == DEFAULT_WAIT


class TestTransientFailures:
    """Graph's temporary codes, 5xx, HTML pages, silence and refusals raise TransientError."""

    @pytest.mark.parametrize(("mode", "code"), [("unknown", "code 1/99"), ("unexpected", "code 2")])
    async def test_temporary_codes(
        self, channel: FacebookPage, graph: FakeGraph, mode: str, code: str
    ) -> None:
        graph.mode = mode
        with pytest.raises(TransientError, match=f"temporary problem \\({code}"):
            await post(channel)

    async def test_500_with_an_html_body(self, channel: FacebookPage, graph: FakeGraph) -> None:
        graph.mode = "server_error"
        expected = re.escape("HTTP 500: Facebook | Error Sorry")
        with pytest.raises(TransientError, match=expected) as caught:
            await post(channel)
        assert "<" not in str(caught.value)

    async def test_hang_times_out_quickly(self, make_channel: MakeChannel, graph: FakeGraph) -> None:
        channel = make_channel(graph.graph_url, timeout="0.3s")
        graph.mode = "hang"
        started = time.monotonic()
        with pytest.raises(TransientError, match="within 0.3 s"):
            await post(channel)
        assert 0.25 < time.monotonic() - started < 1.5
        assert graph.posts == []

    async def test_connection_refused(self, make_channel: MakeChannel) -> None:
        channel = make_channel(f"http://127.0.0.1:{refusing_port()}/v21.0")
        with pytest.raises(TransientError, match="cannot reach the Graph API"):
            await post(channel)

    async def test_connected_but_silent(self, make_channel: MakeChannel) -> None:
        with blackhole() as port:
            channel = make_channel(f"http://127.0.0.1:{port}/v21.0", timeout="0.3s")
            with pytest.raises(TransientError):
                await channel.whoami()


class TestPermissions:
    """Codes 10 and 200-299 are permanent and name the permission the token lacks."""

    async def test_code_10_names_the_needed_permission(
        self, channel: FacebookPage, graph: FakeGraph
    ) -> None:
        graph.mode = "permission"
        with pytest.raises(PermanentError, match="needs the permission pages_manage_posts"):
            await post(channel)

    async def test_code_10_on_a_comment(self, channel: FacebookPage, graph: FakeGraph) -> None:
        graph.mode = "permission"
        with pytest.raises(PermanentError, match="pages_manage_engagement"):
            await post(channel, reply_to=Reply(f"{PAGE}_1", f"{PAGE}_1"))

    async def test_user_token_gets_code_200(
        self, make_channel: MakeChannel, graph: FakeGraph
    ) -> None:
        channel = make_channel(graph.graph_url, token=graph.user_token or "")
        with pytest.raises(PermanentError, match=(
                "needs the permission pages_read_engagement, pages_manage_posts .*code 200")):
            await post(channel)
        assert graph.posts == []


class TestWhoami:
    """whoami names the page the token posts as, and refuses a token for anyone else."""

    async def test_page_token(self, channel: FacebookPage) -> None:
        assert await channel.whoami() == f"Facebook page Bibliothèque centrale (id {PAGE})"

    async def test_user_token(self, make_channel: MakeChannel, graph: FakeGraph) -> None:
        channel = make_channel(graph.graph_url, token=graph.user_token or "")
        with pytest.raises(PermanentError, match="is for 'Jane Librarian' .*not a user token"):
            await channel.whoami()

    async def test_expired(self, channel: FacebookPage, graph: FakeGraph) -> None:
        graph.mode = "expired"
        with pytest.raises(PermanentError, match="has expired"):
            await channel.whoami()

    async def test_unreachable(self, make_channel: MakeChannel) -> None:
        channel = make_channel(f"http://127.0.0.1:{refusing_port()}")
        with pytest.raises(TransientError, match="cannot reach"):
            await channel.whoami()


class TestFindAfterCrash:
    """find recovers a post whose answer was lost, and only a recent one with the same text."""

    async def test_post_made_answer_lost(self, channel: FacebookPage, graph: FakeGraph) -> None:
        graph.script("drop_after_post")
        with pytest.raises(TransientError):
            await post(channel)
        found = await channel.find(message(), idempotency_key=KEY)
        (stored,) = graph.posts
        assert found == Sent(stored.id, f"https://www.facebook.com/{stored.id}")

    async def test_post_not_made(self, channel: FacebookPage, graph: FakeGraph) -> None:
        await post(channel, message("Autre chose"))
        graph.script("server_error")
        with pytest.raises(TransientError):
            await post(channel)
        assert await channel.find(message(), idempotency_key=KEY) is None

    async def test_old_post_with_the_same_text(
        self, channel: FacebookPage, graph: FakeGraph
    ) -> None:
        await post(channel)
        graph.posts[0].created -= 2 * 3600  # the test config's delivery deadline is 1 h
        assert await channel.find(message(), idempotency_key=KEY) is None

    async def test_deleted_post_is_not_found(self, channel: FacebookPage, graph: FakeGraph) -> None:
        sent = await post(channel)
        await channel.delete(sent.remote_id)
        assert await channel.find(message(), idempotency_key=KEY) is None

    async def test_thread_comment_made_answer_lost(self, channel: FacebookPage, graph: FakeGraph) -> None:
        """A thread update is a comment, not in the feed: it is looked up under its post."""
        first = await post(channel)
        reply = Reply(parent=first.remote_id, root=first.remote_id)
        update = message("Toujours fermée : expertise en cours.")
        graph.script("drop_after_post")
        with pytest.raises(TransientError):
            await channel.send(update, idempotency_key=KEY, reply_to=reply)
        found = await channel.find(update, idempotency_key=KEY, reply_to=reply)
        (comment,) = graph.comments
        assert found == Sent(comment.id, None)
        assert await channel.find(message("Pas ce texte"), idempotency_key=KEY, reply_to=reply) is None

    async def test_lookup_failure_raises(self, channel: FacebookPage, graph: FakeGraph) -> None:
        graph.mode = "throttle_page"
        with pytest.raises(TransientError):
            await channel.find(message(), idempotency_key=KEY)


class TestClassify:
    """Each recorded Graph error, and odd answers, map to the right error and wait."""

    @pytest.mark.parametrize(
        ("name", "error", "start"),
        [
            ("expired", PermanentError, "the page access token has expired"),
            ("invalid_token", PermanentError, "the page access token is not valid"),
            ("duplicate", DuplicateError, "duplicate:"),
            ("already_posted", DuplicateError, "duplicate:"),
            ("policy_blocked", PermanentError, "Facebook blocked"),
            ("throttle_api", TransientError, "Facebook rate limit"),
            ("unexpected", TransientError, "Facebook had a temporary problem"),
            ("permission_200", PermanentError, "the page token may not post"),
            ("too_long", PermanentError, "Facebook refused to post to the page"),
            ("missing_token", PermanentError, "the page access token is missing"),
        ],
    )
    def test_recorded(self, name: str, error: type[Exception], start: str) -> None:
        caught = classify(recorded(name), 400, CIMultiDict(), "post to the page")
        assert type(caught) is error
        assert str(caught).startswith(start)

    @pytest.mark.parametrize(
        ("status", "error_object", "kind"),
        [
            (500, {"code": 99999, "message": "?"}, TransientError),
            (400, {"code": 99999, "message": "?", "is_transient": True}, TransientError),
            (400, {"code": "190", "message": "not a number"}, PermanentError),
            (400, {}, PermanentError),
        ],
    )
    def test_unknown_codes(self, status: int, error_object: dict[str, object],
                           kind: type[Exception]) -> None:
        assert type(classify(error_object, status, CIMultiDict(), "post")) is kind

    @pytest.mark.parametrize(
        ("status", "text", "kind"),
        [
            (502, "<html><title>502 Bad Gateway</title></html>", TransientError),
            (503, "", TransientError),
            (408, "timeout", TransientError),
            (400, "<html>Bad Request</html>", PermanentError),
            (404, "not json", PermanentError),
            (200, "", TransientError),
            (200, "[1, 2]", TransientError),
        ],
    )
    def test_non_json_bodies(self, status: int, text: str, kind: type[Exception]) -> None:
        with pytest.raises((TransientError, PermanentError)) as caught:
            answer(status, CIMultiDict(), text, "post to the page")
        assert type(caught.value) is kind
        assert "<" not in str(caught.value)


class TestUsageHeaders:
    """usage_retry_after reads minutes from any usage header, and never trips on odd values."""

    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"X-Page-Usage": '{"call_count":100,"estimated_time_to_regain_access":4}'}, 240.0),
            ({"X-Business-Use-Case-Usage": json.dumps({"1": [
                {"type": "pages", "estimated_time_to_regain_access": 1},
                {"type": "pages", "estimated_time_to_regain_access": 7}]})}, 420.0),
            ({"X-App-Usage": '{"call_count":100,"total_time":20}'}, None),
            ({"X-Page-Usage": '{"estimated_time_to_regain_access":0}'}, None),
            ({"X-Page-Usage": '{"estimated_time_to_regain_access":"5"}'}, None),
            ({"X-Page-Usage": '{"estimated_time_to_regain_access":-5}'}, None),
            ({"X-Page-Usage": '{"estimated_time_to_regain_access":true}'}, None),
            ({"X-Page-Usage": "not json"}, None),
            ({}, None),
        ],
    )
    def test_table(self, headers: dict[str, str], expected: float | None) -> None:
        assert usage_retry_after(CIMultiDict(headers)) == expected

    @given(st.text(), st.text(), st.text())
    def test_never_negative_or_infinite(self, app: str, page: str, business: str) -> None:
        headers = CIMultiDict({"X-App-Usage": app, "X-Page-Usage": page,
                               "X-Business-Use-Case-Usage": business})
        result = usage_retry_after(headers)
        assert result is None or 0 < result <= 24 * 3600

    @given(st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
            st.sampled_from(["estimated_time_to_regain_access", "x", "123"]), inner, max_size=3),
    ))
    def test_any_json_shape(self, value: object) -> None:
        try:
            encoded = json.dumps(value)
        except ValueError:
            return  # NaN and infinities are not JSON; nothing to send
        result = usage_retry_after(CIMultiDict({"X-Business-Use-Case-Usage": encoded}))
        assert result is None or 0 < result <= 24 * 3600


# -- every composed message fits ------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")
# Latin with accents, CJK, emoji with modifiers and joiners, combining marks, odd spaces.
PIECE = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8) | st.sampled_from(
    ["图书馆", "👩🏽‍💻", "e\u0301", "\u202f", "🇸🇪", "\n\n", " ", "http://x.test/a"])
ANY_TEXT = st.lists(PIECE, max_size=40).map("".join)


@pytest.fixture(scope="module")
def composed_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = tmp_path_factory.mktemp("facebook") / "statusd.yaml"
    path.write_text(BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h"), encoding="utf-8")
    (path.parent / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
    return load(path)


class TestComposedMessagesFit:
    """Whatever staff write, the composed text fits Facebook's count and ends with the link."""

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        text=ANY_TEXT,
        long=st.booleans(),
        language=st.sampled_from(["fr", "en", "sv"]),
        kind=st.sampled_from(STAFF_KINDS),
        level=st.sampled_from(list(Level)),
        target=st.sampled_from(["main", "main/wifi", "annexe"]),
    )
    def test_fits(self, composed_config: Config, text: str, long: bool, language: str,
                  kind: object, level: Level, target: str) -> None:
        # A long message is the text repeated to just over the limit, so it must be cut.
        repeat = MAX_CHARS // max(len(text), 1) + 1 if long else 1
        settings_ = ChannelConfig("fb", "facebook", language, None, None,
                                  FacebookPage.Options(PathSegment(PAGE), Secret("env", ENV)),
                                  {"token": Secret("env", ENV)})
        channel = FacebookPage(settings_, DeliveryConfig())  # no network until used
        at = datetime(2026, 11, 24, 9, 0, tzinfo=PARIS)
        event = Event(kind, Target.parse(target), level,  # type: ignore[arg-type]
                      Level.OPEN if level is not Level.OPEN else Level.CLOSED,
                      {language: text * repeat}, at, "desk", "r1",
                      starts=at + timedelta(days=1), until=at + timedelta(days=2))
        site = composed_config.sites[Target.parse(target).site]
        rendered = Composer(composed_config).render(event, settings_, channel.max_chars,
                                                    channel.measure)
        assert channel.measure(rendered.text) <= MAX_CHARS
        assert len(rendered.text) <= MAX_CHARS  # Facebook's own rule, as the fake applies it
        event_note("shortened" if rendered.text.count("…") > text.count("…") * repeat
                   else "whole")
        assert rendered.text.endswith(site.url)
        fields = feed_fields(rendered)
        assert fields["link"] == site.url
        assert SEPARATOR.join([fields["message"], site.url]) == rendered.text


# -- the fake as its own process -----------------------------------------------------------------

@pytest.fixture
def graph_process() -> Iterator[str]:
    """The fake Graph API as its own process: its base URL."""
    with standalone("facebook", "--token", TOKEN, "--page-id", PAGE) as (url,):
        yield url


class TestStandaloneProcess:
    """The fake runs as its own process, shows what it stored, and can be switched."""

    async def test_posts_are_listed(self, make_channel: MakeChannel, graph_process: str) -> None:
        channel = make_channel(graph_process, timeout="5s")
        sent = await post(channel)
        reply = await post(channel, message("Suite"), Reply(sent.remote_id, sent.remote_id))
        async with aiohttp.ClientSession() as session, \
                session.get(f"{graph_process}/_fake/posts") as response:
            stored = await response.json()
        assert [(s["id"], s["kind"], s["parent"]) for s in stored] == [
            (sent.remote_id, "post", None), (reply.remote_id, "comment", sent.remote_id)]
        assert stored[0]["link"] == LINK

    async def test_mode_switch(self, make_channel: MakeChannel, graph_process: str) -> None:
        channel = make_channel(graph_process, timeout="5s")
        change = {"mode": "throttle_user"}
        async with aiohttp.ClientSession() as session, \
                session.post(f"{graph_process}/_fake/mode", json=change) as response:
            assert await response.json() == change
        with pytest.raises(TransientError) as caught:
            await post(channel)
        assert caught.value.retry_after == pytest.approx(120.0)


class TestLengthTable:
    """A message cut to 63,206 characters by the channel's count is accepted by the fake."""

    @pytest.mark.parametrize("row", sorted(LENGTH_TABLE))
    async def test_accepted_at_the_limit(self, channel: FacebookPage, graph: FakeGraph, row: str) -> None:
        body = LENGTH_TABLE[row] * (70_000 // len(LENGTH_TABLE[row]))
        text = fit(body, LINK, channel.max_chars, channel.measure)
        await channel.send(support.message(text), idempotency_key=row, reply_to=None)
        (stored,) = graph.posts
        assert stored.link == LINK and stored.message is not None
        assert MAX_CHARS - 100 <= len(stored.message) <= len(text) <= MAX_CHARS


class TestFindOnlyThisDelivery:
    """A look-up never takes another delivery's post with the same words."""

    async def test_exclude(self, channel: FacebookPage, graph: FakeGraph) -> None:
        sent = await post(channel)
        assert await channel.find(message(), idempotency_key=KEY) == sent
        assert await channel.find(message(), idempotency_key=KEY, exclude=frozenset({sent.remote_id})) is None


class TestErrorBodies:
    """A page instead of JSON, on success or failure, is a short sanitised reason, never raw."""

    @pytest.mark.parametrize("mode", ["html", "server_error"])
    async def test_page(self, channel: FacebookPage, graph: FakeGraph, mode: str) -> None:
        graph.mode = mode
        with pytest.raises(TransientError) as caught:
            await post(channel)
        assert "<" not in str(caught.value) and TOKEN not in str(caught.value)
        assert len(str(caught.value)) < 400
