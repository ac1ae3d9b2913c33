"""The Bluesky channel over real HTTP against a fake PDS that answers like the real one."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd.channels import CHANNELS
from statusd.channels.base import PermanentError, Reply, TransientError
from statusd.channels.bluesky import Bluesky, graphemes, link_facets
from statusd.channels.bluesky_keys import tid, tid_time
from statusd.compose.composer import Composer
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig, Secret
from statusd.events import Event, EventKind
from statusd.loading import load
from statusd.model import Level, Target
from statusd.outbox.facade import AsyncStore
from statusd.outbox.sqlite import SqliteStore
from statusd.outbox.store import SENT, Planned, Store
from statusd.outbox.worker import Worker
from tests.support import channels as support
from tests.support.channels import ChannelBuilder
from tests.support.fakes import blackhole, refusing_port
from tests.support.fakes.bluesky import SESSION_LIMIT, FakeBluesky
from tests.support.fakes.common import standalone
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent.parent
ALERTS = ROOT / "alerts"
ENV = "TEST_BSKY_APP_PASSWORD"
HANDLE = "library.bib.test"
PASSWORD = "abcd-efgh-ijkl-mnop"
KEY = "delivery-0001"
LINK = "https://bib.test/#main"
CREATED = datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)

MakeChannel = Callable[..., Bluesky]

CONFIG = """\
public_url: https://bib.test
languages: [fr, en, sv]
alerts: {alerts}
sites:
  main:
    name: {{fr: Bibliothèque centrale, en: Central Library, sv: Centralbiblioteket}}
    timezone: Europe/Paris
    services: {{wifi: Wi-Fi}}
channels:
  sky:
    type: bluesky
    language: fr
    service: {url}
    handle: {handle}
    app_password: {{env: {env}}}
    timeout: {timeout}
"""


def write_config(directory: Path, url: str, handle: str = HANDLE, timeout: str = "0.3s") -> Path:
    path = directory / "statusd.yaml"
    path.write_text(CONFIG.format(alerts=ALERTS, url=url, handle=handle, env=ENV, timeout=timeout),
                    encoding="utf-8")
    return path


def message(text: str = f"Bibliothèque centrale : fermée — dégât des eaux 🌊\n\n{LINK}",
            language: str = "fr") -> Message:
    return support.message(text, link=LINK, language=language)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBluesky]:
    async with FakeBluesky(HANDLE, PASSWORD) as pds:
        yield pds


@pytest.fixture
def make_channel(tmp_path: Path, channel_builder: ChannelBuilder) -> MakeChannel:
    """Build real Bluesky channels from a statusd.yaml; each is closed after the test."""

    def make(url: str, *, password: str = PASSWORD, handle: str = HANDLE,
             timeout: str = "0.3s") -> Bluesky:
        path = write_config(tmp_path, url, handle, timeout)
        return channel_builder.build(path, "sky", Bluesky, {ENV: password})

    return make


@pytest.fixture
def channel(make_channel: MakeChannel, fake: FakeBluesky) -> Bluesky:
    return make_channel(fake.url)


class TestConfig:
    """A bluesky channel is built from statusd.yaml and is off while its app password is unset."""

    def test_options(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(ENV, PASSWORD)
        config = load(write_config(tmp_path, "http://127.0.0.1:9"))
        sky = config.channels["sky"]
        assert (sky.type, sky.options.handle, sky.options.timeout) == ("bluesky", HANDLE, 0.3)
        assert CHANNELS["bluesky"] is Bluesky

    def test_unset_password_makes_it_inactive(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(ENV, raising=False)
        config = load(write_config(tmp_path, "http://127.0.0.1:9"))
        assert "sky" not in config.channels
        assert config.inactive["sky"] == f"off until environment variable {ENV} is set"

    def test_service_defaults_to_bsky_social(self) -> None:
        config = ChannelConfig("sky", "bluesky", "fr", None, None,
                               Bluesky.Options(HANDLE, Secret("env", ENV)), {"app_password": Secret("env", ENV)})
        channel = Bluesky(config, DeliveryConfig())
        assert channel._service == "https://bsky.social"
        assert (channel.max_chars, channel.honours_idempotency) == (300, True)


class TestMeasure:
    """Length is counted in graphemes, and every 10 UTF-8 bytes count as at least one of the 300."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", 0),
            ("abc", 3),
            ("é", 1),                                # one code point
            ("e\u0301", 1),                          # e + combining acute
            ("👨\u200d👩\u200d👧", 1),                  # a family joined by ZWJ
            ("🇫🇷🇸🇪", 2),                            # two flags
            ("👍🏽", 1),                               # skin tone modifier
            ("图书馆", 3),
            ("\r\n", 1),
            ("e" + "\u0301" * 20, 1),
        ],
    )
    def test_graphemes(self, text: str, expected: int) -> None:
        assert graphemes(text) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("ok " + LINK, 3 + len(LINK)),           # a URL counts its characters
            ("图书馆", 3),                            # 9 bytes
            ("👨\u200d👩\u200d👧", 2),                  # 18 bytes: 300 of them would be 5400
            ("e" + "\u0301" * 20, 5),                # 41 bytes
            ("é" * 300, 300),                         # 600 bytes
        ],
    )
    def test_measure(self, channel: Bluesky, text: str, expected: int) -> None:
        assert channel.measure(text) == expected


