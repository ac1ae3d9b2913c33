"""Queue waits: Little's law from the admission rate, and rounding to steps patrons understand."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Readings closer together than this share one bucket: memory stays bounded by the window,
# not by how fast a sensor reports (50 a second or one a minute).
BUCKET = 10.0


class AdmissionRate:
    """Patrons admitted per minute, smoothed over a window (10-15 min reads well).

    Fed either by the queue sensor's throughput per hour (averaged over the
    window) or by a gate counter's cumulative "in" total (its growth over the
    window); the gate wins when both are present, being a count, not a guess.
    Every sample is trimmed to the window as it arrives, whether or not the
    rate is ever read.
    """

    def __init__(self, window: float) -> None:
        self._window = window
        self._throughput: deque[list[Any]] = deque()  # [bucket start, sum per hour, count]
        self._gate: deque[tuple[datetime, int]] = deque()

    def __len__(self) -> int:
        """How many samples are kept (bounded by the window over BUCKET)."""
        return len(self._throughput) + len(self._gate)

    def throughput(self, at: datetime, per_hour: float) -> None:
        value = max(per_hour, 0.0)
        last = self._throughput[-1] if self._throughput else None
        if last is not None and 0 <= (at - last[0]).total_seconds() < BUCKET:
            last[1] += value
            last[2] += 1
        elif last is None or at > last[0]:
            self._throughput.append([at, value, 1])
        self._trim(self._throughput, at)

    def gate(self, at: datetime, total_in: int) -> None:
        if self._gate and total_in < self._gate[-1][1]:
            self._gate.clear()  # the counter was reset (at opening, or a restart)
        if self._gate and at < self._gate[-1][0]:
            return  # older than what we have: the growth is read from the newest
        if len(self._gate) >= 2 and (at - self._gate[-2][0]).total_seconds() < BUCKET:
            self._gate[-1] = (at, total_in)  # the first of a bucket stays, the newest replaces the rest
        else:
            self._gate.append((at, total_in))
        self._trim(self._gate, at)

    def per_minute(self, now: datetime) -> float | None:
        """The smoothed rate at `now`, or None when nothing recent says."""
        self._trim(self._gate, now)
        self._trim(self._throughput, now)
        if len(self._gate) >= 2:
            (first, count0), (last, count1) = self._gate[0], self._gate[-1]
            minutes = (last - first).total_seconds() / 60
            if minutes >= 1:
                return (count1 - count0) / minutes
        count: int = sum(bucket[2] for bucket in self._throughput)
        total: float = sum(bucket[1] for bucket in self._throughput)
        if count:
            return total / count / 60
        return None

    def _trim(self, samples: deque[Any], now: datetime) -> None:
        newest = max(now, samples[-1][0]) if samples else now
        while samples and (newest - samples[0][0]).total_seconds() > self._window:
            samples.popleft()


def littles_law(length: int, rate_per_minute: float | None) -> float | None:
    """Minutes of wait ≈ people in the queue ÷ admissions per minute (None: cannot tell)."""
    if length <= 0:
        return 0.0
    if rate_per_minute is None or rate_per_minute <= 0:
        return None
    return length / rate_per_minute


@dataclass(frozen=True)
class Step:
    """A wait as patrons are told it: kind none / under / about / over, and minutes.

    `hours` and `rest` split the minutes for wording such as "over 1 h 30".
    """

    kind: str
    minutes: int

    @property
    def hours(self) -> int:
        return self.minutes // 60

    @property
    def rest(self) -> int:
        return self.minutes % 60

    def as_dict(self) -> dict[str, int | str]:
        return {"kind": self.kind, "minutes": self.minutes, "hours": self.hours, "rest": self.rest}


def round_wait(minutes: float) -> Step:
    """The step for a wait: none < 1 min; under 5; about, to 5 min below 30 and 15 min up to
    an hour; beyond an hour "over", by half hours (over 1 h, over 1 h 30, over 2 h)."""
    if minutes < 1:
        return Step("none", 0)
    if minutes < 5:
        return Step("under", 5)
    if minutes < 30:
        return Step("about", max(5, int(5 * round(minutes / 5))))
    if minutes < 60:
        return Step("about", int(15 * round(minutes / 15)))
    return Step("over", int(30 * (minutes // 30)))
