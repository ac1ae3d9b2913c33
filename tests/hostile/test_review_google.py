"""Hostile review of google_business's OAuth and API calls: a token endpoint or API harsher than Google
(Infinity lifetimes, bodies that never end, errors that quote our secrets) gets a ChannelError sentence,
never a crash, and no secret in an error or a log line."""

from __future__ import annotations

import asyncio
import json
import threading
import tracemalloc
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from statusd.channels import http
from statusd.channels.base import ChannelError
from statusd.channels.google_business_api import GoogleApi

pytestmark = pytest.mark.unit

CLIENT_SECRET = "GOCSPX-client-secret-0123456789"
REFRESH_TOKEN = "1//refresh-token-abcdefghijklmnop"
ACCESS_TOKEN = "ya29.access-token-ZYXWVUTSRQPONM"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN)


class Google:
    """A token endpoint and an API on a thread, each answering what the test sets."""

    def __init__(self) -> None:
        self.token: tuple[int, str, str] = (200, json.dumps({"access_token": ACCESS_TOKEN, "expires_in": 3599}),
                                            "application/json")
        self.api: tuple[int, str] = (200, '{"ok": true}')
        self.endless = False
        self.split = False

    async def _token(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.endless:
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(b'{"access_token": "' + ACCESS_TOKEN.encode() + b'", "padding": "')
            for _ in range(256):  # 64 MiB that a reader would hold whole
                await response.write(b"x" * (1 << 18))
            await response.write(b'"}')
            return response
        status, text, kind = self.token
        return web.Response(status=status, text=text, content_type=kind)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        status, text = self.api
        if self.split:  # the answer in two pieces, as a proxy or a slow link hands it over
            response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(text[:5].encode())
            await asyncio.sleep(0.2)
            await response.write(text[5:].encode())
            return response
        return web.Response(status=status, text=text, content_type="application/json")


@pytest.fixture(scope="module")
def google() -> Iterator[tuple[Google, str]]:
    fake = Google()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def serve() -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/token", fake._token)
        app.router.add_route("*", "/v1/{tail:.*}", fake._api)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"

    runner, url = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    try:
        yield fake, url
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


Logs = list[MutableMapping[str, Any]]


def run(url: str, seconds: float = 5.0) -> tuple[dict[str, Any] | None, ChannelError | None, Logs]:
    """One API call through a fresh GoogleApi: its answer or error, and the log lines it wrote."""

    async def one() -> dict[str, Any]:
        async with http.session(seconds) as session:
            api = GoogleApi(lambda: session, seconds, token_url=f"{url}/token", client_id="client.apps",
                            client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN, source="env TEST", channel="gbp")
            return await api.call("GET", f"{url}/v1/locations/1", "read the hours")

    with structlog.testing.capture_logs() as logs:
        try:
            return asyncio.run(one()), None, logs
        except ChannelError as err:
            return None, err, logs


def clean(err: ChannelError | None, logs: list[MutableMapping[str, Any]]) -> None:
    text = f"{err} {err.__cause__ if err else ''} {logs!r}"
    for secret in SECRETS:
        assert secret not in text
    assert err is None or ("\n" not in str(err) and "Traceback" not in str(err))


@pytest.mark.parametrize("lifetime", ["Infinity", "-Infinity", "NaN", "1e400", "1e300"])
def test_token_lifetime_that_is_no_number(google: tuple[Google, str], lifetime: str) -> None:
    """`expires_in: Infinity` (JSON that Python reads) crashed with OverflowError; now it is believed for at most a day."""
    fake, url = google
    fake.token = (200, f'{{"access_token": "{ACCESS_TOKEN}", "expires_in": {lifetime}}}', "application/json")
    try:
        answer, err, logs = run(url)
    finally:
        fake.token = Google().token
    assert err is None and answer == {"ok": True}
    clean(err, logs)
    assert all(isinstance(line.get("expires_in", 0), int) and line.get("expires_in", 0) <= 86400 for line in logs)


def test_api_error_quoting_our_secrets(google: tuple[Google, str]) -> None:
    """An API error whose message echoes the bearer token (and the refresh token) never repeats them."""
    fake, url = google
    fake.api = (400, json.dumps({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                                           f"the token {ACCESS_TOKEN} made from {REFRESH_TOKEN} is not valid"}}))
    try:
        _, err, logs = run(url)
    finally:
        fake.api = Google().api
    assert err is not None and "[secret]" in str(err)
    clean(err, logs)


@pytest.mark.parametrize("escaped", [
    ACCESS_TOKEN.replace("y", "\\u0079"), CLIENT_SECRET.replace("-", "\\u002d"), REFRESH_TOKEN.replace("/", "\\/")])
