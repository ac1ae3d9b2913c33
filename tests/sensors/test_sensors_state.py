"""Tests for statusd.sensors.state: calm automatic posts from live readings, and the live view."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statusd.config.load import Config
from statusd.config.reader import Problems, Section, loads
from statusd.config.rules import RulesConfig
from statusd.events import Event, EventKind
from statusd.loading import load
from statusd.model import Level, Target
from statusd.sensors import Sensors, parse_rules
from statusd.sources.readings import QueueReading, Reading, SeatReading

pytestmark = pytest.mark.unit

ALERTS = Path(__file__).resolve().parent.parent.parent / "alerts"
PARIS = ZoneInfo("Europe/Paris")
# A Tuesday; main is open 09:00-20:00 on weekdays.
MORNING = datetime(2026, 3, 10, 9, 0, tzinfo=PARIS)
MINUTE = timedelta(minutes=1)

CONFIG = """\
public_url: https://bib.test
languages: [fr, en, sv]
alerts: {alerts}
sites:
  main:
    name: {{fr: Bibliothèque centrale, en: Central Library, sv: Centralbiblioteket}}
    timezone: Europe/Paris
    hours: {{mo-fr: "09:00-20:00", sa: "10:00-18:00", su: closed}}
    zones:
      floor2: {{name: {{fr: 2e étage, en: 2nd floor, sv: Plan 2}}, capacity: 200}}
      floor3: {{name: {{fr: 3e étage, en: 3rd floor, sv: Plan 3}}, capacity: 100}}
    queues:
      entrance: {{name: {{fr: Entrée, en: Main entrance, sv: Entrén}}}}
  annexe:
    name: Annexe
    timezone: Europe/Stockholm
    zones: {{reading: {{capacity: 80}}}}
channels:
  console_fr: {{type: console, language: fr}}
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "statusd.yaml"
    path.write_text(CONFIG.format(alerts=ALERTS), encoding="utf-8")
    return load(path)


def rules(config: Config, text: str = "") -> RulesConfig:
    problems = Problems("statusd.yaml")
    parsed = parse_rules(
        Section(loads(text, "rules") if text else None, "rules", problems), config.sites
    )
    problems.check()
    return parsed


def never(site: str) -> bool:
    return False


def seats(
    zone: str, percent: float, at: datetime, site: str = "main", capacity: int = 200
) -> SeatReading:
    return SeatReading(site, zone, round(percent * capacity / 100), capacity, at, "test")


def queue(
    wait: float | None, at: datetime, length: int | None = None, per_hour: float | None = None
) -> QueueReading:
    return QueueReading("main", "entrance", length, wait, per_hour, at, "test")


def run(
    sensors: Sensors, readings: Iterable[Reading], closed: Callable[[str], bool] = never
) -> list[Event]:
    """Feed readings one by one as the daemon would, with a tick before each."""
    events: list[Event] = []
    for reading in readings:
        events += sensors.tick(reading.at, closed)
        events += sensors.ingest([reading], reading.at, closed)
    return events


def minutes(count: int, start: datetime = MORNING) -> list[datetime]:
    return [start + i * MINUTE for i in range(count)]


def posts(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind in (EventKind.SEATS_CHANGED, EventKind.QUEUE_CHANGED)]


def bands(events: list[Event]) -> list[str]:
    return [e.extra["band"] for e in posts(events)]


class TestFlapping:
    """A value wobbling on a band edge for an hour gives at most one post."""

    @pytest.mark.parametrize("method", ["none", "ewma", "median"])
    @pytest.mark.parametrize("edge", [50, 80, 95])
    def test_seats_oscillating_around_an_edge(self, config: Config, method: str, edge: int) -> None:
        sensors = Sensors(
            config, rules(config, f"{{smoothing: {{method: {method}}}, seats: {{quiet: []}}}}")
        )
        values = [edge + (3 if i % 2 else -3) for i in range(60)]
        readings = [
            seats("floor2", v, at) for v, at in zip(values, minutes(60, MORNING + 2 * MINUTE))
        ]
        run(sensors, [seats("floor2", edge - 10, MORNING)])  # settle below the edge first
        assert len(posts(run(sensors, readings))) <= 1

    @pytest.mark.parametrize("edge", [15, 30, 60, 90])
    def test_queue_oscillating_around_an_edge(self, config: Config, edge: int) -> None:
        sensors = Sensors(config, rules(config, "smoothing: {method: none}"))
        run(sensors, [queue(edge - 5, MORNING)])  # settle below the edge first
        readings = [
            queue(edge + (2 if i % 2 else -2), at)
            for i, at in enumerate(minutes(60, MORNING + MINUTE))
        ]
        assert len(posts(run(sensors, readings))) <= 1

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.floats(min_value=75.5, max_value=84.5), min_size=2, max_size=90))
    def test_any_wobble_within_the_hysteresis_posts_once_at_most(self, values: list[float]) -> None:
        config = _config()
        sensors = Sensors(config, rules(config, "smoothing: {method: none}"))
        readings = [seats("floor2", v, at) for v, at in zip(values, minutes(len(values)))]
        assert len(posts(run(sensors, readings))) <= 1


