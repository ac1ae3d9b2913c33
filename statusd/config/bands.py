"""Bands (free / busy / nearly full / full; queue waits) and hysteresis between them."""

from __future__ import annotations

from dataclasses import dataclass

SEAT_BANDS: tuple[tuple[str, float], ...] = (
    ("free", 0.0),
    ("busy", 50.0),
    ("nearly_full", 80.0),
    ("full", 95.0),
)
# Changes between quiet bands are not posted: there are seats, or no real queue, either way.
SEAT_QUIET = ("free", "busy")
QUEUE_QUIET = ("none", "under_15")
# Minutes of wait; "none" is no queue worth mentioning (a few minutes at most).
QUEUE_BANDS: tuple[tuple[str, float], ...] = (
    ("none", 0.0),
    ("under_15", 5.0),
    ("15_30", 15.0),
    ("30_60", 30.0),
    ("60_90", 60.0),
    ("over_90", 90.0),
)


@dataclass(frozen=True)
class Bands:
    """Named bands by lower bound (ascending, the first at 0) and the hysteresis between them.

    A value enters a higher band as soon as it reaches the band's lower bound,
    and leaves it downwards only once it is `hysteresis` below that bound
    (a Schmitt trigger), so a value wobbling on a boundary changes band once.
    The hysteresis of one edge is at most half the band below it, so a
    narrow band (no queue → under 15 min) can still be left.
    """

    names: tuple[str, ...]
    lowers: tuple[float, ...]
    hysteresis: float

    @classmethod
    def of(cls, pairs: tuple[tuple[str, float], ...], hysteresis: float) -> Bands:
        return cls(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), hysteresis)

    @property
    def lowest(self) -> str:
        return self.names[0]

    def raw(self, value: float) -> str:
        """The band `value` falls in, without hysteresis."""
        index = 0
        while index + 1 < len(self.lowers) and value >= self.lowers[index + 1]:
            index += 1
        return self.names[index]

    def classify(self, value: float, current: str | None) -> str:
        """The band for `value`, given the band it is in now (None: no history)."""
        if current not in self.names:
            return self.raw(value)
        index = self.names.index(current)
        while index + 1 < len(self.lowers) and value >= self.lowers[index + 1]:
            index += 1
        while index > 0 and value < self.lowers[index] - self._margin(index):
            index -= 1
        return self.names[index]

    def rank(self, name: str | None) -> int:
        return self.names.index(name) if name in self.names else 0

    def _margin(self, index: int) -> float:
        return min(self.hysteresis, (self.lowers[index] - self.lowers[index - 1]) / 2)
