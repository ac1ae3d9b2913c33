"""The shared vocabulary: status levels, what staff want said, and targets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class Level(str, Enum):
    """How a site or one of its services is doing, from good to worst."""

    OPEN = "open"
    LIMITED = "limited"
    CLOSED = "closed"
    EMERGENCY = "emergency"

    @property
    def severity(self) -> int:
        return list(Level).index(self)


LEVELS: tuple[str, ...] = tuple(level.value for level in Level)


@dataclass(frozen=True)
class Target:
    """A site, or one service of a site ("main", "main/wifi")."""

    site: str
    service: str | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        site, _, service = text.partition("/")
        return cls(site, service or None)

    def __str__(self) -> str:
        return f"{self.site}/{self.service}" if self.service else self.site


@dataclass(frozen=True)
class StatusEntry:
    """What staff want said about one target, as written in status.yaml.

    `starts` and `until` are aware datetimes in the site's time zone. `by` and
    `at` are stamped by `statusd set`; a hand edit usually leaves them stale.
    """

    level: Level = Level.OPEN
    message: Mapping[str, str] = field(default_factory=dict)
    starts: datetime | None = None
    until: datetime | None = None
    by: str | None = None
    at: datetime | None = None


# The author of a status a building system pushed (a fire panel, an access system): `feed:<name>`.
FEED_AUTHOR = "feed:"

# What status.yaml asks for: every target it mentions, sites and services.
Wanted = Mapping[Target, StatusEntry]


@dataclass(frozen=True)
class Announced:
    """What was last said about a target: its level and a fingerprint of the facts.

    The rules compare it with what is wanted, the store keeps it, the web shows
    it: it lives here so that none of them imports a later stage.
    """

    level: str
    fingerprint: str
    stamp: str = ""
    event_id: str | None = None
    since: float = 0.0
