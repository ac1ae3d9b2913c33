"""Gate counters' cumulative in/out totals → seats occupied in a zone.

A gate counter reports how many people went in and out since it was last
reset, never how many are inside. Per counter (site, zone, source):

1. Outside opening hours (before the day's opening, between periods, after
   closing, on a closed day; at local midnight when no hours are configured)
   the zone is taken to be empty: occupancy is 0 and each reading only moves
   the baseline. This is the reset at opening, and at closing it corrects
   the drift that missed or double counts build up during the day. When no
   reading came between closing and opening, the first reading of the day
   counts everything since the last one (the building was shut meanwhile).
2. While open, occupancy grows by each reading's increase in `in` and falls
   by its increase in `out`: occupancy = (in − out) − (in − out at opening).
3. A total that goes down means the counter was reset (power cut, its own
   midnight reset): its new total is taken as counted since the reset, so
   the occupancy carries on instead of jumping.
4. Occupancy is kept within 0..capacity, so a missed entry cannot leave a
   negative count that lasts all day, nor a missed exit a zone fuller than full.
5. A reading older than the last one from the same counter is ignored.

Several counters on one zone (one per entrance) add up. A counter first seen
while the site is open starts from 0 (the daemon was started mid-day); the
next closing puts it right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from statusd.config.types import Site
from statusd.sensors.hours import is_open
from statusd.sources.readings import GateReading, SeatReading


@dataclass
class _Counter:
    """What is known of one gate counter."""

    day: date
    at: datetime
    total_in: int
    total_out: int
    occupancy: int


class GateCounter:
    """Keeps per-counter state and answers the occupancy of the counter's zone."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, str], _Counter] = {}

    def update(self, reading: GateReading, site: Site) -> SeatReading:
        """Take in one gate reading; return the zone's occupancy after it."""
        key = (reading.site, reading.zone, reading.source)
        zone = site.zones.get(reading.zone)
        capacity = zone.capacity if zone else None
        state = self._counters.get(key)
        if state is None or reading.at >= state.at:
            self._counters[key] = _advance(state, reading, site, capacity)
        return self.occupancy(reading, capacity)

    def occupancy(self, reading: GateReading, capacity: int | None) -> SeatReading:
        total = sum(c.occupancy for (s, z, _), c in self._counters.items()
                    if (s, z) == (reading.site, reading.zone))
        occupied = min(total, capacity) if capacity is not None else total
        return SeatReading(reading.site, reading.zone, occupied, capacity, reading.at, reading.source)


def _advance(state: _Counter | None, reading: GateReading, site: Site, capacity: int | None) -> _Counter:
    local = reading.at.astimezone(site.tz)
    occupancy = 0
    # With opening hours, closing is the reset; without, local midnight is.
    new_day = state is not None and not site.hours and state.day != local.date()
    if state is not None and is_open(site, local) and not new_day:
        occupancy = state.occupancy + _increase(state.total_in, reading.total_in) - _increase(
            state.total_out, reading.total_out)
        occupancy = max(0, occupancy if capacity is None else min(occupancy, capacity))
    return _Counter(local.date(), reading.at, reading.total_in, reading.total_out, occupancy)


def _increase(before: int, now: int) -> int:
    """How many were counted since `before`; a smaller total means the counter restarted from 0."""
    return now - before if now >= before else now
