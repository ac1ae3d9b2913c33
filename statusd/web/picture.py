"""The public picture made again after each change, site by site, with its JSON.

A change touches one site of hundreds. Building, cleaning and encoding all 500
sites again held the event loop for about 30 ms a change (issue 15: flat from 3
to 500 sites), and a `statusd set` handed to the daemon waited behind it. Each
site's cleaned entry and its JSON are kept while what they are made from stays
the same: the site's config (by identity: a reload makes a new one), its
entries in status.yaml and their times, what was announced about it, its live
figures, and on which side of each planned start and end `now` falls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from statusd.config.load import Config
from statusd.config.types import Site
from statusd.events import Event
from statusd.model import Announced, StatusEntry, Target, Wanted
from statusd.safetext import clean, clean_tree
from statusd.web.snapshot import head, site_entry

__all__ = ["Picture", "dumps"]


def dumps(data: Any) -> bytes:
    """Compact JSON on one line, as SSE data needs."""
    # "replace": a lone surrogate cannot be UTF-8; one that slipped past cleaning becomes "?".
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8", "replace")


@dataclass(frozen=True)
class Made:
    """One making of the picture: the cleaned snapshot, status.json's bytes, and the facts
    (those bytes without generated_at: a new time alone is no change)."""

    snapshot: dict[str, Any]
    body: bytes
    facts: bytes


class _Targets:
    """A site's targets and store keys, made once per config."""

    def __init__(self, site: Site) -> None:
        self.targets = (Target(site.id), *(Target(site.id, service) for service in site.services))
        self.keys = tuple(str(target) for target in self.targets)
        self.key = dumps(clean(site.id)) + b":"


class Picture:
    """Makes the snapshot, keeping each unchanged site's cleaned entry and JSON between changes."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._targets: dict[str, _Targets] = {}
        self._kept: dict[str, tuple[tuple[Any, ...], dict[str, Any], bytes]] = {}

    def make(self, config: Config, wanted: Wanted, announced: Mapping[str, Announced], now: datetime,
             recent: Sequence[Event] = (), live: Mapping[str, Mapping[str, Any]] | None = None) -> Made:
        """The picture at `now`, equal to cleaning `snapshot.snapshot` and encoding it with `dumps`."""
        if config is not self._config:
            self._config, self._kept = config, {}
            self._targets = {site.id: _Targets(site) for site in config.sites.values()}
        live = live or {}
        sites: dict[str, Any] = {}
        fragments: dict[str, bytes] = {}
        for site in config.sites.values():
            entry, fragment = self._site(site, wanted, announced, now, live.get(site.id))
            key = clean(site.id)
            sites[key], fragments[key] = entry, self._targets[site.id].key + fragment
        snap = clean_tree(head(config, now, recent))
        snap["sites"] = sites
        parts = []
        for key, value in sorted(snap.items()):
            inner = b"{" + b",".join(fragments[k] for k in sorted(sites)) + b"}" if key == "sites" else dumps(value)
            parts.append((key, dumps(key) + b":" + inner))
        body = b"{" + b",".join(part for _, part in parts) + b"}"
        facts = b"{" + b",".join(part for key, part in parts if key != "generated_at") + b"}"
        return Made(snap, body, facts)

    def _site(self, site: Site, wanted: Wanted, announced: Mapping[str, Announced], now: datetime,
              live: Mapping[str, Any] | None) -> tuple[dict[str, Any], bytes]:
        made = self._targets[site.id]
        entries = tuple(wanted.get(target) for target in made.targets)
        key = (
            tuple(_facts(entry, now) for entry in entries),
            tuple(announced.get(k) for k in made.keys),
            # By its JSON: 1, 1.0 and True are equal in Python and not in status.json.
            None if live is None else dumps(live),
        )
        kept = self._kept.get(site.id)
        if kept is not None and kept[0] == key:
            return kept[1], kept[2]
        entry = clean_tree(site_entry(site, wanted, announced, now, live))
        fragment = dumps(entry)
        self._kept[site.id] = (key, entry, fragment)
        return entry, fragment


def _facts(entry: StatusEntry | None, now: datetime) -> tuple[Any, ...] | None:
    """What of an entry its part of the picture is made from, at `now`."""
    if entry is None:
        return None
    # The times by their text too: 10:00+01:00 equals 09:00Z, but status.json shows which was written.
    starts, until = entry.starts, entry.until
    return (
        entry.level, entry.message,
        starts and starts.isoformat(), until and until.isoformat(),
        starts is not None and now < starts, until is not None and now >= until,
    )
