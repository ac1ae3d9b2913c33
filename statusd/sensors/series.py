"""One sensor's series (a zone's seats or an entrance queue): smoothed value, band, freshness."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from statusd.config.rules import Smoothing, Watch
from statusd.sensors.queue import AdmissionRate, littles_law, round_wait
from statusd.sensors.smoothing import Smoother
from statusd.sources.readings import QueueReading, SeatReading

ZONE, QUEUE = "zone", "queue"


class Series:
    """What one sensor says now, and what patrons were last told about it.

    `band` follows the smoothed value with hysteresis; `announced` is the band
    of the last post (None: nothing said since opening, which reads as the
    calm lowest band — a day starts with "seats free", "no queue").
    """

    family: str = ZONE

    def __init__(self, site: str, item: str, watch: Watch, smoothing: Smoothing) -> None:
        self.site = site
        self.id = item
        self.watch = watch
        self.smoother = Smoother(smoothing)
        self.band: str | None = None
        self.announced: str | None = None
        self.updated_at: datetime | None = None
        self.lost = False

    def told(self) -> str:
        return self.announced or self.watch.bands.lowest

    def fresh(self, now: datetime) -> bool:
        if self.updated_at is None:
            return False
        return (now - self.updated_at).total_seconds() <= self.watch.stale_after

    def _accept(self, at: datetime) -> bool:
        """Whether a reading taken `at` is news; after a silence the old average is dropped."""
        if self.updated_at is not None and at <= self.updated_at:
            return False
        if (
            self.updated_at is not None
            and (at - self.updated_at).total_seconds() > self.watch.stale_after
        ):
            self.smoother.reset()
        return True

    def _classify(self, value: float | None, at: datetime) -> None:
        self.band = None if value is None else self.watch.bands.classify(value, self.band)
        self.updated_at = at

    def figures(self) -> dict[str, Any]:
        raise NotImplementedError


class ZoneSeries(Series):
    """Seats in a zone; the band is on the smoothed percentage occupied."""

    family = ZONE

    def __init__(
        self, site: str, item: str, watch: Watch, smoothing: Smoothing, capacity: int
    ) -> None:
        super().__init__(site, item, watch, smoothing)
        self.capacity = capacity
        self.occupied: float | None = None

    def update(self, reading: SeatReading) -> bool:
        if not self._accept(reading.at):
            return False
        self.capacity = reading.capacity or self.capacity
        occupied = min(max(reading.occupied, 0), self.capacity)
        self.occupied = self.smoother.add(reading.at, occupied)
        self._classify(self.percent, reading.at)
        return True

    @property
    def percent(self) -> float | None:
        return None if self.occupied is None else 100.0 * self.occupied / self.capacity

    def figures(self) -> dict[str, Any]:
        occupied = round(self.occupied) if self.occupied is not None else None
        return {
            "occupied": occupied,
            "capacity": self.capacity,
            "free": None if occupied is None else self.capacity - occupied,
            "percent": None if self.percent is None else round(self.percent),
        }


class QueueSeries(Series):
    """An entrance queue; the band is on the smoothed wait in minutes.

    The wait is the sensor's when it gives one, else Little's law from the
    queue length and the admission rate (then flagged as an estimate).
    """

    family = QUEUE

    def __init__(
        self, site: str, item: str, watch: Watch, smoothing: Smoothing, window: float
    ) -> None:
        super().__init__(site, item, watch, smoothing)
        self.rate = AdmissionRate(window)
        self.length: int | None = None
        self.wait: float | None = None
        self.estimate = False

    def update(self, reading: QueueReading) -> bool:
        if reading.throughput_per_hour is not None:
            self.rate.throughput(reading.at, reading.throughput_per_hour)
        if not self._accept(reading.at):
            return False
        self.length = reading.length
        raw, self.estimate = reading.wait_minutes, False
        if raw is None and reading.length is not None:
            raw = littles_law(reading.length, self.rate.per_minute(reading.at))
            self.estimate = reading.length > 0
        self.wait = None if raw is None else self.smoother.add(reading.at, max(raw, 0.0))
        self._classify(self.wait, reading.at)
        return True

    def figures(self) -> dict[str, Any]:
        step = round_wait(self.wait) if self.wait is not None else None
        return {
            "length": self.length,
            "wait_minutes": None if self.wait is None else round(self.wait),
            "estimate": self.estimate,
            "wait": step.as_dict() if step else None,
        }


def summary(series: Series, changed: bool) -> dict[str, Any]:
    """One zone or queue as an event lists it: band, the band last told, figures."""
    return {
        "id": series.id,
        "band": series.band,
        "previous_band": series.told(),
        "changed": changed,
        **series.figures(),
    }


def outage(series: Series) -> dict[str, Any]:
    """A silent sensor as a sensor_lost/restored event tells it."""
    assert series.updated_at is not None
    return {
        series.family: series.id,
        "last_seen": series.updated_at.isoformat(),
        "stale_after": series.watch.stale_after,
        "band": series.band,
    }
