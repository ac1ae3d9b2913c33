"""The public picture of every site, as served in status.json."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from statusd.config import Config, Site
from statusd.model import StatusEntry, Target, Wanted
from statusd.outbox.store import Announced
from statusd.rules import effective


def snapshot(config: Config, wanted: Wanted, announced: Mapping[str, Announced], now: datetime) -> dict[str, Any]:
    """Every site and service with the level in force now, its message and times."""
    return {
        "generated_at": _iso(now),
        "sites": {
            site.id: _site(site, wanted, announced, now) for site in config.sites.values()
        },
    }


def _site(site: Site, wanted: Wanted, announced: Mapping[str, Announced], now: datetime) -> dict[str, Any]:
    target = Target(site.id)
    data = _status(wanted.get(target, StatusEntry()), announced.get(str(target)), now)
    data["name"] = dict(site.name)
    data["url"] = site.url
    data["timezone"] = site.timezone
    data["services"] = {
        service: {
            "name": dict(names),
            **_status(wanted.get(Target(site.id, service), StatusEntry()),
                      announced.get(f"{site.id}/{service}"), now),
        }
        for service, names in site.services.items()
    }
    return data


def _status(entry: StatusEntry, said: Announced | None, now: datetime) -> dict[str, Any]:
    current = effective(entry, now)
    planned = entry.starts is not None and now < entry.starts
    return {
        "level": current.level.value,
        "message": dict(current.entry.message),
        "since": _iso(datetime.fromtimestamp(said.since, timezone.utc)) if said and said.since else None,
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
