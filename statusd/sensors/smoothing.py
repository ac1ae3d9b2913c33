"""Calming noisy readings: a time-aware exponential average, or a moving median."""

from __future__ import annotations

import math
import statistics
from collections import deque
from datetime import datetime

from statusd.config.rules import Smoothing


class Smoother:
    """One series' smoothed value; readings may come at any pace.

    The exponential average weighs a reading by the time since the last one
    (time constant `window`), so a sensor that reports twice as often is not
    smoothed twice as hard. The median keeps the readings of the last `window`.
    """

    def __init__(self, rule: Smoothing) -> None:
        self._rule = rule
        self._value: float | None = None
        self._at: datetime | None = None
        self._recent: deque[tuple[datetime, float]] = deque()

    @property
    def value(self) -> float | None:
        return self._value

    def reset(self) -> None:
        """Forget the past (after an outage the old average means nothing)."""
        self._value, self._at = None, None
        self._recent.clear()

    def add(self, at: datetime, raw: float) -> float:
        """Take a reading; return the smoothed value."""
        if self._rule.method == "median":
            self._value = self._median(at, raw)
        elif self._rule.method == "ewma" and self._value is not None and self._at is not None:
            elapsed = max((at - self._at).total_seconds(), 0.0)
            weight = 1.0 - math.exp(-elapsed / self._rule.window) if self._rule.window else 1.0
            self._value += weight * (raw - self._value)
        else:
            self._value = raw
        self._at = at
        return self._value

    def _median(self, at: datetime, raw: float) -> float:
        self._recent.append((at, raw))
        while (at - self._recent[0][0]).total_seconds() > self._rule.window:
            self._recent.popleft()
        return float(statistics.median(v for _, v in self._recent))
