"""The leaf values of the configuration: sites, zones, secrets, channel and delivery settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from statusd.errors import remember_secret

# Values copied from documentation that must never reach production.
SAMPLE_SECRETS = {"changeme", "change-me", "secret", "xxx", "token", "password"}


@dataclass(frozen=True)
class Secret:
    """Where a secret lives: an environment variable, a systemd credential or a file."""

    source: str
    ref: str

    def read(self) -> str | None:
        """The secret's value, or None when it is not set."""
        if self.source == "env":
            # A pasted secret often ends in a line break, which no header may carry.
            value = (os.environ.get(self.ref) or "").strip()
        else:
            path = Path(self.ref)
            if self.source == "credential":
                path = Path(os.environ.get("CREDENTIALS_DIRECTORY", "/run/credentials")) / self.ref
            try:
                value = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):  # unreadable, or not text: as good as unset, and
                value = None  # said so by where it is (describe), never by what it holds
        remember_secret(value)  # so that no log line or error can show it
        return value or None

    def describe(self) -> str:
        """Where it is read from, never what it is."""
        return {"env": "environment variable", "credential": "credential"}.get(
            self.source, "file"
        ) + f" {self.ref}"


@dataclass(frozen=True)
class Zone:
    """A floor or reading room with a seat capacity."""

    id: str
    name: Mapping[str, str]
    capacity: int


@dataclass(frozen=True)
class Queue:
    """An entrance where patrons queue."""

    id: str
    name: Mapping[str, str]


@dataclass(frozen=True)
class Site:
    """A place patrons go to."""

    id: str
    name: Mapping[str, str]
    timezone: str
    url: str
    services: Mapping[str, Mapping[str, str]]
    zones: Mapping[str, Zone]
    queues: Mapping[str, Queue]
    # Regular opening hours: weekday (0 = Monday) → (opens, closes) periods, local time.
    hours: Mapping[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class BudgetConfig:
    """A channel's posting budget: points per 24 h and per window, what a post costs.

    None means no limit for that period; `reserve` is how many posts are kept
    for staff changes and emergencies (None: a fifth of the tighter period).
    """

    per_day: int | None = None
    per_window: int | None = None
    window: float = 3600.0
    cost: int = 1
    reserve: int | None = None


BUDGET_KEYS = ("per_day", "per_window", "window", "cost", "reserve")


@dataclass(frozen=True)
class ChannelConfig:
    """One configured channel: its type, language, scope and type-specific options."""

    name: str
    type: str
    language: str
    sites: tuple[str, ...] | None
    events: tuple[str, ...] | None
    # The channel type's own frozen `Options` dataclass, checked at load.
    options: Any
    secrets: Mapping[str, Secret]
    # The account's own posting budget, overriding the platform's defaults key by key.
    budget: Mapping[str, Any] = field(default_factory=dict)
    # Languages to post in, in order, when an update has no text in `language` (None: the config's).
    fallback: tuple[str, ...] | None = None

    def carries(self, site: str, kind: str) -> bool:
        """Whether this channel speaks for `site` and carries events of `kind`.

        Without an `events` list a channel carries every kind for patrons;
        sensor_lost/restored are notices for operators, carried only where listed.
        """
        if self.sites is not None and site not in self.sites:
            return False
        if self.events is None:
            return kind not in OPERATOR_KINDS
        return kind in self.events


HOLD_KINDS = ("staff", "emergency", "schedule", "sensor")
OPERATOR_KINDS = ("sensor_lost", "sensor_restored")


@dataclass(frozen=True)
class DeliveryConfig:
    """How hard the outbox tries, and when planned closures are reminded.

    `hold` delays sending by kind of update (staff, emergency, schedule,
    sensor) so that `statusd undo` can cancel a mistake before it is posted.
    """

    deadline: float = 6 * 3600.0
    backoff: float = 2.0
    backoff_max: float = 300.0
    timeout: float = 10.0
    reminder: float = 86400.0
    grace: float = 10.0
    hold: Mapping[str, float] = field(default_factory=dict)
    recheck: float = 6 * 3600.0  # how often every channel's credentials are checked
    # How long the store keeps events and their deliveries (what `statusd history` shows).
    history: float = 90 * 86400.0


@dataclass(frozen=True)
class WebConfig:
    """The public website side: banner behaviour and where documents are exported."""

    banner_when_open: bool = False
    export_dir: Path | None = None
    # The SSE hub's publisher URL with `{channel}` in it (nginx + nchan), or None: no hub.
    hub: str | None = None


