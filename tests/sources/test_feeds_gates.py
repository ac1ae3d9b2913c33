"""Gate counters' cumulative totals become occupancy: reset at opening, resets survived, clamped, drift corrected."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statusd.config.reader import Problems, Section
from statusd.config.sites import parse_sites
from statusd.config.types import Site, Zone
from statusd.sensors.gates import GateCounter
from statusd.sensors.hours import is_open
from statusd.sources.readings import GateReading

pytestmark = pytest.mark.unit

PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS = {day: ((time(9), time(20)),) for day in range(6)}  # Monday to Saturday 9-20, Sunday closed


def site(hours: dict[int, tuple[tuple[time, time], ...]] | None = None, capacity: int = 100) -> Site:
    return Site("main", {}, "Europe/Paris", "", {}, {"floor2": Zone("floor2", {}, capacity)}, {},
                WEEKDAYS if hours is None else hours)


def at(text: str) -> datetime:
    """'Thu 09:30' style times in May 2024 (Thursday the 2nd), Paris local time."""
    day, clock = text.split()
    dates = {"Thu": 2, "Fri": 3, "Sat": 4, "Sun": 5}
    hour, minute = (int(p) for p in clock.split(":"))
    return datetime(2024, 5, dates[day], hour, minute, tzinfo=PARIS)


def run(steps: list[tuple[str, int, int]], where: Site | None = None, source: str = "gate") -> list[int]:
    counter, where = GateCounter(), where or site()
    return [counter.update(GateReading("main", "floor2", i, o, at(t), source), where).occupied
            for t, i, o in steps]


# (case, [(time, in, out)], expected occupancy after each)
CASES = [
    ("counts before opening are ignored",
     [("Thu 08:00", 100, 90), ("Thu 08:50", 110, 92), ("Thu 09:30", 160, 97)], [0, 0, 45]),
    ("a reset counter carries on",
     [("Thu 08:00", 100, 90), ("Thu 10:00", 200, 100), ("Thu 10:05", 10, 2)], [0, 90, 98]),
    ("never over capacity, and exits count at once",
     [("Thu 08:00", 0, 0), ("Thu 10:00", 500, 0), ("Thu 10:10", 500, 10)], [0, 100, 90]),
    ("never below zero, and entries count at once",
     [("Thu 08:00", 0, 0), ("Thu 10:00", 5, 30), ("Thu 10:10", 12, 30)], [0, 0, 7]),
    ("closing empties the zone and rebases",
     [("Thu 08:00", 0, 0), ("Thu 19:00", 400, 380), ("Thu 20:05", 405, 381), ("Fri 09:10", 420, 383)],
     [0, 20, 0, 13]),
    ("a closed day stays empty",
     [("Sat 21:00", 0, 0), ("Sun 11:00", 50, 10), ("Sun 15:00", 80, 30)], [0, 0, 0]),
    ("a counter first seen while open starts from zero",
     [("Thu 14:00", 900, 700), ("Thu 14:10", 910, 701)], [0, 9]),
    ("an older reading changes nothing",
     [("Thu 08:00", 0, 0), ("Thu 10:00", 30, 0), ("Thu 09:30", 10, 0), ("Thu 10:05", 31, 0)], [0, 30, 30, 31]),
]


class TestOccupancy:
    """The algorithm in gates.py, case by case."""

    @pytest.mark.parametrize(("steps", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
    def test_case(self, steps: list[tuple[str, int, int]], expected: list[int]) -> None:
        assert run(steps) == expected

    def test_without_hours_the_day_starts_at_midnight(self) -> None:
        steps = [("Thu 22:00", 0, 0), ("Thu 23:00", 40, 10), ("Fri 00:10", 45, 10), ("Fri 01:00", 50, 12)]
        assert run(steps, site(hours={})) == [0, 30, 0, 3]

    def test_two_entrances_add_up(self) -> None:
        counter, where = GateCounter(), site()
        for source, steps in (("east", [(0, 0), (30, 5)]), ("west", [(0, 0), (12, 2)])):
            for (i, o), t in zip(steps, ("Thu 08:00", "Thu 10:00")):
                last = counter.update(GateReading("main", "floor2", i, o, at(t), source), where)
        assert (last.occupied, last.capacity) == (35, 100)

    def test_other_zones_are_apart(self) -> None:
        counter, where = GateCounter(), site()
        counter.update(GateReading("main", "floor2", 0, 0, at("Thu 08:00"), "g"), where)
        counter.update(GateReading("main", "floor2", 50, 0, at("Thu 10:00"), "g"), where)
        other = counter.update(GateReading("main", "floor3", 7, 0, at("Thu 10:00"), "g"), where)
        assert other.occupied == 0

    @given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), max_size=30))
    def test_always_within_capacity(self, totals: list[tuple[int, int]]) -> None:
        steps = [(f"Thu {9 + k // 60:02d}:{k % 60:02d}", i, o) for k, (i, o) in enumerate(totals)]
        assert all(0 <= n <= 100 for n in run(steps))


class TestOpeningHours:
    """Which local times count as open."""

    @pytest.mark.parametrize(("text", "expected"), [
        ("Thu 08:59", False), ("Thu 09:00", True), ("Thu 19:59", True), ("Thu 20:00", False), ("Sun 12:00", False),
    ])
    def test_is_open(self, text: str, expected: bool) -> None:
        assert is_open(site(), at(text)) is expected

    def test_until_midnight(self) -> None:
        late = site(hours={3: ((time(9), time.max),)})
        assert is_open(late, at("Thu 23:59").replace(second=59, microsecond=5))

    def test_24_00_from_the_config_is_open_to_the_last_instant(self) -> None:
        """"09:00-24:00" in statusd.yaml: the hours and the gate counters read the same end."""
        section = Section({"main": {"name": "Centrale", "timezone": "Europe/Paris", "hours": {"th": "09:00-24:00"}}},
                          "sites", Problems("statusd.yaml"))
        late = parse_sites(section, ("fr",), "http://127.0.0.1:8080")["main"]
        assert section.problems.found == []
        assert is_open(late, at("Thu 23:59").replace(second=59, microsecond=999_000))
        assert not is_open(late, at("Thu 08:59"))
