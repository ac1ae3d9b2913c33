"""The Google Business Profile channel over real HTTP against a fake that answers like Google's APIs.

Every guarantee is checked by reading back what the fake holds: its special-hour periods
and its local posts.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd.channels import CHANNELS
from statusd.channels import google_business as module
from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.google_business import GoogleBusiness
from statusd.channels.google_business_hours import Change
from statusd.compose.message import Message
from statusd.outbox.outcome import may_have_posted
from tests.support.channels import ChannelBuilder
from tests.support.fakes.google_business import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    LOCATION,
    REFRESH_TOKEN,
    FakeGoogleBusiness,
)

pytestmark = pytest.mark.unit

PARIS = ZoneInfo("Europe/Paris")
KEY = "statusd-key-0001"
ENV = {"TEST_GBP_CLIENT": CLIENT_ID, "TEST_GBP_SECRET": CLIENT_SECRET, "TEST_GBP_REFRESH": REFRESH_TOKEN}
CHANNEL = """\
  gbp:
    type: google_business
    language: fr
    account_id: '{account}'
    location_id: '{location}'
    client_id: {{env: TEST_GBP_CLIENT}}
    client_secret: {{env: TEST_GBP_SECRET}}
    refresh_token: {{env: TEST_GBP_REFRESH}}
    api_url: {url}
    token_url: {url}/token
    timeout: 0.5s
{extra}"""

MakeChannel = Callable[..., GoogleBusiness]


def monday(weeks: int = 1) -> date:
    """A Monday at least a day ahead: its weekdays' regular hours are known (fake: Mon–Fri 9–18)."""
    today = datetime.now(PARIS).date()
    return today + timedelta(days=7 * weeks - today.weekday())


def at(day: date, hour: int = 0, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS).isoformat()


def message(level: str = "closed", *, starts: str | None = None, until: str | None = None,
            text: str = "Bibliothèque centrale : fermée. Dégât des eaux.", target: str = "main",
            kind: str = "status_changed", event: str = "evt-1") -> Message:
    return Message(text=text, language="fr", link="http://127.0.0.1:8080/#main", event_id=event, kind=kind,
                   target=target, level=level, starts=starts, until=until,
                   at=datetime.now(PARIS).isoformat())


def period(day: date, opens: tuple[int, int] | None = None, closes: tuple[int, int] | None = None) -> dict[str, Any]:
    """A period as the fake stores it (Google's proto3 JSON: zero fields left out)."""
    start = {"year": day.year, "month": day.month, "day": day.day}
    if opens is None or closes is None:
        return {"startDate": start, "closed": True}

    def tod(hm: tuple[int, int]) -> dict[str, int]:
        return {k: v for k, v in (("hours", hm[0]), ("minutes", hm[1])) if v}

    return {"startDate": start, "openTime": tod(opens), "endDate": start, "closeTime": tod(closes)}


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogleBusiness]:
    async with FakeGoogleBusiness() as fake:
        yield fake


@pytest.fixture
def make_channel(write_config: Callable[..., Path], channel_builder: ChannelBuilder,
                 google: FakeGoogleBusiness) -> MakeChannel:
    def make(extra: str = "", *, account: str = ACCOUNT, location: str = LOCATION,
             env: dict[str, str] | None = None) -> GoogleBusiness:
        section = CHANNEL.format(account=account, location=location, url=google.url, extra=extra)
        return channel_builder.build(write_config(channels=section), "gbp", GoogleBusiness, env or ENV)

    return make


@pytest.fixture
def channel(make_channel: MakeChannel) -> GoogleBusiness:
    return make_channel()


async def send(channel: GoogleBusiness, sample: Message, reply_to: Reply | None = None,
               key: str = KEY) -> Sent:
    return await channel.send(sample, idempotency_key=key, reply_to=reply_to)


def thread(sent: Sent) -> Reply:
    return Reply(parent=sent.remote_id, root=sent.remote_id)


class TestRegistered:
    """google_business is a channel type like the others, built from its section."""

    def test_registered(self) -> None:
        assert CHANNELS["google_business"] is GoogleBusiness

    def test_limit_is_a_posts_summary(self, channel: GoogleBusiness) -> None:
        assert channel.max_chars == 1500 and channel.measure("é" * 10) == 10