class TestLinkFacets:
    """Every URL in the text gets a link facet over its exact UTF-8 bytes."""

    @pytest.mark.parametrize(
        ("text", "urls"),
        [
            ("no link here", []),
            (LINK, [LINK]),
            (f"Fermé 🌊 — voir {LINK}.", [LINK]),
            (f"(see {LINK})", [LINK]),
            ("https://bib.test/a_(b) and http://x.test/y?z=1,",
             ["https://bib.test/a_(b)", "http://x.test/y?z=1"]),
            ("図書館 https://bib.test/図", ["https://bib.test/図"]),
        ],
    )
    def test_table(self, text: str, urls: list[str]) -> None:
        data = text.encode()
        facets = link_facets(text)
        assert [f["features"][0]["uri"] for f in facets] == urls
        for facet in facets:
            start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
            assert data[start:end].decode() == facet["features"][0]["uri"]


class TestSend:
    """A message becomes one app.bsky.feed.post record with language, time and link facets."""

    async def test_post(self, channel: Bluesky, fake: FakeBluesky) -> None:
        before = datetime.now(UTC)
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        (post,) = fake.posts
        assert sent.remote_id == f"{post.uri}|{post.cid}"
        assert sent.url == f"https://bsky.app/profile/{HANDLE}/post/{post.rkey}"
        record = post.record
        assert (record["$type"], record["text"], record["langs"]) == (
            "app.bsky.feed.post", message().text, ["fr"])
        created = datetime.fromisoformat(record["createdAt"])
        assert before.replace(microsecond=0) <= created <= datetime.now(UTC)
        (facet,) = record["facets"]
        assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": LINK}]

    async def test_one_session_for_many_posts(self, channel: Bluesky, fake: FakeBluesky) -> None:
        await channel.open()
        for number in range(SESSION_LIMIT + 5):
            await channel.send(message(f"Update {number}"), idempotency_key=f"k{number}",
                               reply_to=None)
        assert (fake.session_creates, len(fake.posts)) == (1, SESSION_LIMIT + 5)

    async def test_text_without_link_has_no_facets(
        self, channel: Bluesky, fake: FakeBluesky
    ) -> None:
        await channel.send(message("Wi-Fi rétabli", "en"), idempotency_key=KEY, reply_to=None)
        assert "facets" not in fake.posts[0].record
        assert fake.posts[0].record["langs"] == ["en"]


class TestThread:
    """Replies name the thread's first post as root and the post answered as parent."""

    async def test_thread_of_three(self, channel: Bluesky, fake: FakeBluesky) -> None:
        first = await channel.send(message("1/3"), idempotency_key="a", reply_to=None)
        second = await channel.send(message("2/3"), idempotency_key="b",
                                    reply_to=Reply(parent=first.remote_id, root=first.remote_id))
        await channel.send(message("3/3"), idempotency_key="c",
                           reply_to=Reply(parent=second.remote_id, root=first.remote_id))
        one, two, three = fake.posts
        ref = {p.record["text"]: {"uri": p.uri, "cid": p.cid} for p in fake.posts}
        assert "reply" not in one.record
        assert two.record["reply"] == {"root": ref["1/3"], "parent": ref["1/3"]}
        assert three.record["reply"] == {"root": ref["1/3"], "parent": ref["2/3"]}

    async def test_malformed_reply_id_is_permanent(
        self, channel: Bluesky, fake: FakeBluesky
    ) -> None:
        with pytest.raises(PermanentError, match="not a Bluesky post id"):
            await channel.send(message(), idempotency_key=KEY, reply_to=Reply("12345", "12345"))
        assert fake.posts == []


