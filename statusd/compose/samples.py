"""Sample events of every kind, level and shape, for `statusd check` to try each template on."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from statusd.config.load import Config
from statusd.config.types import ChannelConfig, Site
from statusd.events import Event, EventKind
from statusd.model import Level, Target

_SAMPLE_MESSAGE = {
    "fr": "Fermeture exceptionnelle : dégât des eaux au rez-de-chaussée.",
    "en": "Unexpected closure: water damage on the ground floor.",
    "sv": "Oplanerad stängning: vattenskada på bottenvåningen.",
}


def samples(config: Config, channel: ChannelConfig) -> Iterator[tuple[Event, str]]:
    """Events of every kind the channel carries, at every level, to try each template on."""
    sites = [s for s in config.sites.values() if channel.sites is None or s.id in channel.sites]
    if not sites:
        return
    lang = channel.language
    site = max(sites, key=lambda s: len(s.name.get(lang, s.id)))  # the longest is the worst case
    services = sorted(site.services, key=lambda s: -len(site.services[s].get(lang, s)))
    message = {lang: _SAMPLE_MESSAGE.get(lang, _SAMPLE_MESSAGE["en"])}
    at = datetime(2026, 12, 23, 18, 0, tzinfo=site.tz)
    starts, until = at + timedelta(days=1), at + timedelta(days=3, hours=-8)
    samples = [sample for target in [Target(site.id), *[Target(site.id, s) for s in services[:1]]]
               for sample in _sample_events(target, message, at, starts, until)]
    for event, description in [*samples, *_sensor_samples(site, at)]:
        if channel.events is None or event.kind.value in channel.events:
            yield event, description


def _sample_events(target: Target, message: Mapping[str, str], at: datetime, starts: datetime,
                   until: datetime) -> Iterator[tuple[Event, str]]:
    def event(kind: EventKind, level: Level, previous: Level, with_message: bool,
              **extra: Any) -> tuple[Event, str]:
        text = f"{kind.value} {previous.value}→{level.value} of {target}"
        text += " with a message" if with_message else ""
        text += "".join(f", {key} {v if isinstance(v, str) else 'set'}" for key, v in extra.items())
        return Event(kind, target, level, previous, message if with_message else {}, at, "check",
                     "sample", **extra), text

    for level in Level:
        previous = Level.CLOSED if level is Level.OPEN else Level.OPEN
        for with_message in (False, True):
            yield event(EventKind.STATUS_CHANGED, level, previous, with_message)
            yield event(EventKind.STATUS_CHANGED, level, previous, with_message, until=until)
    yield event(EventKind.STATUS_CHANGED, Level.OPEN, Level.EMERGENCY, False, reason="expired")
    yield event(EventKind.STATUS_CHANGED, Level.CLOSED, Level.OPEN, True, reason="scheduled",
                starts=at, until=until)
    for kind in (EventKind.CLOSURE_PLANNED, EventKind.CLOSURE_REMINDER):
        for with_message in (False, True):
            yield event(kind, Level.CLOSED, Level.OPEN, with_message, starts=starts)
            yield event(kind, Level.CLOSED, Level.OPEN, with_message, starts=starts, until=until)


def _sensor_samples(site: Site, at: datetime) -> Iterator[tuple[Event, str]]:
    """Seats, queue and sensor events for `site`, every zone and queue listed (the longest case)."""
    zones = list(site.zones) or ["zone"]
    queues = list(site.queues) or ["entrance"]
    seat_bands = ("free", "busy", "nearly_full", "full")

    def event(kind: EventKind, description: str, **extra: Any) -> tuple[Event, str]:
        sample = Event(kind, Target(site.id), Level.OPEN, Level.OPEN, {}, at, "check", "sample",
                       reason="sensor", extra=extra)
        return sample, f"{kind.value} of {site.id}, {description}"

    for band, previous in zip(seat_bands, seat_bands[1:] + seat_bands[:1]):
        for changed in (zones[:1], zones):
            listed = [{"id": z, "band": band if z in changed else "free", "previous_band": previous,
                       "changed": z in changed, "occupied": 950, "capacity": 1000, "free": 50,
                       "percent": 95} for z in zones]
            yield event(EventKind.SEATS_CHANGED, f"{len(changed)} zone(s) {previous}→{band}",
                        zone=zones[0], band=band, previous_band=previous, zones=listed,
                        free=50, capacity=1000, percent=95, occupied=950)
    for kind, minutes in (("none", 0), ("under", 5), ("about", 45), ("about", 60), ("over", 90)):
        for estimate in (False, True):
            wait = {"kind": kind, "minutes": minutes, "hours": minutes // 60, "rest": minutes % 60}
            listed = [{"id": q, "band": "30_60", "previous_band": "15_30", "changed": True,
                       "length": 250, "wait_minutes": minutes, "estimate": estimate, "wait": wait}
                      for q in queues]
            yield event(EventKind.QUEUE_CHANGED, f"wait {kind} {minutes} min", queue=queues[0],
                        band="30_60", previous_band="15_30", wait=wait, estimate=estimate,
                        length=250, queues=listed)
    for kind in (EventKind.SENSOR_LOST, EventKind.SENSOR_RESTORED):
        yield event(kind, f"zone {zones[0]}", zone=zones[0], last_seen=at.isoformat())
        yield event(kind, f"queue {queues[0]}", queue=queues[0], last_seen=at.isoformat())
