"""Queue waits: Little's law from the admission rate, and rounding to steps patrons understand."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime


class AdmissionRate:
    """Patrons admitted per minute, smoothed over a window (10-15 min reads well).

    Fed either by the queue sensor's throughput per hour (averaged over the
    window) or by a gate counter's cumulative "in" total (its growth over the
    window); the gate wins when both are present, being a count, not a guess.
    """

    def __init__(self, window: float) -> None:
        self._window = window
        self._throughput: deque[tuple[datetime, float]] = deque()
        self._gate: deque[tuple[datetime, int]] = deque()

    def throughput(self, at: datetime, per_hour: float) -> None:
        self._throughput.append((at, max(per_hour, 0.0)))

    def gate(self, at: datetime, total_in: int) -> None:
        if self._gate and total_in < self._gate[-1][1]:
            self._gate.clear()  # the counter was reset (at opening, or a restart)
        self._gate.append((at, total_in))

    def per_minute(self, now: datetime) -> float | None:
        """The smoothed rate at `now`, or None when nothing recent says."""
        self._trim(self._gate, now)
        self._trim(self._throughput, now)
        if len(self._gate) >= 2:
            (first, count0), (last, count1) = self._gate[0], self._gate[-1]
            minutes = (last - first).total_seconds() / 60
            if minutes >= 1:
                return (count1 - count0) / minutes
        if self._throughput:
            return sum(v for _, v in self._throughput) / len(self._throughput) / 60
        return None

    def _trim(
        self, samples: deque[tuple[datetime, float]] | deque[tuple[datetime, int]], now: datetime
    ) -> None:
        while samples and (now - samples[0][0]).total_seconds() > self._window:
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
