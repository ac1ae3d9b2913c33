"""Hostile review of Web Push: a stranger's endpoint must never aim the daemon at this host or its network,
a push service's answer cannot hold it, and nobody can fill the list of subscriptions in an afternoon."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from statusd.channels import http
from statusd.channels.webpush_guard import PublicResolver, public_address, sendable
from statusd.channels.webpush_keys import Signer, generate, load
from statusd.channels.webpush_send import Fanout, Push
from statusd.channels.webpush_store import Subscription, Subscriptions, store_file
from statusd.web.follow import BURST
from statusd.web.follow_checks import Invalid, endpoint_of
from tests.conftest import WriteConfig
from tests.push.api import call, follow_server
from tests.push.conftest import push_channels
from tests.push.test_follow_api import keys, request

INSIDE = [
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://localhost:8443/push", "https://LOCALHOST./push", "https://api.localhost/push",
    "https://[::1]/push", "https://[::ffff:127.0.0.1]/push", "https://[fe80::1]/push",
    "https://127.0.0.1/push", "https://127.1/push", "https://10.0.0.5/push", "https://192.168.1.1/push",
    "https://2130706433/push", "https://0x7f000001/push", "https://0177.0.0.1/push",
    "https://intranet/push", "https://printer.local/push", "https://nas.home.arpa/push",
]


@pytest.mark.unit
class TestEndpoints:
    """The subscribe API's check: an https:// DNS name on the internet, nothing else."""

    @pytest.mark.parametrize("endpoint", INSIDE)
    def test_inside_is_refused(self, endpoint: str) -> None:
        with pytest.raises(Invalid, match="push service on the internet"):
            endpoint_of(endpoint, loopback=False)
        assert not sendable(endpoint, loopback=True)

    @pytest.mark.parametrize("endpoint", ["file:///etc/passwd", "http://127.0.0.1:80/x", "gopher://a.b/x",
                                          "http://localhost:8080/x", "https://user:pw@fcm.googleapis.com/x"])
    def test_other_schemes_and_userinfo(self, endpoint: str) -> None:
        with pytest.raises(Invalid):
            endpoint_of(endpoint, loopback=False)
        assert not sendable(endpoint, loopback=False)

    def test_real_push_services_pass(self) -> None:
        for endpoint in ("https://fcm.googleapis.com/fcm/send/abc", "https://updates.push.services.mozilla.com/wpush/v2/x",
                         "https://web.push.apple.com/QGq", "https://wns2-par02p.notify.windows.com/w/?token=a"):
            assert endpoint_of(endpoint, loopback=False) == endpoint and sendable(endpoint, loopback=False)

    @given(st.ip_addresses())
    def test_no_address_literal(self, ip: object) -> None:
        host = f"[{ip}]" if ":" in str(ip) else str(ip)
        with pytest.raises(Invalid):
            endpoint_of(f"https://{host}/push", loopback=False)

    @given(st.ip_addresses())
    def test_public_addresses(self, ip: object) -> None:
        text = str(ip)
        if public_address(text):
            assert not text.startswith(("127.", "10.", "192.168.", "169.254.", "::1", "fe80"))


@pytest.mark.unit
async def test_resolver_drops_inside_addresses() -> None:
    """A name that resolves to this host (DNS rebinding, a hostile record) is unreachable."""
    resolver = PublicResolver()
    try:
        with pytest.raises(OSError, match="resolves only to addresses"):
            await resolver.resolve("localhost", 443)
    finally:
        await resolver.close()


class Hosts:
    """Two local HTTP servers: the 'push service' an endpoint names, and an 'internal' one that must stay unhit."""

    def __init__(self) -> None:
        self.internal: list[str] = []
        self.push: list[str] = []
        self.mode = "redirect"

    async def _internal(self, request: web.Request) -> web.StreamResponse:
        self.internal.append(request.method)
        return web.Response(status=201)

    async def _push(self, request: web.Request) -> web.StreamResponse:
        self.push.append(request.method)
        if self.mode == "redirect":
            raise web.HTTPTemporaryRedirect(f"{self.internal_url}/latest/meta-data/")
        response = web.StreamResponse(status=201)
        await response.prepare(request)
        for _ in range(100_000):  # a body that does not stop within the session's timeout
            await response.write(b"x" * 65536)
            await asyncio.sleep(0.01)
        return response

    async def __aenter__(self) -> Hosts:
        self._runners = []
        urls = []
        for handler in (self._internal, self._push):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self._runners.append(runner)
            urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        self.internal_url, self.push_url = urls
        return self

    async def __aexit__(self, *exc: object) -> None:
        for runner in self._runners:
            await runner.cleanup()