class TestDelete:
    """delete removes the record named by the remote id's rkey."""

    async def test_delete(self, channel: Bluesky, fake: FakeBluesky) -> None:
        kept = await channel.send(message("kept"), idempotency_key="a", reply_to=None)
        gone = await channel.send(message("gone"), idempotency_key="b", reply_to=None)
        await channel.delete(gone.remote_id)
        assert fake.deleted == [gone.remote_id.split("|")[0]]
        assert [f"{p.uri}|{p.cid}" for p in fake.posts] == [kept.remote_id]

    async def test_failed_delete_raises(self, channel: Bluesky, fake: FakeBluesky) -> None:
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        fake.mode = "error500"
        with pytest.raises(TransientError, match="InternalServerError"):
            await channel.delete(sent.remote_id)
        assert fake.deleted == []


class TestSession:
    """An expired access token is refreshed; a session is created again only if that fails."""

    @pytest.mark.parametrize("status", [400, 401])
    async def test_expired_token_is_refreshed(
        self, channel: Bluesky, fake: FakeBluesky, status: int
    ) -> None:
        await channel.send(message("before"), idempotency_key="a", reply_to=None)
        fake.expired_status = status
        fake.expire_access()
        await channel.send(message("after"), idempotency_key="b", reply_to=None)
        assert (fake.session_creates, fake.refreshes) == (1, 1)
        assert [p.record["text"] for p in fake.posts] == ["before", "after"]

    async def test_refused_refresh_creates_a_session(
        self, channel: Bluesky, fake: FakeBluesky
    ) -> None:
        await channel.open()
        fake.expire_access()
        fake.expire_refresh()
        await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert (fake.session_creates, fake.refreshes, len(fake.posts)) == (2, 0, 1)

    async def test_revoked_app_password_is_permanent(
        self, channel: Bluesky, fake: FakeBluesky
    ) -> None:
        await channel.open()
        fake.password = "another-app-password"
        fake.expire_access()
        fake.expire_refresh()
        with pytest.raises(PermanentError, match=r"refused to log in as library\.bib\.test") as caught:
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert PASSWORD not in str(caught.value)
        assert ENV in str(caught.value)
        assert fake.posts == []

    async def test_session_limit_is_transient(
        self, make_channel: MakeChannel, fake: FakeBluesky
    ) -> None:
        for _ in range(SESSION_LIMIT):
            await make_channel(fake.url).open()
        with pytest.raises(TransientError, match="RateLimitExceeded") as caught:
            await make_channel(fake.url).open()
        assert caught.value.retry_after == pytest.approx(300, abs=5)