class TestSteadyClimb:
    """A steady climb produces one post per band it reaches (quiet bands excepted)."""

    def climb(self, config: Config, text: str) -> list[Event]:
        sensors = Sensors(config, rules(config, text))
        # 0 % → 100 % over five hours, one reading a minute, with a little noise.
        readings = [
            seats("floor2", min(100.0, i / 3 + (1.5 if i % 3 == 0 else -1.5)), at)
            for i, at in enumerate(minutes(300))
        ]
        return run(sensors, readings)

    def test_quiet_bands_by_default(self, config: Config) -> None:
        assert bands(self.climb(config, "")) == ["nearly_full", "full"]

    def test_every_band_when_none_is_quiet(self, config: Config) -> None:
        assert bands(self.climb(config, "seats: {quiet: []}")) == ["busy", "nearly_full", "full"]

    def test_queue(self, config: Config) -> None:
        sensors = Sensors(config, rules(config))
        readings = [queue(i / 3, at) for i, at in enumerate(minutes(330))]
        assert bands(run(sensors, readings)) == ["15_30", "30_60", "60_90", "over_90"]

    def test_each_post_says_what_changed(self, config: Config) -> None:
        events = posts(self.climb(config, "seats: {quiet: []}"))
        first = events[0]
        assert (first.kind, first.target, first.level, first.author, first.reason) == (
            EventKind.SEATS_CHANGED,
            Target("main"),
            Level.OPEN,
            "sensors",
            "sensor",
        )
        assert first.extra["zone"] == "floor2"
        assert (first.extra["previous_band"], first.extra["band"]) == ("free", "busy")
        assert first.extra["capacity"] == 200
        assert first.extra["free"] == 200 - first.extra["occupied"]
        assert [e.extra["previous_band"] for e in events] == ["free", "busy", "nearly_full"]


class TestClosed:
    """No automatic post while staff have closed the site or outside its opening hours."""

    def filling(self, start: datetime, count: int = 120) -> list[Reading]:
        return [seats("floor2", min(100, 30 + i), at) for i, at in enumerate(minutes(count, start))]

    def test_staff_closure(self, config: Config) -> None:
        sensors = Sensors(config, rules(config))
        assert run(sensors, self.filling(MORNING), closed=lambda site: site == "main") == []

    @pytest.mark.parametrize(
        "start",
        [
            datetime(2026, 3, 10, 20, 0, tzinfo=PARIS),  # after closing
            datetime(2026, 3, 10, 6, 0, tzinfo=PARIS),  # before opening
            datetime(2026, 3, 15, 11, 0, tzinfo=PARIS),  # a Sunday: closed all day
        ],
    )
    def test_outside_hours(self, config: Config, start: datetime) -> None:
        sensors = Sensors(config, rules(config))
        assert run(sensors, self.filling(start, 150)) == []

    def test_a_closure_is_never_followed_by_seats_free(self, config: Config) -> None:
        sensors = Sensors(config, rules(config))
        state = {"closed": False}
        full = [seats("floor2", 99, at) for at in minutes(30)]
        assert bands(run(sensors, full)) == ["full"]
        state["closed"] = True
        emptying = [
            seats("floor2", 99 - 3 * i, at)
            for i, at in enumerate(minutes(30, MORNING + 30 * MINUTE))
        ]
        assert run(sensors, emptying, lambda site: state["closed"]) == []
        state["closed"] = False
        after = [seats("floor2", 8, at) for at in minutes(120, MORNING + 60 * MINUTE)]
        assert run(sensors, after, lambda site: state["closed"]) == []

    def test_the_view_stays_live_while_closed(self, config: Config) -> None:
        sensors = Sensors(config, rules(config))
        run(sensors, [seats("floor2", 60, MORNING)], closed=lambda site: True)
        assert sensors.view(MORNING)["main"]["zones"]["floor2"]["percent"] == 60