@pytest.fixture
async def hosts() -> AsyncIterator[Hosts]:
    async with Hosts() as found:
        yield found


@pytest.fixture
def vapid_key(tmp_path: Path) -> Path:
    path = tmp_path / "vapid.pem"
    path.write_text(generate()[0], encoding="ascii")
    path.chmod(0o600)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Subscriptions]:
    subs = Subscriptions(store_file(tmp_path))
    yield subs
    subs.close()


async def fan_out(store: Subscriptions, endpoints: list[str], *, loopback: bool, p256dh: str | None = None,
                  seconds: float = 3.0) -> tuple[int, int, int, int]:
    """(accepted, gone, refused, left) after one run to `endpoints` (rows put straight in push.sqlite)."""
    subs = []
    for i, endpoint in enumerate(endpoints):
        key = keys()
        subs.append(Subscription(endpoint, p256dh if p256dh and i == 0 else key["p256dh"], key["auth"],
                                 "main", "status", "fr"))
    store.subscribe_many(subs, "2026-12-02")
    async with http.session(seconds) as session:
        fanout = Fanout(store, Signer(load(generate()[0]), "mailto:it@library.example"), lambda: session, 4,
                        loopback=loopback)
        store.start_job("job", "main", "fr", True)
        done = (await fanout.run("job", Push(b'{"body":"closed"}', "t" * 32, 60, "normal"))).progress
    return done.accepted, done.gone, done.refused, done.left


@pytest.mark.e2e
class TestFanout:
    async def test_old_rows_inside_are_never_sent_to(self, hosts: Hosts, store: Subscriptions) -> None:
        """A row written before the check (or by hand) that names this host gets no request, and goes."""
        assert await fan_out(store, [f"{hosts.internal_url}/push"], loopback=False) == (0, 1, 0, 0)
        assert hosts.internal == [] and store.count() == 0

    async def test_redirect_is_not_followed(self, hosts: Hosts, store: Subscriptions) -> None:
        """A push 'service' that answers 307 to the metadata address gets us no further."""
        accepted, _, refused, _ = await fan_out(store, [f"{hosts.push_url}/push/a"], loopback=True)
        assert hosts.push == ["POST"] and hosts.internal == []
        assert (accepted, refused) == (0, 1)

    async def test_endless_answer_does_not_hold_the_fanout(self, hosts: Hosts, store: Subscriptions) -> None:
        """201 with a body that never ends: accepted at once, not read until the timeout and retried."""
        hosts.mode = "endless"
        assert await fan_out(store, [f"{hosts.push_url}/push/a"], loopback=True, seconds=2.0) == (1, 0, 0, 0)
        assert hosts.push == ["POST"]

    async def test_one_bad_key_stops_no_one(self, hosts: Hosts, store: Subscriptions) -> None:
        """A p256dh that is not a P-256 point (written by hand) is refused; the others still get theirs."""
        hosts.mode = "endless"
        bad = "B" + "A" * 86  # 65 bytes, but not on the curve
        accepted, _, refused, left = await fan_out(
            store, [f"{hosts.push_url}/push/bad", f"{hosts.push_url}/push/good"], loopback=True, p256dh=bad)
        assert (accepted, refused, left) == (1, 1, 0)


@pytest.mark.e2e
def test_subscription_flood_is_throttled(write_config: WriteConfig, vapid_key: Path,
                                         tmp_path: Path) -> None:
    """A script posting well-formed subscriptions as fast as it can is held to the bucket, with Retry-After."""
    with follow_server(write_config(channels=push_channels(vapid_key)), tmp_path / "state") as url:
        answers = [call(f"{url}/push/subscribe",
                        request(endpoint=f"https://victim.example.org/push/{i}", keys=keys()))
                   for i in range(BURST + 60)]
    statuses = [status for status, _, _ in answers]
    refused = [(answer, headers) for status, answer, headers in answers if status == 429]
    assert statuses[:BURST] == [201] * BURST and refused
    assert all(h.get("Retry-After") == "60" and "try again" in a["error"] for a, h in refused)
    db = sqlite3.connect(store_file(tmp_path / "state"))
    try:
        kept = db.execute("SELECT count(*) FROM subscriptions").fetchone()[0]
    finally:
        db.close()
    assert kept == statuses.count(201) < BURST + 60