class TestKeptSession:
    """The session is kept in the state directory (0600, no password) and reused after a restart."""

    async def test_restart_reuses_the_session(
        self, make_channel: MakeChannel, fake: FakeBluesky, tmp_path: Path
    ) -> None:
        for _ in range(5):
            channel = make_channel(fake.url)
            channel.keep_sessions(tmp_path / "state")
            await channel.open()
            await channel.close()
        assert fake.session_creates == 1
        kept = tmp_path / "state" / "sessions" / "bluesky-sky.json"
        assert kept.stat().st_mode & 0o777 == 0o600
        assert PASSWORD not in kept.read_text()

    async def test_expired_kept_session_is_refreshed(
        self, make_channel: MakeChannel, fake: FakeBluesky, tmp_path: Path
    ) -> None:
        first = make_channel(fake.url)
        first.keep_sessions(tmp_path)
        await first.open()
        fake.expire_access()
        second = make_channel(fake.url)
        second.keep_sessions(tmp_path)
        with capture_logs() as logs:
            await second.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        assert (fake.session_creates, fake.refreshes, len(fake.posts)) == (1, 1, 1)
        kept = (tmp_path / "sessions" / "bluesky-sky.json").read_text()
        assert not any(token in repr(logs) for token in re.findall(r'"(?:access|refresh)": "([^"]+)"', kept))

    async def test_refused_refresh_logs_in_again(
        self, make_channel: MakeChannel, fake: FakeBluesky, tmp_path: Path
    ) -> None:
        first = make_channel(fake.url)
        first.keep_sessions(tmp_path)
        await first.open()
        fake.expire_access()
        fake.expire_refresh()
        second = make_channel(fake.url)
        second.keep_sessions(tmp_path)
        await second.open()
        assert fake.session_creates == 2

    async def test_login_limit_holds_across_restarts(
        self, make_channel: MakeChannel, fake: FakeBluesky, tmp_path: Path
    ) -> None:
        fake.script("ratelimit")
        fake.retry_after = 120
        first = make_channel(fake.url)
        first.keep_sessions(tmp_path)
        with pytest.raises(TransientError, match="RateLimitExceeded") as caught:
            await first.open()
        assert caught.value.retry_after == pytest.approx(120, abs=2)
        restarted = make_channel(fake.url)
        restarted.keep_sessions(tmp_path)
        with pytest.raises(TransientError, match="limits logins") as caught:
            await restarted.open()
        assert caught.value.retry_after == pytest.approx(120, abs=2)
        assert fake.calls == ["com.atproto.server.createSession"]

    async def test_unwritable_state_costs_no_post(
        self, make_channel: MakeChannel, fake: FakeBluesky, tmp_path: Path
    ) -> None:
        (tmp_path / "sessions").write_text("a file where the directory should be")
        channel = make_channel(fake.url)
        channel.keep_sessions(tmp_path)
        with capture_logs() as logs:
            await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        assert len(fake.posts) == 1
        assert [e["event"] for e in logs if e["event"] == "session_not_kept"] == ["session_not_kept"]

    async def test_another_account_is_not_reused(
        self, make_channel: MakeChannel, fake: FakeBluesky, tmp_path: Path
    ) -> None:
        first = make_channel(fake.url)
        first.keep_sessions(tmp_path)
        await first.open()
        other = make_channel(fake.url, handle="other.bib.test")
        other.keep_sessions(tmp_path)
        with pytest.raises(PermanentError, match="refused to log in"):
            await other.open()
        assert fake.session_creates == 2


class TestErrors:
    """Each failure is a TransientError or a PermanentError, with a reason an operator can use."""

    async def test_bad_password(self, make_channel: MakeChannel, fake: FakeBluesky) -> None:
        channel = make_channel(fake.url, password="wrong-pass-word")
        with pytest.raises(PermanentError, match="AuthenticationRequired") as caught:
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert "wrong-pass-word" not in str(caught.value)

    async def test_rate_limited_with_reset(self, channel: Bluesky, fake: FakeBluesky) -> None:
        await channel.open()
        fake.mode, fake.retry_after = "ratelimit", 42
        with pytest.raises(TransientError, match="HTTP 429 RateLimitExceeded") as caught:
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert caught.value.retry_after == pytest.approx(42, abs=1.5)

    async def test_same_text_twice_is_two_posts(
        self, channel: Bluesky, fake: FakeBluesky
    ) -> None:
        # Routine wording repeats: two deliveries are two records, whatever their text.
        first = await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        second = await channel.send(message(), idempotency_key="delivery-0002", reply_to=None,
                                    created=CREATED)
        assert first != second and len(fake.posts) == 2

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("x" * 301, r"grapheme too big \(maximum 300, got 301\)"),
            ("e" + "\u0301" * 1500, r"string too big \(maximum 3000, got 3001\)"),
        ],
    )
    async def test_limit_exceeded(
        self, channel: Bluesky, fake: FakeBluesky, text: str, reason: str
    ) -> None:
        assert channel.measure(text) > 300
        with pytest.raises(PermanentError, match=reason):
            await channel.send(message(text), idempotency_key=KEY, reply_to=None)
        assert fake.posts == []

    async def test_exactly_at_the_limit(self, channel: Bluesky, fake: FakeBluesky) -> None:
        text = "👨‍👩‍👧" * 150 + "é" * 150
        assert channel.measure(text) == 300
        await channel.send(message(text), idempotency_key=KEY, reply_to=None)
        assert len(fake.posts) == 1

    @pytest.mark.parametrize(
        ("mode", "reason"),
        [
            ("error500", "HTTP 500 InternalServerError: Internal Server Error"),
            ("html", "HTTP 502: <html><head><title>502 Bad Gateway"),
            ("garbage", "HTTP 200: the answer is not a JSON object"),
        ],
    )
    async def test_server_trouble_is_transient(
        self, channel: Bluesky, fake: FakeBluesky, mode: str, reason: str
    ) -> None:
        await channel.open()
        fake.mode = mode
        with pytest.raises(TransientError, match=reason) as caught:
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert caught.value.retry_after is None

    async def test_hang_times_out_quickly(self, channel: Bluesky, fake: FakeBluesky) -> None:
        await channel.open()
        fake.mode = "hang"
        started = time.monotonic()
        reason = "no answer from Bluesky at http://127.0.0.1:[0-9]+ within 0.3 s"
        with pytest.raises(TransientError, match=reason):
            await channel.send(message(), idempotency_key=KEY, reply_to=None)
        assert 0.25 < time.monotonic() - started < 1.5

    async def test_connection_refused(self, make_channel: MakeChannel) -> None:
        channel = make_channel(f"http://127.0.0.1:{refusing_port()}")
        with pytest.raises(TransientError, match="cannot reach Bluesky"):
            await channel.send(message(), idempotency_key=KEY, reply_to=None)

    async def test_connected_but_silent(self, make_channel: MakeChannel) -> None:
        with blackhole() as port:
            channel = make_channel(f"http://127.0.0.1:{port}")
            with pytest.raises(TransientError, match="no answer"):
                await channel.whoami()

    async def test_record_for_another_account(self, channel: Bluesky, fake: FakeBluesky) -> None:
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        stranger = sent.remote_id.replace(fake.did, "did:plc:someoneelse")
        with pytest.raises(PermanentError, match="HTTP 403 AccountNotFound"):
            await channel.delete(stranger)


