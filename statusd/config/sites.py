"""The sites section of statusd.yaml: names per language, time zones, services, zones, hours."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from statusd.config.reader import Section, parse_url
from statusd.config.types import Queue, Site, Zone


def _names(section: Section, languages: tuple[str, ...], fallback: str) -> Mapping[str, str]:
    """A name per language: either one text for all, or {fr: ..., en: ...}."""
    value = section.node
    if value is None:
        return {lang: fallback for lang in languages}
    if isinstance(value, str):
        return {lang: value for lang in languages}
    if not isinstance(value, Mapping):
        section.problems.add(section.line(), section.path, "should be a text or a mapping of language to text")
        return {lang: fallback for lang in languages}
    names = {}
    for lang, text in value.items():
        if lang not in languages:
            section.error(str(lang), f"unknown language; the configured languages are {list(languages)}")
        elif not isinstance(text, str):
            section.error(str(lang), "should be a text")
        else:
            names[str(lang)] = text
    return {lang: names.get(lang, names.get(languages[0], fallback)) for lang in languages}


def parse_sites(section: Section, languages: tuple[str, ...], public_url: str) -> dict[str, Site]:
    """Every site, checked; problems are added to the section's collection."""
    if section.node is None:
        section.problems.add(None, "sites", "at least one site is required")
        return {}
    if not section.is_mapping():
        return {}
    return {
        site_id: site
        for site_id, sub in section.items()
        if section.identifier(site_id) and (site := parse_site(site_id, sub, languages, public_url))
    }


def parse_site(site_id: str, section: Section, languages: tuple[str, ...], public_url: str) -> Site | None:
    """One site, checked (None if it is not a mapping); problems are added to the section's collection."""
    if not section.is_mapping():
        return None
    section.allow("name", "timezone", "url", "services", "zones", "queues", "hours")
    timezone = section.string("timezone", "UTC") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        section.error("timezone", f"unknown time zone {timezone!r}; use a name such as Europe/Paris")
        timezone = "UTC"
    services_section = section.sub("services")
    services: dict[str, Mapping[str, str]] = {}
    if services_section.node is not None and services_section.is_mapping():
        for service_id, sub in services_section.items():
            if services_section.identifier(service_id):
                services[service_id] = _names(sub, languages, service_id)
    return Site(
        id=site_id,
        name=_names(section.sub("name"), languages, site_id),
        timezone=timezone,
        url=parse_url(section, "url") or f"{public_url.rstrip('/')}/#{site_id}",
        services=services,
        zones=_zones(section.sub("zones"), languages),
        queues=_queues(section.sub("queues"), languages),
        hours=_hours(section.sub("hours")),
    )


def _zones(section: Section, languages: tuple[str, ...]) -> dict[str, Zone]:
    zones: dict[str, Zone] = {}
    if section.node is None or not section.is_mapping():
        return zones
    for zone_id, sub in section.items():
        if section.identifier(zone_id) and sub.is_mapping():
            sub.allow("name", "capacity")
            capacity = sub.integer("capacity", minimum=1)
            if capacity is None and sub.get("capacity") is None:
                sub.error("capacity", "is required (the number of seats)")
            zones[zone_id] = Zone(zone_id, _names(sub.sub("name"), languages, zone_id), capacity or 1)
    return zones


def _queues(section: Section, languages: tuple[str, ...]) -> dict[str, Queue]:
    queues: dict[str, Queue] = {}
    if section.node is None or not section.is_mapping():
        return queues
    for queue_id, sub in section.items():
        if section.identifier(queue_id) and (sub.node is None or sub.is_mapping()):
            sub.allow("name")
            queues[queue_id] = Queue(queue_id, _names(sub.sub("name"), languages, queue_id))
    return queues


_DAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")
_PERIOD = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)$")


def _hours(section: Section) -> dict[int, tuple[tuple[time, time], ...]]:
    """Opening hours such as {mo-fr: "09:00-20:00", sa: "10:00-13:00, 14:00-18:00", su: closed}."""
    hours: dict[int, tuple[tuple[time, time], ...]] = {}
    if section.node is None or not section.is_mapping():
        return hours
    for key, sub in section.items():
        days = _day_range(key)
        periods = _periods(sub.node)
        if days is None:
            section.error(key, "should be a day or a range of days: mo, tu, we, th, fr, sa, su, e.g. mo-fr")
        elif periods is None:
            section.error(key, f'should be "closed" or periods such as "09:00-20:00", got {sub.node!r}')
        else:
            hours.update({day: periods for day in days})
    return hours


def _day_range(key: str) -> list[int] | None:
    first, _, last = key.lower().partition("-")
    if first not in _DAYS or (last and last not in _DAYS):
        return None
    start, end = _DAYS.index(first), _DAYS.index(last or first)
    return list(range(start, end + 1)) if start <= end else None


def _periods(value: Any) -> tuple[tuple[time, time], ...] | None:
    if value == "closed":
        return ()
    if not isinstance(value, str):
        return None
    periods = []
    for part in value.split(","):
        match = _PERIOD.match(part.strip())
        if not match:
            return None
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        # 24:00 is the day's very end: time.max, so that every reading of the day's last second is open.
        opens, closes = time(h1 % 24, m1), time.max if h2 == 24 else time(h2, m2)
        if closes <= opens:
            return None
        periods.append((opens, closes))
    return tuple(periods)
