"""Vendor payloads and field mappings become readings; a poll feed fetches them from a real HTTP server."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from statusd.config.feeds import Decoding, PollFeedConfig
from statusd.config.load import Config
from statusd.config.types import Secret
from statusd.sources.feeds.payload import PayloadError
from statusd.sources.feeds.poll import PollFeed
from statusd.sources.feeds.vendors import Decoder, Receiver, lookup
from statusd.sources.readings import GateReading, Reading, SeatReading
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples" / "vendors"
NOW = datetime(2024, 5, 2, 8, 16, tzinfo=UTC)  # the samples were taken at 10:15 in Paris
GATES = Decoding("axis-live-sum", "main", "floor2")


def sample(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


class TestAxisLiveSum:
    """The Axis People Counter live-sum document becomes one gate reading."""

    def test_sample(self, config: Config) -> None:
        [reading] = Decoder(GATES, config, "camera").decode(sample("axis-live-sum.json"), NOW)
        assert reading == GateReading("main", "floor2", 412, 187, datetime(2024, 5, 2, 8, 15, tzinfo=UTC),
                                      "camera/00408CAC512B")

    @pytest.mark.parametrize(("change", "field"), [
        ({"in": "412"}, "in"), ({"out": None}, "out"), ({"in": -3}, "in"),
        ({"timestamp": "2024-05-02 10:15"}, "timestamp"), ({"timestamp": "20240503101500"}, "at"),
    ])
    def test_bad_documents(self, config: Config, change: dict[str, Any], field: str) -> None:
        with pytest.raises(PayloadError) as caught:
            Decoder(GATES, config, "camera").decode({**sample("axis-live-sum.json"), **change}, NOW)
        assert caught.value.field == field


class TestXovisLineCount:
    """Xovis interval counts are added up across lines and pushes, each interval once."""

    def test_sample(self, config: Config) -> None:
        [reading] = Decoder(Decoding("xovis-line-count", "main", "floor2"), config, "xovis").decode(
            sample("xovis-line-count.json"), NOW)
        assert isinstance(reading, GateReading)
        assert (reading.total_in, reading.total_out) == (14, 6)
        assert reading.at == datetime(2024, 5, 2, 8, 15, tzinfo=UTC)

    def test_next_push_adds_only_new_intervals(self, config: Config) -> None:
        decoder = Decoder(Decoding("xovis-line-count", "main", "floor2"), config, "xovis")
        first = sample("xovis-line-count.json")
        decoder.decode(first, NOW)
        later = copy.deepcopy(first)
        line = later["content"]["element"][0]
        line["measurement"].append({"from": "2024-05-02T10:15:00+02:00", "to": "2024-05-02T10:16:00+02:00",
                                    "value": [{"value": 3, "label": "fw"}, {"value": 4, "label": "bw"}]})
        [reading] = decoder.decode(later, NOW)
        assert isinstance(reading, GateReading)
        assert (reading.total_in, reading.total_out) == (17, 10)

    def test_a_refused_push_adds_nothing(self, config: Config) -> None:
        decoder = Decoder(Decoding("xovis-line-count", "main", "floor2"), config, "xovis")
        bad = sample("xovis-line-count.json")
        bad["content"]["element"][1]["measurement"][0]["value"][0]["value"] = "2"
        with pytest.raises(PayloadError) as caught:
            decoder.decode(bad, NOW)
        assert caught.value.field == "content.element[1].measurement[0].value[0].value"
        [reading] = decoder.decode(sample("xovis-line-count.json"), NOW)
        assert isinstance(reading, GateReading) and reading.total_in == 14

    def test_zone_elements_are_not_lines(self, config: Config) -> None:
        data = sample("xovis-line-count.json")
        for element in data["content"]["element"]:
            element["data-type"] = "ZONE"
        assert Decoder(Decoding("xovis-line-count", "main", "floor2"), config, "x").decode(data, NOW) == []


class TestMapping:
    """A declarative mapping picks fields out of any JSON document."""

    def test_paths(self) -> None:
        assert lookup({"data": {"zones": [{"n": 1}, {"n": 2}]}}, "data.zones.1.n") == 2
        assert lookup({"data": []}, "data.3") is None
        assert lookup("text", "a") is None

    def test_seats(self, config: Config) -> None:
        decoding = Decoding("mapping", "main", "floor2", kind="seats", fields={"occupied": "live.people"})
        [reading] = Decoder(decoding, config, "api").decode({"live": {"people": 87}}, NOW)
        assert reading == SeatReading("main", "floor2", 87, None, NOW, "api")

    def test_missing_field_is_named(self, config: Config) -> None:
        decoding = Decoding("mapping", "main", "floor2", kind="seats", fields={"occupied": "live.people"})
        with pytest.raises(PayloadError) as caught:
            Decoder(decoding, config, "api").decode({"live": {}}, NOW)
        assert caught.value.field == "occupied"

    def test_our_shape_takes_the_feeds_place(self, config: Config) -> None:
        decoder = Decoder(Decoding("statusd", "main", "floor2"), config, "file")
        assert decoder.decode({"occupied": 5}, NOW) == [SeatReading("main", "floor2", 5, None, NOW, "file")]


class Counter:
    """A fake Axis camera: live-sum totals that grow by each fetch; it can fail on demand."""

    def __init__(self) -> None:
        self.fetches = 0
        self.failing = 0
        self.document = sample("axis-live-sum.json")
        self.auth: list[str | None] = []

    async def live_sum(self, request: web.Request) -> web.Response:
        self.fetches += 1
        self.auth.append(request.headers.get("Authorization"))
        if self.failing:
            self.failing -= 1
            return web.Response(status=503)
        self.document["in"] += 1
        return web.json_response(self.document)


@pytest.fixture
async def camera() -> AsyncIterator[tuple[Counter, str]]:
    counter = Counter()
    app = web.Application()
    app.router.add_get("/local/tvpc/.api", counter.live_sum)
    async with TestServer(app, host="127.0.0.1") as server:
        yield counter, str(server.make_url("/local/tvpc/.api?live-sum.json"))


def poll_feed(url: str, **options: Any) -> PollFeedConfig:
    fields: dict[str, Any] = {"every": 0.02, "timeout": 2.0, "auth": "basic", "username": None, "password": None,
                              "token": None, **options}
    return PollFeedConfig("camera", frozenset({"gates"}), GATES, url, **fields)


async def collect(feed: PollFeed, count: int, seconds: float = 5.0) -> list[Reading]:
    """Run the feed until `count` readings came or `seconds` passed; then cancel it."""
    got: list[Reading] = []
    task = asyncio.create_task(feed.run(got.extend))
    try:
        for _ in range(int(seconds * 100)):
            if len(got) >= count:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return got


class TestPollFeed:
    """The poll feed fetches on schedule, survives failures and stops cleanly when cancelled."""

    async def test_fetches_readings(self, config: Config, camera: tuple[Counter, str]) -> None:
        _, url = camera
        got = await collect(PollFeed(poll_feed(url), config, clock=lambda: NOW), 3)
        assert [r.total_in for r in got[:3]] == [413, 414, 415]  # type: ignore[union-attr]

    async def test_credentials(self, config: Config, camera: tuple[Counter, str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AXIS_PASSWORD", "pw")
        counter, url = camera
        await collect(PollFeed(poll_feed(url, username="statusd", password=Secret("env", "AXIS_PASSWORD")),
                               config, clock=lambda: NOW), 1)
        assert counter.auth[0] == "Basic c3RhdHVzZDpwdw=="

    async def test_recovers_after_failures(self, config: Config, camera: tuple[Counter, str]) -> None:
        counter, url = camera
        counter.failing = 2
        with capture_logs() as logs:
            got = await collect(PollFeed(poll_feed(url), config, clock=lambda: NOW), 1)
        assert got and counter.fetches >= 3
        assert [e["status"] for e in logs if e["event"] == "poll_failed"] == [503, 503]

    async def test_a_refused_document_is_logged_and_skipped(self, config: Config,
                                                            camera: tuple[Counter, str]) -> None:
        counter, url = camera
        counter.document["out"] = "many"
        with capture_logs() as logs:
            got = await collect(PollFeed(poll_feed(url), config, clock=lambda: NOW), 99, seconds=0.3)
        rejected = [e for e in logs if e["event"] == "reading_rejected"]
        assert got == [] and rejected and rejected[0]["field"] == "out"

    async def test_unreachable(self, config: Config) -> None:
        from tests.support.fakes import refusing_port

        feed = PollFeed(poll_feed(f"http://127.0.0.1:{refusing_port()}/"), config)
        with capture_logs() as logs:
            await collect(feed, 99, seconds=0.3)
        assert any(e["event"] == "poll_failed" for e in logs)


class TestReceiver:
    """A long-lived feed's refusals are logged with the reason and never reach the intake."""

    def test_kind_not_allowed(self, config: Config) -> None:
        got: list[Reading] = []
        receiver = Receiver("broker", Decoding(), frozenset({"seats"}), config, lambda: NOW)
        with capture_logs() as logs:
            receiver.receive(b'{"site": "main", "level": "closed", "reason": "x"}', got.extend, topic="t")
        assert got == [] and logs[0]["event"] == "reading_rejected" and logs[0]["topic"] == "t"
        assert "may not send status" in logs[0]["reason"]