class TestWhoami:
    """whoami logs in and names the account by handle and DID, or says why it cannot."""

    async def test_ok(self, channel: Bluesky, fake: FakeBluesky) -> None:
        assert await channel.whoami() == f"@{HANDLE} ({fake.did})"
        assert fake.calls == ["com.atproto.server.createSession", "com.atproto.server.getSession"]

    async def test_at_sign_in_handle_is_accepted(
        self, make_channel: MakeChannel, fake: FakeBluesky
    ) -> None:
        channel = make_channel(fake.url, handle=f"'@{HANDLE}'")
        assert await channel.whoami() == f"@{HANDLE} ({fake.did})"

    async def test_wrong_handle(self, make_channel: MakeChannel, fake: FakeBluesky) -> None:
        with pytest.raises(PermanentError, match=r"refused to log in as nobody\.bib\.test"):
            await make_channel(fake.url, handle="nobody.bib.test").whoami()

    async def test_unreachable(self, make_channel: MakeChannel) -> None:
        with pytest.raises(TransientError, match=r"cannot reach Bluesky at http://127\.0\.0\.1"):
            await make_channel(f"http://127.0.0.1:{refusing_port()}").whoami()


class TestFind:
    """After a crash mid-send, find looks up the delivery's own record key, never the text."""

    async def test_post_made_before_the_crash(
        self, make_channel: MakeChannel, fake: FakeBluesky
    ) -> None:
        sent = await make_channel(fake.url).send(message(), idempotency_key=KEY, reply_to=None,
                                                 created=CREATED)
        fake.post("something else posted later")
        restarted = make_channel(fake.url)
        assert await restarted.find(message(), idempotency_key=KEY, since=CREATED) == sent
        assert fake.calls[-1] == "com.atproto.repo.getRecord"
        assert "com.atproto.repo.listRecords" not in fake.calls

    async def test_same_text_under_another_key_is_not_this_post(
        self, channel: Bluesky, fake: FakeBluesky
    ) -> None:
        fake.post(message().text)
        assert await channel.find(message(), idempotency_key=KEY, since=CREATED) is None

    async def test_claimed_post_is_excluded(self, channel: Bluesky, fake: FakeBluesky) -> None:
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        found = await channel.find(message(), idempotency_key=KEY, since=CREATED,
                                   exclude=frozenset({sent.remote_id}))
        assert found is None

    async def test_without_creation_time_nothing_is_claimed(
        self, channel: Bluesky, fake: FakeBluesky
    ) -> None:
        await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        assert await channel.find(message(), idempotency_key=KEY) is None

    async def test_deleted_post_is_not_found(self, channel: Bluesky, fake: FakeBluesky) -> None:
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        await channel.delete(sent.remote_id)
        assert await channel.find(message(), idempotency_key=KEY, since=CREATED) is None

    async def test_lookup_failure_is_transient(self, channel: Bluesky, fake: FakeBluesky) -> None:
        await channel.open()
        fake.mode = "error500"
        with pytest.raises(TransientError):
            await channel.find(message(), idempotency_key=KEY, since=CREATED)


