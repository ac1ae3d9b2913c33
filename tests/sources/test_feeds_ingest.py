"""POST /api/v1/readings over real HTTP: tokens, limits, content types, and nothing stored from a bad batch."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd.config.feeds import Decoding, FeedsConfig, HttpFeedConfig
from statusd.config.load import Config
from statusd.config.types import Secret
from statusd.sources.feeds.http import MAX_BODY, IngestHandler, add_routes
from statusd.sources.readings import GateReading, Reading, SeatReading
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples" / "vendors"
# The vendor samples were taken on 2 May 2024 at 10:15 in Paris.
NOW = datetime(2024, 5, 2, 8, 16, tzinfo=UTC)

COUNTERS, PANEL, XOVIS = "counters-token-0123456789", "panel-token-0123456789", "xovis-token-0123456789"
SLOW = "slow-token-0123456789"
SEATS = {"site": "main", "zone": "floor2", "occupied": 120}
CLOSED = {"site": "main", "level": "closed", "reason": "fire alarm"}


def feeds() -> FeedsConfig:
    seats_and_queues = frozenset({"seats", "queue", "gates"})
    return FeedsConfig({
        "counters": HttpFeedConfig("counters", seats_and_queues, Decoding(), Secret("env", "T_COUNTERS")),
        "panel": HttpFeedConfig("panel", frozenset({"status"}), Decoding(), Secret("env", "T_PANEL")),
        "xovis": HttpFeedConfig("xovis", seats_and_queues, Decoding("xovis-line-count", "main", "floor2"),
                                Secret("env", "T_XOVIS")),
        "unset": HttpFeedConfig("unset", seats_and_queues, Decoding(), Secret("env", "T_NEVER_SET")),
        "slow": HttpFeedConfig("slow", seats_and_queues, Decoding(), Secret("env", "T_SLOW"), max_rate=1),
    })


class Server:
    """The ingest routes on 127.0.0.1 in a thread of their own, with an intake that records."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.port = 0  # bound by _serve, in the serving thread
        self.received: list[list[Reading]] = []
        self.failing = False
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def intake(self, readings: list[Reading]) -> None:
        if self.failing:
            raise RuntimeError("the rules are down")
        self.received.append(readings)

    def _serve(self) -> None:
        app = web.Application()
        add_routes(app, self.config, feeds(), self.intake, clock=lambda: NOW)
        runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        self.port = runner.addresses[0][1]
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def post(self, body: bytes | None, token: str | None = COUNTERS, content_type: str | None = "application/json",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], http.client.HTTPResponse]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = dict(headers or {})
        if token:
            sent.setdefault("Authorization", f"Bearer {token}")
        if content_type:
            sent["Content-Type"] = content_type
        conn.request("POST", "/api/v1/readings", body=body, headers=sent)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, json.loads(data), response

    def post_json(self, data: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        status, answer, _ = self.post(json.dumps(data).encode(), **kwargs)
        return status, answer


@pytest.fixture
def server(config: Config, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    for name, value in (("T_COUNTERS", COUNTERS), ("T_PANEL", PANEL), ("T_XOVIS", XOVIS), ("T_SLOW", SLOW)):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("T_NEVER_SET", raising=False)
    running = Server(config)
    running.thread.start()
    running.ready.wait(10)
    yield running
    running.loop.call_soon_threadsafe(running.loop.stop)
    running.thread.join(10)


class TestAccepted:
    """Good readings are answered 202 and reach the intake once, whole."""

    def test_one_reading(self, server: Server) -> None:
        assert server.post_json(SEATS) == (202, {"accepted": 1})
        [[reading]] = server.received
        assert isinstance(reading, SeatReading) and reading.source == "counters"

    def test_batch_in_one_intake(self, server: Server) -> None:
        batch = {"readings": [SEATS, {"site": "main", "queue": "entrance", "length": 3}]}
        assert server.post_json(batch) == (202, {"accepted": 2})
        assert [len(r) for r in server.received] == [2]

    def test_json_suffix_content_type(self, server: Server) -> None:
        assert server.post_json(SEATS, content_type="application/vnd.statusd+json; charset=utf-8")[0] == 202

    def test_xovis_push_with_basic_auth(self, server: Server) -> None:
        basic = base64.b64encode(f"xovis-sensor:{XOVIS}".encode()).decode()
        body = (EXAMPLES / "xovis-line-count.json").read_bytes()
        status, answer, _ = server.post(body, token=None, headers={"Authorization": f"Basic {basic}"})
        assert (status, answer) == (202, {"accepted": 1})
        [[gates]] = server.received
        assert isinstance(gates, GateReading)
        assert (gates.total_in, gates.total_out, gates.zone) == (14, 6, "floor2")
        assert gates.source == "xovis/80:1F:12:D4:8A:61"

    def test_xovis_push_retried_is_not_counted_twice(self, server: Server) -> None:
        body = (EXAMPLES / "xovis-line-count.json").read_bytes()
        for _ in range(2):
            assert server.post(body, token=XOVIS)[0] == 202
        assert [r[0].total_in for r in server.received] == [14, 14]  # type: ignore[union-attr]


class TestRefused:
    """Bad requests get a 4xx naming the field, and nothing reaches the intake."""

    @pytest.mark.parametrize(("kwargs", "status", "field"), [
        ({"token": None}, 401, "Authorization"),
        ({"token": "guess"}, 401, "Authorization"),
        ({"token": None, "headers": {"Authorization": "Basic !!!"}}, 401, "Authorization"),
        ({"token": "x", "headers": {"Authorization": "Digest abc"}}, 401, "Authorization"),
        ({"content_type": "text/plain"}, 415, "Content-Type"),
        ({"content_type": None}, 415, "Content-Type"),
        ({"token": PANEL}, 403, "kind"),
    ])
    def test_request_level(self, server: Server, kwargs: dict[str, Any], status: int, field: str) -> None:
        code, answer = server.post_json(SEATS, **kwargs)
        assert (code, answer["field"]) == (status, field) and answer["error"]
        assert server.received == []

    def test_unauthorised_answer_has_a_challenge(self, server: Server) -> None:
        status, _, response = server.post(b"{}", token=None)
        assert status == 401 and response.getheader("WWW-Authenticate", "").startswith("Bearer")

    def test_a_feed_without_its_secret_is_off(self, server: Server) -> None:
        with capture_logs() as logs:
            IngestHandler(server.config, feeds(), server.intake, lambda: NOW)
        assert [(e["event"], e["feed"]) for e in logs] == [("feed_inactive", "unset")]
        assert server.post_json(SEATS, headers={"Authorization": "Bearer "})[0] == 401

    def test_status_only_from_a_feed_allowed_to(self, server: Server) -> None:
        assert server.post_json(CLOSED)[0] == 403
        assert server.post_json(CLOSED, token=PANEL) == (202, {"accepted": 1})

    @pytest.mark.parametrize(("body", "status"), [
        (b"", 400), (b"   ", 400), (b"{", 400), (b'{"site": "main", "zone": "floor2", "occupied": NaN}', 400),
        (b"\xff", 400), (b"[1]", 400),
    ])
    def test_unreadable_bodies(self, server: Server, body: bytes, status: int) -> None:
        assert server.post(body)[0] == status
        assert server.received == []

    def test_body_over_the_limit(self, server: Server) -> None:
        status, answer, _ = server.post(b" " * (MAX_BODY + 1))
        assert status == 413 and "KiB" in answer["error"]

    def test_chunked_body_over_the_limit(self, server: Server) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        chunks = (b" " * 65536 for _ in range(MAX_BODY // 65536 + 2))
        conn.request("POST", "/api/v1/readings", body=chunks, encode_chunked=True,
                     headers={"Authorization": f"Bearer {COUNTERS}", "Content-Type": "application/json"})
        assert conn.getresponse().status == 413

    def test_batch_with_one_bad_reading_stores_nothing(self, server: Server) -> None:
        batch = {"readings": [SEATS, SEATS, {**SEATS, "zone": "attic"}]}
        assert server.post_json(batch) == (422, {"error": "unknown zone 'attic' at main; known: floor2",
                                                 "field": "readings[2].zone"})
        assert server.received == []

    def test_huge_batch(self, server: Server) -> None:
        assert server.post_json({"readings": [SEATS] * 5000})[0] == 413

    def test_intake_failure_asks_the_sender_to_retry(self, server: Server) -> None:
        server.failing = True
        status, _, response = server.post(json.dumps(SEATS).encode())
        assert status == 503 and response.getheader("Retry-After") == "5"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
FIELD = st.sampled_from(["site", "zone", "queue", "occupied", "percent", "length", "in", "out", "level", "at"])
NEAR = st.dictionaries(FIELD, st.one_of(JSON, st.sampled_from(["main", "floor2", "entrance"]), st.integers(-2, 500)))


class TestAnyBody:
    """Any body gets a 2xx or a 4xx, never a 5xx; a refused body stores nothing."""

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=st.one_of(
        JSON.map(lambda v: json.dumps(v).encode()),
        NEAR.map(lambda v: json.dumps(v).encode()),
        st.lists(NEAR, max_size=4).map(lambda v: json.dumps({"readings": v}).encode()),
        st.binary(max_size=64),
    ))
    def test_never_a_server_error(self, server: Server, body: bytes) -> None:
        before = len(server.received)
        status, answer, _ = server.post(body)
        assert 200 <= status < 500
        if status >= 400:
            assert len(server.received) == before and set(answer) == {"error", "field"}
        else:
            assert len(server.received) == before + 1 and answer["accepted"] == len(server.received[-1])


class TestOpenApi:
    """GET /api/openapi.json describes the endpoint and its readings."""

    def test_served(self, server: Server) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/api/openapi.json")
        response = conn.getresponse()
        spec = json.loads(response.read())
        assert response.status == 200 and spec["openapi"].startswith("3.1")
        post = spec["paths"]["/api/v1/readings"]["post"]
        assert set(post["responses"]) == {"202", "400", "401", "403", "413", "415", "422"}
        assert set(spec["components"]["schemas"]["Seats"]["properties"]) >= {"occupied", "percent", "capacity"}


class TestRateLimit:
    """Each token has a request rate limit: a burst beyond it gets 429 with Retry-After."""

    def test_bucket_refuses_beyond_the_burst_and_refills(self) -> None:
        from statusd.sources.feeds.http import Bucket, RateLimited

        bucket = Bucket(5)
        for _ in range(10):
            bucket.take(100.0)
        with pytest.raises(RateLimited) as refused:
            bucket.take(100.0)
        assert refused.value.status == 429 and refused.value.retry_after == 1
        bucket.take(100.3)  # 0.3 s at 5/s refilled one request and a half

    def test_over_http(self, server: Server) -> None:
        answers = [server.post(json.dumps(SEATS).encode(), token=SLOW) for _ in range(3)]
        assert [status for status, _, _ in answers] == [202, 202, 429]
        assert answers[2][2].headers["Retry-After"] == "1"
        assert answers[2][1]["field"] == "Authorization"
        assert len(server.received) == 2

    def test_zero_means_no_limit(self) -> None:
        from statusd.sources.feeds.http import Bucket

        bucket = Bucket(0)
        for _ in range(10_000):
            bucket.take(1.0)