class TestClosureHours:
    """A closure becomes special hours: closed days, and the regular hours outside it on partial days."""

    async def test_whole_days_closed(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        mon = monday()
        sent = await send(channel, message(starts=at(mon), until=at(mon + timedelta(days=4))))
        assert google.periods() == [period(mon + timedelta(days=i)) for i in range(4)]
        assert len(Change.parse(sent.remote_id).added) == 4
        assert google.posts == {}  # a closure publishes hours, no post

    async def test_partial_days_keep_regular_hours(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        mon = monday()
        await send(channel, message(starts=at(mon, 14), until=at(mon + timedelta(days=1), 11, 30)))
        assert google.periods() == [period(mon, (9, 0), (14, 0)), period(mon + timedelta(days=1), (11, 30), (18, 0))]

    async def test_days_already_shut_need_nothing(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        sunday = monday() - timedelta(days=1)  # closed on Sundays: nothing to say
        await send(channel, message(starts=at(sunday, 8), until=at(sunday, 20)))
        assert google.periods() == []

    async def test_holiday_hours_are_kept_and_given_back(self, channel: GoogleBusiness,
                                                         google: FakeGoogleBusiness) -> None:
        mon = monday()
        holidays = [period(mon + timedelta(days=2), (10, 0), (14, 0)), period(mon + timedelta(days=14))]
        google.location.special = [dict(p) for p in holidays]
        sent = await send(channel, message(starts=at(mon), until=at(mon + timedelta(days=3))))
        assert google.periods() == [period(mon), period(mon + timedelta(days=1)), period(mon + timedelta(days=2)),
                                    holidays[1]]
        await channel.delete(sent.remote_id)
        assert google.periods() == holidays

    async def test_undo_restores_exactly(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        mon = monday()
        google.location.special = [period(mon, (10, 0), (12, 0)), period(mon, (14, 0), (16, 0))]
        before = google.periods()
        sent = await send(channel, message(starts=at(mon, 11), until=at(mon + timedelta(days=1))))
        assert google.periods() == [period(mon, (9, 0), (11, 0))]
        await channel.delete(sent.remote_id)
        assert google.periods() == before
        await channel.delete(sent.remote_id)  # a repeated undo changes nothing
        assert google.periods() == before


class TestReopening:
    """Reopening early takes back the closure's days from today on, and gives back what it displaced."""

    async def test_before_it_starts_removes_it(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        mon = monday()
        holiday = period(mon + timedelta(days=1), (10, 0), (12, 0))
        google.location.special = [dict(holiday)]
        closed = await send(channel, message(starts=at(mon), until=at(mon + timedelta(days=3))))
        await send(channel, message("open", event="evt-2"), reply_to=thread(closed), key="k2")
        assert google.periods() == [holiday]

    async def test_during_it_shortens_it(self, channel: GoogleBusiness, google: FakeGoogleBusiness,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
        mon = monday()
        closed = await send(channel, message(starts=at(mon), until=at(mon + timedelta(days=4))))
        wednesday = datetime(mon.year, mon.month, mon.day, 10, tzinfo=PARIS) + timedelta(days=2)
        monkeypatch.setattr(module, "now", lambda zone: wednesday)
        opened = await send(channel, message("open", event="evt-2"), reply_to=thread(closed), key="k2")
        assert google.periods() == [period(mon), period(mon + timedelta(days=1))]
        await channel.delete(opened.remote_id)  # undo of the reopening: closed again to Thursday
        assert google.periods() == [period(mon + timedelta(days=i)) for i in range(4)]

    async def test_a_service_update_in_between_carries_the_incident(self, channel: GoogleBusiness,
                                                                     google: FakeGoogleBusiness) -> None:
        mon = monday()
        closed = await send(channel, message(starts=at(mon), until=at(mon + timedelta(days=2))))
        wifi = await send(channel, message("open", target="main/wifi", event="evt-2"), reply_to=thread(closed),
                          key="k2")
        assert len(google.periods()) == 2
        await send(channel, message("open", event="evt-3"), reply_to=Reply(wifi.remote_id, closed.remote_id),
                   key="k3")
        assert google.periods() == []

    async def test_a_planned_closure_written_ahead_is_taken_back_too(self, channel: GoogleBusiness,
                                                                      google: FakeGoogleBusiness) -> None:
        mon = monday()
        window = {"starts": at(mon), "until": at(mon + timedelta(days=3))}
        await send(channel, message(kind="closure_planned", event="evt-0", **window), key="k0")
        assert len(google.periods()) == 3  # on Google as soon as it is announced
        started = await send(channel, message(**window), key="k1")  # the closure begins: nothing to write
        assert [p.text() for p in Change.parse(started.remote_id).held] == [
            f"{mon + timedelta(days=i)} closed" for i in range(3)]
        await send(channel, message("open", event="evt-2"), reply_to=thread(started), key="k2")
        assert google.periods() == []

    async def test_open_outside_an_incident_touches_nothing(self, channel: GoogleBusiness,
                                                            google: FakeGoogleBusiness) -> None:
        google.location.special = [period(monday())]
        await send(channel, message("open"))
        assert google.periods() == [period(monday())]


class TestLocalPosts:
    """limited and emergency also publish a local post; undo deletes it."""

    async def test_limited_posts_standard(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        sent = await send(channel, message("limited", text="Wifi en panne au 2e étage."))
        (post,) = google.posts.values()
        assert post["summary"] == "Wifi en panne au 2e étage." and post["topicType"] == "STANDARD"
        assert post["callToAction"] == {"actionType": "LEARN_MORE", "url": "http://127.0.0.1:8080/#main"}
        assert Change.parse(sent.remote_id).post == post["name"] and sent.url == post["searchUrl"]
        assert google.periods() == []
        await channel.delete(sent.remote_id)
        assert google.posts == {}

    async def test_emergency_closes_and_posts(self, make_channel: MakeChannel, google: FakeGoogleBusiness) -> None:
        channel = make_channel("    emergency_post: EVENT\n")
        mon = monday()
        sent = await send(channel, message("emergency", starts=at(mon, 12), until=at(mon, 17),
                                           text="Évacuation : alarme incendie.\nNous rouvrons à 17 h."))
        (post,) = google.posts.values()
        assert post["topicType"] == "EVENT" and post["event"]["title"] == "Évacuation : alarme incendie."
        assert post["event"]["schedule"]["startTime"] == {"hours": 12, "minutes": 0}
        assert google.periods() == [period(mon, (9, 0), (12, 0)), period(mon, (17, 0), (18, 0))]
        await channel.delete(sent.remote_id)
        assert google.posts == {} and google.periods() == []

    async def test_alert_and_none(self, make_channel: MakeChannel, google: FakeGoogleBusiness) -> None:
        channel = make_channel("    limited_post: ALERT\n    emergency_post: none\n")
        await send(channel, message("limited"))
        await send(channel, message("emergency", starts=at(monday(), 10)), key="k2")
        (post,) = google.posts.values()
        assert post["topicType"] == "ALERT" and post["alertType"] == "COVID_19"

    async def test_over_the_limit_is_refused_without_a_request(self, channel: GoogleBusiness,
                                                                google: FakeGoogleBusiness) -> None:
        with pytest.raises(PermanentError, match="1500"):
            await send(channel, message("limited", text="x" * 1501))
        assert google.requests == []

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=st.text(min_size=1, max_size=1500)
           .filter(lambda t: t.strip()))
    async def test_hostile_text_arrives_as_typed_and_is_found(self, text: str) -> None:
        async with FakeGoogleBusiness() as google:
            channel = _direct(google)
            try:
                sample = message("limited", text=text)
                sent = await send(channel, sample)
                (post,) = google.posts.values()
                assert post["summary"] == text
                found = await channel.find(sample, idempotency_key="other", since=datetime.now(PARIS))
                assert found is not None and found.remote_id == sent.remote_id
            finally:
                await channel.close()


class TestAuth:
    """The access token comes from the refresh token, is kept in memory and refreshed on 401."""

    async def test_one_token_for_many_requests(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        await send(channel, message("limited"))
        await send(channel, message("limited", text="Encore."), key="k2")
        assert google.requests.count(("POST", "/token")) == 1

    async def test_expired_token_is_refreshed_and_the_call_repeated(self, channel: GoogleBusiness,
                                                                    google: FakeGoogleBusiness) -> None:
        await send(channel, message("limited"))
        google.expire_tokens()
        await send(channel, message("limited", text="Encore."), key="k2")
        assert google.requests.count(("POST", "/token")) == 2 and len(google.posts) == 2

    async def test_revoked_refresh_token_is_permanent_and_named(self, make_channel: MakeChannel,
                                                                google: FakeGoogleBusiness) -> None:
        channel = make_channel(env={**ENV, "TEST_GBP_REFRESH": "1//revoked-refresh-token-value"})
        with pytest.raises(PermanentError, match="TEST_GBP_REFRESH") as caught:
            await send(channel, message("limited"))
        assert "invalid_grant" in str(caught.value) and "revoked-refresh" not in str(caught.value)

    async def test_whoami(self, channel: GoogleBusiness) -> None:
        assert "Bibliothèque centrale" in await channel.whoami()

    async def test_wrong_location_is_permanent(self, make_channel: MakeChannel) -> None:
        with pytest.raises(PermanentError, match="NOT_FOUND"):
            await make_channel(location="111").whoami()


class TestErrors:
    """Quotas, Google's HTML error pages, outages and stalls map to the contract's errors."""

    async def test_quota_waits_a_minute(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        google.script("quota")
        with pytest.raises(TransientError, match="RESOURCE_EXHAUSTED") as caught:
            await send(channel, message("limited"))
        assert caught.value.retry_after == 60 and "default_requests" in str(caught.value)
        assert not may_have_posted(caught.value) and google.posts == {}

    async def test_edit_quota_per_minute(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        google.edits_per_minute = 1
        await send(channel, message("limited"))
        with pytest.raises(TransientError, match="quota"):
            await send(channel, message("limited", text="Encore."), key="k2")

    @pytest.mark.parametrize("mode", ["bad_gateway", "unavailable"])
    async def test_outages_are_transient(self, channel: GoogleBusiness, google: FakeGoogleBusiness, mode: str) -> None:
        google.script(mode)
        with pytest.raises(TransientError) as caught:
            await send(channel, message("limited"))
        assert "<" not in str(caught.value) and google.posts == {}

    async def test_invalid_hours_are_refused_in_googles_shape(self, google: FakeGoogleBusiness) -> None:
        token = await _token(google)
        mon = monday()
        body = {"specialHours": {"specialHourPeriods": [period(mon), period(mon, (9, 0), (12, 0))]}}
        async with aiohttp.ClientSession() as http:
            async with http.patch(f"{google.url}/v1/locations/{LOCATION}", params={"updateMask": "specialHours"},
                                  json=body, headers={"Authorization": f"Bearer {token}"}) as answer:
                error = (await answer.json())["error"]
            bad = {"startDate": {"year": 2026, "month": 2, "day": 30}, "closed": True}
            async with http.patch(f"{google.url}/v1/locations/{LOCATION}", params={"updateMask": "specialHours"},
                                  json={"specialHours": {"specialHourPeriods": [bad]}},
                                  headers={"Authorization": f"Bearer {token}"}) as answer:
                date_error = (await answer.json())["error"]
        assert error["status"] == "INVALID_ARGUMENT" and "overlap" in str(error["details"])
        assert date_error["details"][0]["fieldViolations"][0]["field"].endswith("start_date")
        assert google.periods() == []


class TestUncertainSends:
    """A send whose answer was lost is looked up: found when made, so never made twice."""

    async def test_stalled_post_is_found_not_repeated(self, channel: GoogleBusiness,
                                                      google: FakeGoogleBusiness) -> None:
        sample = message("emergency", starts=at(monday(), 10))
        since = datetime.now(PARIS)
        google.script("ok", "ok", "stall")  # the hours read and written, then the post stalls
        with pytest.raises(TransientError) as caught:
            await send(channel, sample)
        assert may_have_posted(caught.value)
        google.mode = "ok"  # the stalled answer is let go
        found = await channel.find(sample, idempotency_key=KEY, since=since)
        assert found is not None and len(google.posts) == 1
        assert Change.parse(found.remote_id).post in google.posts
        await channel.delete(found.remote_id)
        assert google.posts == {} and google.periods() == []

    async def test_lost_hours_found_after_a_restart(self, make_channel: MakeChannel,
                                                    google: FakeGoogleBusiness) -> None:
        mon = monday()
        sample = message(starts=at(mon), until=at(mon + timedelta(days=2)))
        google.script("ok", "stall")  # the hours read, then written but the answer stalls
        with pytest.raises(TransientError):
            await send(make_channel(), sample)
        google.mode = "ok"
        fresh = make_channel()  # another process: nothing remembered
        found = await fresh.find(sample, idempotency_key=KEY, since=datetime.now(PARIS))
        assert found is not None and len(google.periods()) == 2
        await fresh.delete(found.remote_id)
        assert google.periods() == []

    async def test_not_made_is_absent(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        assert await channel.find(message("limited"), idempotency_key=KEY, since=datetime.now(PARIS)) is None
        mon = monday()
        assert await channel.find(message(starts=at(mon)), idempotency_key=KEY) is None

    async def test_another_deliverys_post_is_not_this_one(self, channel: GoogleBusiness,
                                                          google: FakeGoogleBusiness) -> None:
        sample = message("limited")
        since = datetime.now(PARIS)
        other = await send(channel, sample, key="k-other")
        found = await channel.find(sample, idempotency_key=KEY, since=since, exclude=frozenset({other.remote_id}))
        assert found is None


async def _token(google: FakeGoogleBusiness) -> str:
    form = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN}
    async with aiohttp.ClientSession() as http, http.post(google.token_url, data=form) as answer:
        return str((await answer.json())["access_token"])


def _direct(google: FakeGoogleBusiness) -> GoogleBusiness:
    """A channel made without a config file, for hypothesis's many examples."""
    from statusd.channels.options import GoogleBusinessOptions
    from statusd.config.options import Duration, PathSegment, Url
    from statusd.config.types import ChannelConfig, DeliveryConfig, Secret

    os.environ.update(ENV)  # test-only names, the same values every time

    options = GoogleBusinessOptions(account_id=PathSegment(ACCOUNT), location_id=PathSegment(LOCATION),
                                    client_id=Secret("env", "TEST_GBP_CLIENT"),
                                    client_secret=Secret("env", "TEST_GBP_SECRET"),
                                    refresh_token=Secret("env", "TEST_GBP_REFRESH"), api_url=Url(google.url),
                                    token_url=Url(google.token_url), timeout=Duration(2.0))
    secrets = {"client_id": options.client_id, "client_secret": options.client_secret,
               "refresh_token": options.refresh_token}
    config = ChannelConfig(name="gbp", type="google_business", language="fr", sites=None, events=None,
                           options=options, secrets=secrets)
    return GoogleBusiness(config, DeliveryConfig())


class TestThroughTheOutbox:
    """The outbox's worker with the real channel: a stalled post is proved there, never made twice."""

    async def test_stall_then_answer_makes_one_post(self, tmp_path: Path, channel: GoogleBusiness,
                                                    google: FakeGoogleBusiness) -> None:
        import asyncio
        import time

        from statusd.config.types import DeliveryConfig
        from statusd.events import Event, EventKind
        from statusd.model import Level, Target
        from statusd.outbox.sqlite import SqliteStore as Store
        from statusd.outbox.store import Planned
        from statusd.outbox.worker import Worker
        from tests.support.stores import facade

        store = Store(tmp_path / "statusd.db")
        ev = Event(EventKind.STATUS_CHANGED, Target.parse("main"), Level.LIMITED, Level.OPEN, {"fr": "x"},
                   datetime.now(PARIS), "alice", "r1")
        sample = message("limited", text="Wifi en panne.", event=ev.id)
        store.record([(ev, [Planned("gbp", sample)])], {}, deadline=3600.0)
        google.script("ok", "stall")  # the hours read, then the post is made and its answer stalls
        worker = Worker(facade(store), channel, DeliveryConfig())
        task = asyncio.create_task(worker.run())
        try:
            await google.wait_for_posts(1)
            deadline = time.monotonic() + 5
            await _until(lambda: _last_error(store, ev.id) is not None, deadline)  # the channel gave up
            assert "no answer" in str(_last_error(store, ev.id))
            google.mode = "ok"  # the stalled answer goes out, long after the channel gave up
            await _until(lambda: _state(store, ev.id) == "sent", deadline, worker.poke)
        finally:
            worker.stop()
            worker.poke()
            await asyncio.wait_for(task, 3.0)
        post = store.post_for(ev.id, "gbp")
        assert post is not None and post.state == "sent" and len(google.posts) == 1
        assert post.remote_id is not None and Change.parse(post.remote_id).post in google.posts
        listed = ("GET", f"/v4/accounts/{ACCOUNT}/locations/{LOCATION}/localPosts")
        assert listed in google.requests  # proved there by the look-up, not by luck
        store.close()


def _last_error(store: Any, event_id: str) -> str | None:
    post = store.post_for(event_id, "gbp")
    return None if post is None else post.last_error


def _state(store: Any, event_id: str) -> str | None:
    post = store.post_for(event_id, "gbp")
    return None if post is None else str(post.state)


async def _until(done: Callable[[], bool], deadline: float, nudge: Callable[[], None] | None = None) -> None:
    """Poll the store (another task writes it) until `done()` or the deadline."""
    import asyncio
    import time

    while not done() and time.monotonic() < deadline:
        if nudge is not None:
            nudge()
        await asyncio.sleep(0.05)


class TestIncidentThroughTheOutbox:
    """The outbox's threads carry each update's change to the next: a reopening takes back the
    closure's days, and `statusd retract` of the reopening puts them back."""

    async def test_close_reopen_retract(self, tmp_path: Path, channel: GoogleBusiness,
                                        google: FakeGoogleBusiness) -> None:
        import asyncio
        import time

        from statusd.config.types import DeliveryConfig
        from statusd.events import Event, EventKind
        from statusd.model import Level, Target
        from statusd.outbox.sqlite import SqliteStore as Store
        from statusd.outbox.store import Planned
        from statusd.outbox.worker import Worker
        from tests.support.stores import facade

        store = Store(tmp_path / "statusd.db")
        mon = monday()
        holiday = period(mon + timedelta(days=1), (10, 0), (12, 0))
        google.location.special = [dict(holiday)]

        async def say(level: Level, previous: Level, revision: str, sample: Message) -> str:
            ev = Event(EventKind.STATUS_CHANGED, Target.parse("main"), level, previous, {"fr": revision},
                       datetime.now(PARIS), "alice", revision)
            store.record([(ev, [Planned("gbp", replace(sample, event_id=ev.id))])], {}, deadline=3600.0)
            await _drain(Worker(facade(store), channel, DeliveryConfig()), store, time.monotonic() + 5, asyncio)
            return ev.id

        await say(Level.CLOSED, Level.OPEN, "r1", message(starts=at(mon), until=at(mon + timedelta(days=3))))
        closed = google.periods()
        assert closed == [period(mon + timedelta(days=i)) for i in range(3)]
        reopening = await say(Level.OPEN, Level.CLOSED, "r2", message("open"))
        assert google.periods() == [holiday]
        store.retract(reopening, "bob", None, restore_target=False)
        await _drain(Worker(facade(store), channel, DeliveryConfig()), store, time.monotonic() + 5, asyncio)
        assert google.periods() == closed
        store.close()


async def _drain(worker: Any, store: Any, deadline: float, asyncio: Any) -> None:
    """Run the worker until nothing of the channel is waiting."""
    import time

    task = asyncio.create_task(worker.run())
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if store.next_due("gbp") is None and not worker.busy:
            break
    worker.stop()
    worker.poke()
    await asyncio.wait_for(task, 3.0)


class TestOldMessages:
    """A message recorded before messages carried their times changes no hours."""

    async def test_no_times_no_hours(self, channel: GoogleBusiness, google: FakeGoogleBusiness) -> None:
        google.location.special = [period(monday())]
        old = replace(message("open"), at=None)
        closed = hours_change(period(monday()))
        await send(channel, old, reply_to=Reply(closed, closed))
        assert google.periods() == [period(monday())]


def hours_change(*held: dict[str, Any]) -> str:
    from statusd.channels.google_business_hours import from_google

    return Change(held=tuple(from_google(p) for p in held)).remote_id()