class TestRecordKeys:
    """Each delivery names its own record (a TID), so a retry can never post twice."""

    def test_tid_shape_and_time(self) -> None:
        rkey = tid(CREATED, KEY)
        assert re.fullmatch(r"[234567a-j][234567a-z]{12}", rkey)
        assert tid_time(rkey) == CREATED
        assert tid(CREATED, KEY) == rkey != tid(CREATED, "delivery-0002")

    def test_tid_matches_the_spec_example(self) -> None:
        # atcute's TID.create(1724171495793000, 512) is "3l25zusnsfck2"; our clock id is hashed.
        made = datetime(2024, 8, 20, 16, 31, 35, 793000, tzinfo=UTC)
        assert tid(made, KEY)[:11] == "3l25zusnsfc"

    async def test_rkey_is_sent(self, channel: Bluesky, fake: FakeBluesky) -> None:
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        assert sent.remote_id.split("|")[0].endswith("/" + tid(CREATED, KEY))
        assert [p.rkey for p in fake.posts] == [tid(CREATED, KEY)]

    async def test_repeat_learns_the_record_exists(
        self, channel: Bluesky, fake: FakeBluesky
    ) -> None:
        first = await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        again = await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        assert again == first and len(fake.posts) == 1

    async def test_other_text_under_the_key_is_refused(
        self, channel: Bluesky, fake: FakeBluesky
    ) -> None:
        fake.post("not ours", rkey=tid(CREATED, KEY))
        with pytest.raises(PermanentError, match="another post under record key"):
            await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)

    async def test_delete_uses_the_key(self, channel: Bluesky, fake: FakeBluesky) -> None:
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        await channel.delete(sent.remote_id)
        assert fake.deleted == [sent.remote_id.split("|")[0]] and fake.posts == []


def sky_measure() -> Callable[[str], int]:
    config = ChannelConfig("sky", "bluesky", "fr", None, None,
                           Bluesky.Options(HANDLE, Secret("env", ENV)), {"app_password": Secret("env", ENV)})
    return Bluesky(config, DeliveryConfig()).measure


@pytest.fixture(scope="module")
def composer_config(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Composer, dict[str, ChannelConfig]]:
    """A Composer over the shipped alerts/ and one console channel per language."""
    directory = tmp_path_factory.mktemp("compose")
    path = directory / "statusd.yaml"
    channels = "\n".join(
        f"  c_{lang}: {{type: console, language: {lang}}}" for lang in ("fr", "en", "sv")
    )
    text = CONFIG.split("channels:")[0].format(alerts=ALERTS) + "channels:\n" + channels + "\n"
    path.write_text(text, encoding="utf-8")
    config = load(path)
    return Composer(config), dict(config.channels)


PARIS = ZoneInfo("Europe/Paris")
# Pieces heavy in graphemes or bytes: combining marks, ZWJ families, flags, CJK, URLs.
PIECES = ["e\u0301\u0302", "👨\u200d👩\u200d👧", "🇫🇷", "図書館", "a", " ", "\n", "http://x.test/é"]


class TestComposedMessagesFit:
    """Whatever staff write, the composed message fits Bluesky's rule and ends with the link."""

    @settings(max_examples=150, deadline=None)
    @given(
        kind=st.sampled_from([EventKind.STATUS_CHANGED, EventKind.CLOSURE_PLANNED,
                              EventKind.CLOSURE_REMINDER]),
        language=st.sampled_from(["fr", "en", "sv"]),
        level=st.sampled_from(list(Level)),
        target=st.sampled_from(["main", "main/wifi"]),
        text=st.one_of(
            st.text(max_size=800),
            st.lists(st.sampled_from(PIECES), max_size=700).map("".join),
            st.tuples(st.sampled_from(PIECES), st.integers(0, 400)).map(lambda p: p[0] * p[1]),
        ),
    )
    def test_fits(
        self, composer_config: tuple[Composer, dict[str, ChannelConfig]],
        kind: EventKind, language: str, level: Level, target: str, text: str,
    ) -> None:
        composer, channels = composer_config
        measure = sky_measure()
        previous = Level.CLOSED if level is Level.OPEN else Level.OPEN
        when = datetime(2026, 11, 24, 9, 0, tzinfo=PARIS)
        event = Event(kind, Target.parse(target), level, previous, {language: text}, when,
                      "desk", "r1", starts=datetime(2026, 11, 25, 18, 0, tzinfo=PARIS),
                      until=datetime(2026, 11, 26, 10, 0, tzinfo=PARIS))
        rendered = composer.render(event, channels[f"c_{language}"], 300, measure).text
        assert measure(rendered) <= 300
        assert graphemes(rendered) <= 300 and len(rendered.encode()) <= 3000
        assert rendered.endswith(LINK)
        last = link_facets(rendered)[-1]
        assert last["index"]["byteEnd"] == len(rendered.encode())
        assert last["features"][0]["uri"] == LINK