class TestOutage:
    """A silent sensor makes no patron post, is marked stale, and is reported to the operator."""

    def test_outage_then_recovery(self, config: Config) -> None:
        sensors = Sensors(config, rules(config))
        before = [seats("floor2", 60, at) for at in minutes(30)]
        after = [seats("floor2", 60, at) for at in minutes(30, MORNING + 50 * MINUTE)]
        events = run(sensors, before)
        gap = MORNING + 40 * MINUTE
        events += sensors.tick(gap, never)
        view = sensors.view(gap)["main"]["zones"]["floor2"]
        assert view["stale"] is True
        assert view["occupied"] is None and view["band"] is None and view["free"] is None
        assert sensors.stale(gap) == [
            "main/floor2 (zone): live data unavailable, last reading 11 min ago at 09:29"
        ]
        events += run(sensors, after)
        assert [e.kind for e in events] == [EventKind.SENSOR_LOST, EventKind.SENSOR_RESTORED]
        assert sensors.view(after[-1].at)["main"]["zones"]["floor2"]["stale"] is False
        assert sensors.stale(after[-1].at) == []

    def test_no_post_from_stale_data(self, config: Config) -> None:
        sensors = Sensors(config, rules(config))
        # Full at 09:00 (posted); nearly full at 09:05 is held back by the minimum interval,
        # then the sensor dies: at 09:30, when the interval has passed, nothing may be said.
        readings = [seats("floor2", 99, at) for at in minutes(5)]
        readings += [seats("floor2", 85, at) for at in minutes(5, MORNING + 5 * MINUTE)]
        sensors = Sensors(config, rules(config, "smoothing: {method: none}"))
        events = run(sensors, readings)
        for moment in minutes(60, MORNING + 10 * MINUTE):
            events += sensors.tick(moment, never)
        assert bands(events) == ["full"]
        assert [e.kind for e in events].count(EventKind.SENSOR_LOST) == 1

    def test_a_sensor_silent_overnight_is_not_lost_at_opening(self, config: Config) -> None:
        sensors = Sensors(config, rules(config))
        run(sensors, [seats("floor2", 10, MORNING - timedelta(hours=13))])
        assert sensors.tick(MORNING + MINUTE, never) == []
        assert sensors.tick(MORNING + 6 * MINUTE, never) == []  # five minutes of grace from opening
        assert [e.kind for e in sensors.tick(MORNING + 7 * MINUTE, never)] == [
            EventKind.SENSOR_LOST
        ]


class TestMinInterval:
    """Automatic posts for one site and kind are at least `min_interval` apart; later ones wait."""

    @pytest.mark.parametrize("interval", [10, 30, 45])
    def test_posts_are_spaced(self, config: Config, interval: int) -> None:
        sensors = Sensors(
            config, rules(config, f"{{min_interval: {interval}m, smoothing: {{method: none}}}}")
        )
        # Quick climb: nearly full at 09:00, full at 09:05 (within any interval).
        readings = [seats("floor2", 85 if i < 5 else 99, at) for i, at in enumerate(minutes(120))]
        events = posts(run(sensors, readings))
        assert [e.extra["band"] for e in events] == ["nearly_full", "full"]
        assert events[1].at - events[0].at == timedelta(minutes=interval)

    def test_kinds_have_their_own_interval(self, config: Config) -> None:
        sensors = Sensors(config, rules(config, "smoothing: {method: none}"))
        events = run(sensors, [seats("floor2", 99, MORNING), queue(45, MORNING + MINUTE)])
        assert [e.kind for e in events] == [EventKind.SEATS_CHANGED, EventKind.QUEUE_CHANGED]

    def test_a_change_undone_within_the_interval_is_not_said(self, config: Config) -> None:
        sensors = Sensors(config, rules(config, "smoothing: {method: none}"))
        readings = [
            seats("floor2", 99 if i < 5 else 85 if i < 10 else 99, at)
            for i, at in enumerate(minutes(60))
        ]
        assert bands(run(sensors, readings)) == ["full"]


