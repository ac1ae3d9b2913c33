"""Readings in JSON → typed readings: what people get right and what they get wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd.config.load import Config
from statusd.model import Level
from statusd.sources.feeds.payload import (
    MAX_BATCH,
    PayloadError,
    parse_json,
    readings_from_json,
)
from statusd.sources.readings import GateReading, QueueReading, SeatReading, StatusReading

pytestmark = pytest.mark.unit

NOW = datetime(2024, 5, 2, 8, 15, tzinfo=UTC)
SEATS = {"site": "main", "zone": "floor2", "occupied": 120}


def read(data: Any, config: Config) -> list[Any]:
    return readings_from_json(data, config, "counters", NOW)


class TestGoodReadings:
    """Each kind of reading, alone or in a batch, becomes the typed reading it describes."""

    def test_seats(self, config: Config) -> None:
        assert read(SEATS, config) == [SeatReading("main", "floor2", 120, None, NOW, "counters")]

    def test_percent_becomes_seats_of_the_configured_capacity(self, config: Config) -> None:
        [reading] = read({"site": "main", "zone": "floor2", "percent": 50}, config)
        assert (reading.occupied, reading.capacity) == (120, 240)

    def test_queue(self, config: Config) -> None:
        data = {"site": "main", "queue": "entrance", "length": 40, "throughput_per_hour": 80}
        assert read(data, config) == [QueueReading("main", "entrance", 40, None, 80.0, NOW, "counters")]

    def test_gates_with_sensor(self, config: Config) -> None:
        data = {"kind": "gates", "site": "main", "zone": "floor2", "in": 10, "out": 4, "sensor": "east"}
        assert read(data, config) == [GateReading("main", "floor2", 10, 4, NOW, "counters/east")]

    def test_status(self, config: Config) -> None:
        data = {"site": "main", "level": "closed", "reason": "fire alarm"}
        assert read(data, config) == [StatusReading("main", None, Level.CLOSED, "fire alarm", NOW, "counters")]

    def test_reopening_needs_no_reason(self, config: Config) -> None:
        assert read({"site": "main", "level": "open"}, config)[0].reason == ""

    @pytest.mark.parametrize(("at", "expected"), [
        ("2024-05-02T10:10:00+02:00", datetime(2024, 5, 2, 8, 10, tzinfo=UTC)),
        ("2024-05-02T08:10:00Z", datetime(2024, 5, 2, 8, 10, tzinfo=UTC)),
        ("2024-05-02T10:10:00", datetime(2024, 5, 2, 8, 10, tzinfo=UTC)),  # Paris local time
        (NOW.timestamp() - 60, NOW - timedelta(minutes=1)),
    ])
    def test_timestamps(self, config: Config, at: Any, expected: datetime) -> None:
        assert read({**SEATS, "at": at}, config)[0].at == expected

    def test_batch_keeps_order(self, config: Config) -> None:
        batch = {"readings": [SEATS, {"site": "main", "queue": "entrance", "wait_minutes": 12.5}]}
        assert [type(r) for r in read(batch, config)] == [SeatReading, QueueReading]

    def test_whole_float_counts_are_counts(self, config: Config) -> None:
        assert read({**SEATS, "occupied": 120.0}, config)[0].occupied == 120


# (payload, status, field) — the mistakes people make.
BAD: list[tuple[Any, int, str]] = [
    ({**SEATS, "occupied": "120"}, 400, "occupied"),
    ({**SEATS, "occupied": True}, 400, "occupied"),
    ({**SEATS, "occupied": 12.5}, 400, "occupied"),
    ({**SEATS, "occupied": -1}, 422, "occupied"),
    ({**SEATS, "occupied": 361}, 422, "occupied"),
    ({"site": "main", "zone": "floor2", "percent": 101}, 422, "percent"),
    ({"site": "main", "zone": "floor2", "percent": "50%"}, 400, "percent"),
    ({"site": "main", "zone": "floor2", "percent": 50, "occupied": 3}, 400, "percent"),
    ({"site": "main", "occupied": 3}, 400, "zone"),
    ({"zone": "floor2", "occupied": 3}, 400, "site"),
    ({**SEATS, "site": "nowhere"}, 422, "site"),
    ({**SEATS, "zone": "attic"}, 422, "zone"),
    ({**SEATS, "ocupied": 3}, 400, "ocupied"),
    ({**SEATS, "capacity": 0}, 422, "capacity"),
    ({**SEATS, "at": "yesterday"}, 400, "at"),
    ({**SEATS, "at": "2024-05-02T08:30:00Z"}, 422, "at"),
    ({**SEATS, "at": "2024-04-30T08:00:00Z"}, 422, "at"),
    ({**SEATS, "at": 1e300}, 422, "at"),
    ({**SEATS, "kind": "weather"}, 400, "kind"),
    ({"site": "main"}, 400, "kind"),
    ({"site": "main", "zone": "floor2", "occupied": 3, "in": 4}, 400, "kind"),
    ({"site": "main", "queue": "entrance"}, 400, "length"),
    ({"site": "main", "queue": "side-door", "length": 3}, 422, "queue"),
    ({"site": "main", "queue": "entrance", "wait_minutes": 2000}, 422, "wait_minutes"),
    ({"site": "main", "queue": "entrance", "length": 3, "zone": "floor2"}, 400, "zone"),
    ({"site": "main", "zone": "floor2", "in": 5}, 400, "out"),
    ({"site": "main", "level": "on fire", "reason": "x"}, 422, "level"),
    ({"site": "main", "level": "closed"}, 400, "reason"),
    ({"site": "annexe", "zone": "floor2", "occupied": 1}, 422, "zone"),
    ([SEATS], 400, ""),
    ("seats", 400, ""),
    (None, 400, ""),
    ({"readings": []}, 400, "readings"),
    ({"readings": SEATS}, 400, "readings"),
    ({"readings": [SEATS], "site": "main"}, 400, "site"),
    ({"readings": [SEATS, {**SEATS, "occupied": "7"}]}, 400, "readings[1].occupied"),
    ({"readings": [SEATS, 7]}, 400, "readings[1]"),
    ({"readings": [SEATS] * (MAX_BATCH + 1)}, 413, "readings"),
]


class TestBadReadings:
    """A wrong reading is refused with the right status and the field at fault."""

    @pytest.mark.parametrize(("data", "status", "field"), BAD)
    def test_refused(self, config: Config, data: Any, status: int, field: str) -> None:
        with pytest.raises(PayloadError) as caught:
            read(data, config)
        assert (caught.value.status, caught.value.field) == (status, field)
        assert caught.value.reason

    @pytest.mark.parametrize(("body", "reason"), [
        (b'{"site": "main", "zone": "floor2", "occupied": NaN}', "not valid JSON"),
        (b'{"occupied": Infinity}', "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100000, "not valid JSON"),
    ])
    def test_unreadable_bodies(self, body: bytes, reason: str) -> None:
        with pytest.raises(PayloadError) as caught:
            parse_json(body)
        assert caught.value.status == 400 and reason in caught.value.reason


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(["kind", "site", "zone", "queue", "occupied", "capacity", "percent", "length",
                          "wait_minutes", "throughput_per_hour", "in", "out", "level", "reason", "at", "sensor"])
VALUES = st.one_of(JSON, st.sampled_from(["main", "floor2", "entrance", "seats", "queue", "gates", "status",
                                          "closed", "open", "2024-05-02T08:00:00Z"]), st.integers(-5, 400))
NEAR_MISS = st.dictionaries(FIELDS, VALUES, max_size=7)


class TestAnyInput:
    """Whatever arrives, the answer is readings or a PayloadError, never another exception."""

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.one_of(JSON, NEAR_MISS, st.builds(lambda r: {"readings": r}, st.lists(NEAR_MISS, max_size=3))))
    def test_readings_or_payload_error(self, config: Config, data: Any) -> None:
        try:
            readings = read(data, config)
        except PayloadError as err:
            assert 400 <= err.status < 500 and isinstance(err.field, str)
        else:
            assert readings and all(r.site in config.sites for r in readings)