def test_api_error_quoting_our_secrets_escaped(google: tuple[Google, str], escaped: str) -> None:
    """The same, with the secret written as JSON escapes: only the parsed text can be searched."""
    fake, url = google
    fake.api = (400, '{"error": {"code": 400, "status": "INVALID_ARGUMENT\\nX: ' + escaped
                + '", "message": "no ' + escaped + '"}}')
    try:
        _, err, logs = run(url)
    finally:
        fake.api = Google().api
    assert err is not None
    clean(err, logs)


def test_token_endpoint_body_that_never_ends(google: tuple[Google, str]) -> None:
    """64 MiB from the token endpoint is not held whole: at most 1 MiB is read."""
    fake, url = google
    fake.endless = True
    tracemalloc.start()
    try:
        _, err, logs = run(url, seconds=20.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        fake.endless = False
    assert peak < 16 << 20, f"{peak / 2**20:.0f} MiB held for one token answer"
    assert err is not None
    clean(err, logs)


def test_token_endpoint_answers_html(google: tuple[Google, str]) -> None:
    fake, url = google
    fake.token = (502, f"<html><script>x='{CLIENT_SECRET}'</script><h1>Bad Gateway</h1>{REFRESH_TOKEN}</html>",
                  "text/html")
    try:
        _, err, logs = run(url)
    finally:
        fake.token = Google().token
    assert err is not None and "Bad Gateway" in str(err) and "<" not in str(err)
    clean(err, logs)


HOSTILE = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=200)


@settings(max_examples=40, deadline=None)
@given(before=HOSTILE, after=HOSTILE, status=st.sampled_from([400, 401, 403, 404, 429, 500, 503]),
       where=st.sampled_from(["message", "status", "details"]))
def test_any_error_text_keeps_secrets(google: tuple[Google, str], before: str, after: str, status: int,
                                      where: str) -> None:
    """Whatever an error says around our secrets, the sentence has none of them and is one line."""
    fake, url = google
    said = f"{before}{ACCESS_TOKEN}{after}{CLIENT_SECRET}{before}{REFRESH_TOKEN}"
    error: dict[str, Any] = {"code": status, "message": said if where == "message" else before,
                             "status": said if where == "status" else "INVALID_ARGUMENT"}
    if where == "details":
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                             "fieldViolations": [{"field": said, "description": said}]}]
    fake.api = (status, json.dumps(error))
    try:
        _, err, logs = run(url)
    finally:
        fake.api = Google().api
    assert err is not None
    clean(err, logs)


def test_answer_in_two_pieces(google: tuple[Google, str]) -> None:
    """Google's JSON in two segments is read whole (one read() stopped at the first)."""
    fake, url = google
    fake.split = True
    fake.api = (200, json.dumps({"name": "locations/1", "regularHours": {"periods": []}}))
    try:
        answer, err, _ = run(url)
    finally:
        fake.split = False
        fake.api = Google().api
    assert err is None and answer == {"name": "locations/1", "regularHours": {"periods": []}}


JSONS = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | HOSTILE,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["startDate", "endDate", "openTime", "closeTime", "closed", "year", "month",
                                          "day", "hours", "minutes", "periods", "openDay", "closeDay", "x"]),
                         inner, max_size=5), max_leaves=25)
NUMBER = st.one_of(st.integers(), st.floats(), st.just(float("inf")), st.just(1e308), HOSTILE, st.none())


@settings(max_examples=300, deadline=None)
@given(period=st.one_of(JSONS, st.fixed_dictionaries({
    "startDate": st.fixed_dictionaries({"year": NUMBER, "month": NUMBER, "day": NUMBER}),
    "openTime": st.fixed_dictionaries({"hours": NUMBER, "minutes": NUMBER}),
    "closeTime": st.fixed_dictionaries({"hours": NUMBER}), "closed": st.booleans() | NUMBER})),
    regular=JSONS)
def test_any_hours_answer_is_read_or_refused(period: Any, regular: Any) -> None:
    """Whatever Google answers as hours, reading it raises only what the channel turns into a sentence
    (KeyError, TypeError, ValueError): `"hours": 1e400` was an OverflowError, an "internal error" traceback."""
    from statusd.channels import google_business_hours as hours
    from statusd.channels.google_business import READ_ERRORS

    for read in (lambda: hours.from_google(period) if isinstance(period, dict) else None,
                 lambda: hours.regular_from_google(regular if isinstance(regular, dict) else {"periods": [regular]})):
        try:
            read()
        except READ_ERRORS:
            pass
