"""Readings: what sensors say, as typed values (seats per zone, queue per entrance, gates)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from statusd.model import Level


@dataclass(frozen=True)
class SeatReading:
    """Seats occupied in a zone (capacity from the sensor, else from the config)."""

    site: str
    zone: str
    occupied: int
    capacity: int | None
    at: datetime
    source: str


@dataclass(frozen=True)
class QueueReading:
    """An entrance queue: its length, the wait the sensor measured, and admissions per hour."""

    site: str
    queue: str
    length: int | None
    wait_minutes: float | None
    throughput_per_hour: float | None
    at: datetime
    source: str


@dataclass(frozen=True)
class GateReading:
    """A gate counter's cumulative totals since it was last reset (not an occupancy)."""

    site: str
    zone: str
    total_in: int
    total_out: int
    at: datetime
    source: str


@dataclass(frozen=True)
class StatusReading:
    """A building system (fire panel, access control) setting a site's or zone's status."""

    site: str
    zone: str | None
    level: Level
    reason: str
    at: datetime
    source: str


Reading = SeatReading | QueueReading | GateReading | StatusReading