@pytest.fixture
def fake_process() -> Iterator[str]:
    """The fake as its own process: its base URL."""
    with standalone("bluesky", "--handle", HANDLE, "--password", PASSWORD) as (url,):
        yield url


class TestStandaloneProcess:
    """The fake runs as its own process and answers what it stored at /_fake/posts."""

    async def test_posts_are_listed(self, make_channel: MakeChannel, fake_process: str) -> None:
        channel = make_channel(fake_process, timeout="5s")
        sent = await channel.send(message(), idempotency_key=KEY, reply_to=None)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{fake_process}/_fake/posts") as response:
                posts = await response.json()
            control = f"{fake_process}/_fake/control"
            async with session.post(control, json={"mode": "error500"}) as response:
                assert (await response.json())["mode"] == "error500"
        assert [(f"{p['uri']}|{p['cid']}", p["record"]["text"], p["deleted"]) for p in posts] == [
            (sent.remote_id, message().text, False)
        ]
        with pytest.raises(TransientError, match="HTTP 500"):
            await channel.send(message(), idempotency_key=KEY, reply_to=None)


class TestStalledServer:
    """A PDS that stalls 30 s and then applies the create: retries make no second post."""

    pytestmark = pytest.mark.faults

    async def test_stalled_creates_make_no_duplicates(
        self, make_channel: MakeChannel, fake: FakeBluesky, tmp_path: Path
    ) -> None:
        store = SqliteStore(tmp_path / "statusd.db")
        channel = make_channel(fake.url)
        await channel.open()
        events = [Event(EventKind.STATUS_CHANGED, Target.parse(f"main/s{i}"), Level.CLOSED, Level.OPEN,
                        {"fr": "x"}, NOW, "alice", f"r{i}") for i in range(3)]
        same = message()  # three deliveries of one identical text
        store.record([(e, [Planned("sky", replace(same, event_id=e.id))]) for e in events], {},
                     deadline=120.0)
        fake.script("stall", "stall")  # the first two creates hang 30 s, then are applied
        worker = Worker(AsyncStore(store), channel, DeliveryConfig(backoff=0.05, backoff_max=0.2, timeout=0.3))
        task = asyncio.create_task(worker.run())
        try:
            await until(lambda: fake.stalled == 2 and len(fake.posts) == 3, "the retries to post")
            # The retries made the records; the stalled creates now meet a taken key.
            await until(lambda: fake.unstalled == 2, "the stalled creates to end", timeout=40.0)
        finally:
            worker.stop()
            await asyncio.wait_for(task, 5.0)
        assert len(fake.posts) == 3  # one per delivery: zero duplicates, zero losses
        assert sorted(p.rkey for p in fake.posts) == sorted(
            tid(datetime.fromtimestamp(_created(store, i), UTC), _key(store, i)) for i in (1, 2, 3))
        assert all(d.state == SENT for d in map(store.delivery, (1, 2, 3)) if d is not None)
        store.close()

    async def test_lookup_during_the_stall_misses(
        self, channel: Bluesky, fake: FakeBluesky
    ) -> None:
        await channel.open()
        fake.stall = 2.0
        fake.script("stall")
        with pytest.raises(TransientError, match="no answer"):
            await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        assert await channel.find(message(), idempotency_key=KEY, since=CREATED) is None
        await until(lambda: fake.unstalled == 1, "the stalled create to be applied")
        found = await channel.find(message(), idempotency_key=KEY, since=CREATED)
        again = await channel.send(message(), idempotency_key=KEY, reply_to=None, created=CREATED)
        assert found == again and len(fake.posts) == 1


def _created(store: Store, delivery_id: int) -> float:
    delivery = store.delivery(delivery_id)
    assert delivery is not None
    return delivery.created_at


def _key(store: Store, delivery_id: int) -> str:
    delivery = store.delivery(delivery_id)
    assert delivery is not None
    return delivery.idempotency_key
