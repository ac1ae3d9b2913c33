"""The public picture of every site, as served in status.json."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from statusd.config.load import Config
from statusd.config.types import Site
from statusd.events import Event
from statusd.model import Announced, StatusEntry, Target, Wanted
from statusd.rules import effective

# How many of the latest updates status.json carries.
UPDATES = 10


def snapshot(
    config: Config,
    wanted: Wanted,
    announced: Mapping[str, Announced],
    now: datetime,
    recent: Sequence[Event] = (),
    live: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every site and service with the level in force now, its message and times.

    `recent` is the latest events, newest first; the first UPDATES are listed.
    The schema is documented in status.schema.json beside this file.
    """
    return head(config, now, recent) | {
        "sites": {
            site.id: site_entry(site, wanted, announced, now, (live or {}).get(site.id))
            for site in config.sites.values()
        },
    }


def head(config: Config, now: datetime, recent: Sequence[Event] = ()) -> dict[str, Any]:
    """Everything of the snapshot but the sites."""
    return {
        "generated_at": _iso(now),
        "url": config.public_url + "/",
        "languages": list(config.languages),
        "updates": [update(event) for event in recent[:UPDATES]],
    }


def update(event: Event) -> dict[str, Any]:
    """One entry of `updates`: what was said, about what, and when."""
    return {
        "id": event.id,
        "kind": event.kind.value,
        "target": str(event.target),
        "level": event.level.value,
        "message": dict(event.message),
        "at": _iso(event.at),
        "reason": event.reason,
    }


def site_entry(site: Site, wanted: Wanted, announced: Mapping[str, Announced], now: datetime,
               live: Mapping[str, Any] | None) -> dict[str, Any]:
    """One site of `sites`: its status, its services' and its live figures."""
    target = Target(site.id)
    data = _status(wanted.get(target, StatusEntry()), announced.get(str(target)), now)
    data["name"] = dict(site.name)
    data["url"] = site.url
    data["timezone"] = site.timezone
    data["updated_at"] = _updated_at(site, announced)
    data["services"] = {
        service: {
            "name": dict(names),
            **_status(wanted.get(Target(site.id, service), StatusEntry()),
                      announced.get(f"{site.id}/{service}"), now),
        }
        for service, names in site.services.items()
    }
    if live is not None:
        data.update(_live(data["level"], live))
    return data


BUSY_SEATS = ("nearly_full", "full")
BUSY_WAIT = 30


def _live(level: str, live: Mapping[str, Any]) -> dict[str, Any]:
    """Seats and queues from the sensors; none while staff have closed the site (staff wins)."""
    if level in ("closed", "emergency"):
        return {"zones": {}, "queues": {}, "total": None, "busy": False}
    zones, queues, total = live.get("zones") or {}, live.get("queues") or {}, live.get("total")
    busy = any((z or {}).get("band") in BUSY_SEATS for z in [total, *zones.values()]) or any(
        ((q or {}).get("wait_minutes") or 0) >= BUSY_WAIT for q in queues.values())
    return {"zones": dict(zones), "queues": dict(queues), "total": total, "busy": busy}


def _updated_at(site: Site, announced: Mapping[str, Announced]) -> str | None:
    """When the site or one of its services last changed, as announced."""
    keys = [site.id, *(f"{site.id}/{service}" for service in site.services)]
    stamps = [announced[key].since for key in keys if key in announced and announced[key].since]
    return _iso(datetime.fromtimestamp(max(stamps), UTC)) if stamps else None


def _status(entry: StatusEntry, said: Announced | None, now: datetime) -> dict[str, Any]:
    current = effective(entry, now)
    planned = entry.starts is not None and now < entry.starts
    return {
        "level": current.level.value,
        "message": dict(current.entry.message),
        "since": _iso(datetime.fromtimestamp(said.since, UTC)) if said and said.since else None,
        "until": _iso(current.entry.until),
        "planned": {
            "level": entry.level.value,
            "message": dict(entry.message),
            "from": _iso(entry.starts),
            "until": _iso(entry.until),
        } if planned else None,
    }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
