"""What the seats, queue and sensor templates see, from an event's `extra` figures.

Every variable is present for every event (empty or None when it does not
apply), so a template can test it without tripping the strict sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_time

from statusd.config.types import Site
from statusd.events import Event

SENSOR_VARIABLES = (
    "zones",
    "queues",
    "zone",
    "queue",
    "band",
    "previous_band",
    "free",
    "capacity",
    "percent",
    "length",
    "wait",
    "estimate",
    "last_seen",
)


def sensor_context(event: Event, site: Site, lang: str) -> dict[str, Any]:
    """The sensor variables for `event` in `lang` (None or empty for other kinds)."""
    extra = event.extra
    zones = [_item(z, site.zones, lang) for z in extra.get("zones") or ()]
    queues = [_item(q, site.queues, lang) for q in extra.get("queues") or ()]
    zone, queue = extra.get("zone"), extra.get("queue")
    return {
        "zones": zones,
        "queues": queues,
        "zone": _name(site.zones, zone, lang) if zone else None,
        "queue": _name(site.queues, queue, lang) if queue else None,
        "band": extra.get("band"),
        "previous_band": extra.get("previous_band"),
        "free": extra.get("free"),
        "capacity": extra.get("capacity"),
        "percent": extra.get("percent"),
        "length": extra.get("length"),
        "wait": extra.get("wait"),
        "estimate": bool(extra.get("estimate")),
        "last_seen": _time(extra.get("last_seen"), site, lang),
    }


def _item(data: Mapping[str, Any], names: Mapping[str, Any], lang: str) -> dict[str, Any]:
    return {**data, "name": _name(names, str(data.get("id")), lang), "code": data.get("id")}


def _name(items: Mapping[str, Any], item: str, lang: str) -> str:
    """A zone's or queue's name in `lang`; its id when it is not configured."""
    known = items.get(item)
    return (known.name.get(lang) or item) if known else item


def _time(iso: Any, site: Site, lang: str) -> str | None:
    if not isinstance(iso, str):
        return None
    moment = datetime.fromisoformat(iso).astimezone(site.tz)
    try:
        locale = Locale.parse(lang, sep="-")
    except (ValueError, UnknownLocaleError):
        locale = Locale.parse("en")
    return str(format_time(moment, "short", locale=locale))
