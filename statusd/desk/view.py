"""What the desk page shows: one card per permitted site, and a change's preview.

Plain values (dicts) for the templates, read in a worker thread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from statusd.config.load import Config
from statusd.desk.accounts import Person
from statusd.desk.preview import ChannelText, preview
from statusd.errors import ConfigError
from statusd.model import Target, Wanted
from statusd.outbox.opening import open_reader
from statusd.outbox.records import STORE_ERRORS
from statusd.sources.status import entry as desk_entry
from statusd.sources.status import languages as required_languages
from statusd.sources.status import wanted as wanted_status
from statusd.web.words import text

RECENT = 50


def wanted_or_empty(config: Config) -> Wanted:
    """The wanted status; a broken file shows as nothing set (the command then says what is wrong)."""
    try:
        return wanted_status.for_config(config).read()
    except ConfigError:
        return {}


def cards(config: Config, store_path: Path, person: Person, lang: str) -> list[dict[str, Any]]:
    """The sites `person` may change, each with what is in force and its last update's deliveries."""
    wanted = wanted_or_empty(config)
    recent = _recent(config, store_path)
    result = []
    for site in config.sites.values():
        if not person.may_change(site.id):
            continue
        entry = wanted.get(Target(site.id))
        result.append({
            "id": site.id, "name": text(site.name, lang, config.languages), "tz": site.timezone,
            "level": entry.level.value if entry else "open",
            "message": dict(entry.message) if entry else {},
            "services": [(sid, text(names, lang, config.languages)) for sid, names in site.services.items()],
            "service_levels": [(text(names, lang, config.languages), wanted[Target(site.id, sid)].level.value)
                               for sid, names in site.services.items() if Target(site.id, sid) in wanted],
            "last": next((update for update in recent if update["site"] == site.id), None),
        })
    return result


def _recent(config: Config, store_path: Path) -> list[dict[str, Any]]:
    try:
        store = open_reader(config, store_path)
    except STORE_ERRORS:
        return []
    if store is None:
        return []
    try:
        updates = []
        for event, created, deliveries in store.recent(RECENT):
            stored = store.event(event.id)
            updates.append({
                "id": event.id, "site": event.target.site, "target": str(event.target), "level": event.level.value,
                "author": event.author, "when": datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds"),
                "retracted_by": stored.retracted_by if stored else None,
                "deliveries": [{"id": d.id, "channel": d.channel, "action": d.action, "state": d.state,
                                "url": d.remote_url, "error": d.last_error} for d in deliveries],
            })
        return updates
    except STORE_ERRORS:
        return []
    finally:
        store.close()


def preview_texts(config: Config, store_path: Path, by: str, change: dict[str, Any]) -> list[ChannelText]:
    """Check the change as `statusd set` does (UserError with its sentence), then render it."""
    target, entry = desk_entry.build(config, change["target"], change["level"], change["message"],
                                     change["starts"], change["until"], by, datetime.now(UTC))
    required_languages.check(config, entry)
    announced = {}
    store = open_reader(config, store_path)
    if store is not None:
        try:
            announced = store.announced()
        finally:
            store.close()
    return preview(config, target, entry, dict(wanted_or_empty(config)), announced)