@pytest.mark.e2e
async def test_channel_session_resolves_publicly(vapid_key: Path, write_config: WriteConfig,
                                                 hosts: Hosts) -> None:
    """The channel's own session (loopback off) cannot reach a name that resolves to this host."""
    from statusd import loading
    from statusd.channels.webpush import WebPush

    config = loading.load(write_config(channels=push_channels(vapid_key, loopback=False)))
    channel = WebPush(config.channels["push-fr"], config.delivery)
    try:
        with pytest.raises(aiohttp.ClientError):
            async with channel._http_session().post(hosts.internal_url.replace("127.0.0.1", "localhost")):
                pass
    finally:
        await channel.close()
    assert hosts.internal == []


@pytest.mark.e2e
def test_body_in_two_segments(write_config: WriteConfig, vapid_key: Path, tmp_path: Path) -> None:
    """A subscription whose body arrives in two TCP segments (as a slow phone sends it) is taken whole:
    one read() returned only the first part, and a good request got 400."""
    import json
    import socket
    import time
    from urllib.parse import urlsplit

    with follow_server(write_config(channels=push_channels(vapid_key)), tmp_path / "state") as url:
        body = json.dumps(request(keys=keys())).encode()
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            sock.sendall(b"POST /push/subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:40])
            time.sleep(0.3)
            sock.sendall(body[40:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]


@pytest.mark.e2e
def test_state_directory_that_cannot_be_made(write_config: WriteConfig, vapid_key: Path, tmp_path: Path) -> None:
    """push.sqlite's directory is a file (or unwritable): 503 and a sentence, not a 500 traceback."""
    blocked = tmp_path / "state"
    blocked.write_text("not a directory", encoding="utf-8")
    with structlog.testing.capture_logs() as logs, \
            follow_server(write_config(channels=push_channels(vapid_key)), blocked) as url:
        status, answer, _ = call(f"{url}/push/subscribe", request(keys=keys()))
        gone, removed, _ = call(f"{url}/push/unsubscribe", {"endpoint": "https://fcm.googleapis.com/fcm/send/x"})
    assert (status, gone) == (503, 503)
    assert "try again" in answer["error"] and "try again" in removed["error"]
    assert "push_store_unavailable" in [line["event"] for line in logs]


@pytest.mark.unit
def test_per_origin_memory_is_bounded(tmp_path: Path) -> None:
    """Every origin strangers subscribe with got a signed header kept for hours (and a pause kept for ever):
    a flood over many hosts grew the daemon without bound."""
    signer = Signer(load(generate()[0]), "mailto:it@library.example")
    for i in range(3000):
        signer.header(f"https://p{i}.flood.example.org")
    assert len(signer._cache) <= 256
    assert signer.header("https://p2999.flood.example.org") == signer.header("https://p2999.flood.example.org")
    subs = Subscriptions(store_file(tmp_path))
    try:
        fanout = Fanout(subs, signer, lambda: None, 4)  # type: ignore[arg-type, return-value]
        for i in range(5000):
            fanout.hold(f"https://p{i}.flood.example.org", 3600)
        assert len(fanout._paused) <= 1024 and fanout.paused_for("https://p4999.flood.example.org") > 3000
    finally:
        subs.close()


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_cross_site_simple_requests_refused(write_config: WriteConfig, vapid_key: Path, tmp_path: Path,
                                            kind: str) -> None:
    """A "simple" cross-site POST (no preflight: what any web page can make its visitors' browsers send)
    subscribed like the page's own; only application/json, which needs a preflight we never grant, is taken."""
    import json
    import urllib.error
    import urllib.request

    with follow_server(write_config(channels=push_channels(vapid_key)), tmp_path / "state") as url:
        forged = urllib.request.Request(f"{url}/push/subscribe", data=json.dumps(request(keys=keys())).encode(),
                                        method="POST", headers={"Content-Type": kind, "Origin": "https://evil.example.org"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(forged, timeout=10)
        assert caught.value.code == 400 and "application/json" in json.loads(caught.value.read())["error"]
        assert "Access-Control-Allow-Origin" not in caught.value.headers
        status, _, _ = call(f"{url}/push/subscribe", request(keys=keys()))
    assert status == 201
    db = sqlite3.connect(store_file(tmp_path / "state"))
    try:
        assert db.execute("SELECT count(*) FROM subscriptions").fetchone()[0] == 1
    finally:
        db.close()