class TestAggregation:
    """Zones of a site changing together make one post that lists them all, unless told otherwise."""

    def test_one_post_for_the_site(self, config: Config) -> None:
        sensors = Sensors(config, rules(config, "smoothing: {method: none}"))
        events = sensors.ingest(
            [seats("floor2", 99, MORNING), seats("floor3", 20, MORNING, capacity=100)],
            MORNING,
            never,
        )
        assert len(events) == 1
        assert events[0].extra["changed"] == ["floor2"]
        assert [(z["id"], z["band"], z["changed"]) for z in events[0].extra["zones"]] == [
            ("floor2", "full", True),
            ("floor3", "free", False),
        ]

    def test_zones_apart(self, config: Config) -> None:
        sensors = Sensors(config, rules(config, "{aggregate: false, smoothing: {method: none}}"))
        events = sensors.ingest(
            [seats("floor2", 99, MORNING), seats("floor3", 99, MORNING, capacity=100)],
            MORNING,
            never,
        )
        assert [e.extra["zone"] for e in events] == ["floor2", "floor3"]


class TestRevisions:
    """The same readings give the same event ids, and a restart that remembers says nothing twice."""

    def day(self) -> list[Reading]:
        return [seats("floor2", min(100, i / 2), at) for i, at in enumerate(minutes(400))]

    def test_replays_agree(self, config: Config) -> None:
        first = run(Sensors(config, rules(config)), self.day())
        second = run(Sensors(config, rules(config)), self.day())
        assert [e.id for e in first] == [e.id for e in second]
        assert len({e.id for e in first}) == len(first) > 0

    def test_restart(self, config: Config) -> None:
        readings = self.day()
        # Stopped after "nearly full" was said, before "full".
        before = run(Sensors(config, rules(config)), readings[:175])
        restarted = Sensors(config, rules(config))
        restarted.remember(before, readings[175].at)
        after = run(restarted, readings[175:])
        assert bands(before) == ["nearly_full"]
        assert bands(before + after) == bands(run(Sensors(config, rules(config)), readings))
        assert not {e.id for e in before} & {e.id for e in after}

    def test_counts_are_kept_for_today_only(self, config: Config) -> None:
        """Thirty days of posts leave one day's counts in memory, not thirty."""
        sensors = Sensors(config, rules(config, "seats: {quiet: []}"))
        for day in range(30):
            start = MORNING + timedelta(days=day)
            if start.weekday() < 5:  # main is closed on Sundays
                events = run(sensors, [seats("floor2", 10 + i * 90 / 120, at)
                                       for i, at in enumerate(minutes(120, start))])
                assert posts(events), day
        assert len(sensors._counts) <= 3, sorted(sensors._counts)


class TestView:
    """view() gives live figures per zone and queue for status.json; stale ones show no figures."""

    def test_shape(self, config: Config) -> None:
        sensors = Sensors(config, rules(config, "smoothing: {method: none}"))
        sensors.ingest(
            [seats("floor2", 50, MORNING), queue(None, MORNING, length=60, per_hour=120)],
            MORNING,
            never,
        )
        view = sensors.view(MORNING)
        assert set(view) == {"main", "annexe"}
        assert view["main"]["zones"]["floor2"] == {
            "occupied": 100,
            "capacity": 200,
            "free": 100,
            "percent": 50,
            "band": "busy",
            "stale": False,
            "updated_at": MORNING.isoformat(),
        }
        assert view["main"]["queues"]["entrance"] == {
            "length": 60,
            "wait_minutes": 30,
            "estimate": True,
            "band": "30_60",
            "stale": False,
            "updated_at": MORNING.isoformat(),
            "wording": {"fr": "environ 30 min", "en": "about 30 min", "sv": "cirka 30 min"},
        }
        assert view["main"]["total"]["free"] == 100
        assert view["annexe"] == {"zones": {}, "queues": {}, "total": None}


@functools.lru_cache(maxsize=1)
def _config() -> Config:
    """The test config for hypothesis, which cannot take a function-scoped fixture."""
    directory = Path(tempfile.mkdtemp())
    path = directory / "statusd.yaml"
    path.write_text(CONFIG.format(alerts=ALERTS), encoding="utf-8")
    return load(path)
