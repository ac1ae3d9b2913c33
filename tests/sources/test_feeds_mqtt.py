"""The MQTT feed end to end through a real Mosquitto: readings in, bad messages skipped, broker restarts survived."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd.config.feeds import Decoding, MqttFeedConfig
from statusd.config.load import Config
from statusd.sources.feeds.mqtt import MqttFeed
from statusd.sources.feeds.vendors import Receiver
from statusd.sources.readings import Reading, SeatReading
from tests.support.mosquitto import Mosquitto, mosquitto  # noqa: F401 (the fixture)

pytestmark = pytest.mark.e2e

SEATS = {"site": "main", "zone": "floor2", "occupied": 120}
ALLOW = frozenset({"seats", "queue", "gates"})


def feed_config(broker: Mosquitto, topics: tuple[str, ...] = ("library/+/seats",)) -> MqttFeedConfig:
    return MqttFeedConfig("broker", ALLOW, Decoding(), "127.0.0.1", broker.port, topics, None, None, None, 1, 10.0)


async def publish(broker: Mosquitto, payload: bytes | str, topic: str = "library/main/seats") -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.publish(topic, payload, qos=1)


async def until(condition: Callable[[], bool], seconds: float = 10.0, every: Callable[[], Any] | None = None) -> None:
    """Wait for `condition`, calling `every` (e.g. a publish) each round meanwhile."""
    for _ in range(int(seconds / 0.1)):
        if condition():
            return
        if every is not None:
            await every()
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


class Running:
    """A feed task and what its intake received."""

    def __init__(self, feed: MqttFeed) -> None:
        self.got: list[list[Reading]] = []
        self.task = asyncio.create_task(feed.run(self.got.append))

    @property
    def readings(self) -> list[Reading]:
        return [r for batch in self.got for r in batch]


@pytest.fixture
async def running(config: Config, mosquitto: Mosquitto) -> AsyncIterator[Running]:  # noqa: F811
    feed = MqttFeed(feed_config(mosquitto), config, backoff=0.1, backoff_max=0.5)
    run = Running(feed)
    # Publish until the subscription is live: the first message proves it.
    await until(lambda: bool(run.got), every=lambda: publish(mosquitto, json.dumps(SEATS)))
    run.got.clear()
    yield run
    run.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run.task


class TestMqttFeed:
    """Messages on subscribed topics become readings; the feed outlives bad messages and broker restarts."""

    async def test_reading_and_batch(self, running: Running, mosquitto: Mosquitto) -> None:  # noqa: F811
        await publish(mosquitto, json.dumps({"readings": [SEATS, {**SEATS, "occupied": 7}]}))
        await until(lambda: len(running.readings) == 2)
        assert [r.occupied for r in running.readings] == [120, 7]  # type: ignore[union-attr]
        assert isinstance(running.readings[0], SeatReading) and running.readings[0].source == "broker"

    async def test_other_topics_are_not_read(self, running: Running, mosquitto: Mosquitto) -> None:  # noqa: F811
        await publish(mosquitto, json.dumps({**SEATS, "occupied": 1}), topic="library/main/queue")
        await publish(mosquitto, json.dumps({**SEATS, "occupied": 2}))
        await until(lambda: bool(running.readings))
        assert [r.occupied for r in running.readings] == [2]  # type: ignore[union-attr]

    async def test_bad_message_is_logged_and_skipped(self, running: Running, mosquitto: Mosquitto) -> None:  # noqa: F811
        with capture_logs() as logs:
            await publish(mosquitto, json.dumps({**SEATS, "occupied": "lots"}))
            await publish(mosquitto, b"\x00not json")
            await publish(mosquitto, json.dumps({**SEATS, "occupied": 3}))
            await until(lambda: bool(running.readings))
        assert [r.occupied for r in running.readings] == [3]  # type: ignore[union-attr]
        rejected = [e for e in logs if e["event"] == "reading_rejected"]
        assert [(e["field"], e["topic"]) for e in rejected] == [("occupied", "library/main/seats"),
                                                                ("", "library/main/seats")]

    async def test_reconnects_after_broker_restart(self, running: Running, mosquitto: Mosquitto) -> None:  # noqa: F811
        with capture_logs() as logs:
            await asyncio.to_thread(mosquitto.restart)
            await until(lambda: bool(running.readings),
                        every=lambda: publish(mosquitto, json.dumps({**SEATS, "occupied": 9})))
        assert running.readings[0].occupied == 9  # type: ignore[union-attr]
        events = [e["event"] for e in logs]
        assert "feed_disconnected" in events and "feed_connected" in events
        assert not running.task.done()

    async def test_random_payloads_do_not_stop_the_feed(self, running: Running, mosquitto: Mosquitto) -> None:  # noqa: F811
        junk = [b"", b"null", b"[]", b'{"readings": [1, 2]}', b"\xff" * 50, b"{" * 5000, b'{"site": 1}']
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            for payload in junk:
                await client.publish("library/main/seats", payload, qos=1)
            await client.publish("library/main/seats", json.dumps(SEATS), qos=1)
        await until(lambda: bool(running.readings))
        assert len(running.readings) == 1 and not running.task.done()


class TestMqttPayloads:
    """Any MQTT payload gives readings handed over or a logged refusal, never an exception."""

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(payload=st.one_of(
        st.binary(max_size=100),
        st.dictionaries(st.sampled_from(["site", "zone", "occupied", "percent", "queue", "length", "in", "out",
                                         "level", "reason", "at", "kind"]),
                        st.one_of(st.none(), st.booleans(), st.integers(-3, 500), st.floats(allow_nan=False),
                                  st.sampled_from(["main", "floor2", "entrance", "closed", "seats"]),
                                  st.text(max_size=5))).map(lambda d: json.dumps(d).encode()),
    ))
    def test_never_raises(self, config: Config, payload: bytes) -> None:
        got: list[list[Reading]] = []
        receiver = Receiver("broker", Decoding(), ALLOW, config,
                            lambda: datetime(2024, 5, 2, 8, 16, tzinfo=UTC))
        count = receiver.receive(payload, got.append, topic="t")
        assert count == sum(len(batch) for batch in got) and len(got) <= 1
