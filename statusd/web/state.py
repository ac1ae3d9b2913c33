"""The website's state: the public snapshot and every document made from it, once per change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from statusd.config.load import Config
from statusd.events import Event
from statusd.model import Announced, Wanted
from statusd.outbox.queries import recent_events as recent_events
from statusd.web import cap, feed, ics, page
from statusd.web.doc import Doc
from statusd.web.export import Exporter
from statusd.web.hub import Relay
from statusd.web.picture import Picture
from statusd.web.sse import Hub

log = structlog.get_logger()

# Events read back for CAP: enough to find the start of any ongoing closure.
HISTORY = 100
RERENDER = 60.0
STATIC = Path(__file__).parent / "static"

JSON = "application/json"
HTML = "text/html; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
ICS = "text/calendar; charset=utf-8"
XML = "application/xml; charset=utf-8"
CAP = "application/cap+xml; charset=utf-8"


class WebState:
    """The latest snapshot, its SSE hub and rendered documents; export when configured."""

    def __init__(self, config: Config, hub: Hub | None = None, static: StaticFiles | None = None) -> None:
        self.config = config
        self.hub = hub or Hub()
        self.static = static or StaticFiles(STATIC)
        self.exporter = Exporter(config.web.export_dir) if config.web.export_dir else None
        # Each event also goes to the nchan hub when web.hub is set (read again after a reload).
        self.relay = Relay(lambda: self.config.web.hub)
        self.snapshot: dict[str, Any] = {}
        self.docs: dict[str, Doc] = {}
        self.alerts: dict[str, Doc] = {}
        self._facts: bytes | None = None
        self._picture = Picture()
        self._rendered: tuple[bytes, str | None] | None = None
        self._rendered_at: datetime | None = None
        # The sites' sections kept between renders, the live pages' and the exported copies' apart.
        self._sections, self._exported_sections = page.Sections(), page.Sections()

    @property
    def status(self) -> Doc:
        return self.docs.get("status.json") or Doc(b"{}", JSON)

    def update(self, wanted: Wanted, announced: Mapping[str, Announced], history: Sequence[Event],
               now: datetime, live: Mapping[str, Mapping[str, Any]] | None = None) -> bool:
        """Take the current picture; publish and re-render when it changed. True if it did."""
        # Cleaned once here: a stored row may predate the doors' checks, and a control character
        # or a lone surrogate would break the XML, iCalendar, JSON and HTML made from it.
        made = self._picture.make(self.config, wanted, announced, now, history, live)
        # generated_at alone changing is no change: it would wake every subscriber for nothing.
        facts = made.facts
        changed = facts != self._facts
        if changed:
            self._facts, self.snapshot, body = facts, made.snapshot, made.body
            self.docs["status.json"] = Doc(body, JSON)
            event_id = self.hub.publish(body)
            self.relay.submit(event_id, body)
            log.debug("web_published", event_id=event_id, subscribers=len(self.hub.subscribers))
        # Pages are rendered again when the facts or the history change, and at
        # least every minute (CAP cancels expire with time), not for every call.
        key = (facts, history[0].id if history else None)
        if key != self._rendered or (now - (self._rendered_at or now)).total_seconds() >= RERENDER:
            self._rendered, self._rendered_at = key, now
            self._render(history, now)
        return changed

    def _render(self, history: Sequence[Event], now: datetime) -> None:
        config, snap = self.config, self.snapshot
        live, closures = page.Links(config.public_url), list(ics.closures(config, snap))
        for lang in config.languages:
            self.docs[f"page.{lang}"] = Doc(page.render(config, snap, lang, live, self._sections), HTML)
            self.docs[f"feed.{lang}"] = Doc(feed.atom(config, snap, lang), ATOM)
            self.docs[f"closures.{lang}"] = Doc(ics.calendar(config, snap, lang, closures), ICS)
        messages = cap.messages(config, history, now)
        self.docs["cap.xml"] = Doc(cap.index(config, messages, snap["generated_at"]), XML)
        self.alerts = {m.identifier: Doc(cap.document(config, m), CAP) for m in messages}
        if self.exporter is not None:
            self.exporter.submit(self.exported())

    def exported(self) -> dict[str, bytes]:
        """The files of the export directory, by relative name."""
        config, default = self.config, self.config.default_language
        links = page.Links(config.public_url, export=True)
        files = {"status.json": self.status.body, "cap.xml": self.docs["cap.xml"].body}
        for lang in config.languages:
            files[f"index.{lang}.html"] = page.render(config, self.snapshot, lang, links, self._exported_sections)
            files[f"feed.{lang}.atom"] = self.docs[f"feed.{lang}"].body
            files[f"closures.{lang}.ics"] = self.docs[f"closures.{lang}"].body
        files["index.html"] = files[f"index.{default}.html"]
        files["feed.atom"] = files[f"feed.{default}.atom"]
        files["closures.ics"] = files[f"closures.{default}.ics"]
        for name in self.static.names():
            doc = self.static.get(name)
            if doc is not None:
                files[f"static/{name}"] = doc.body
        return files


TYPES = {
    ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2",
    ".json": "application/json", ".html": HTML, ".txt": "text/plain; charset=utf-8",
}


class StaticFiles:
    """Files of one directory, read once and again only when they change on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, tuple[tuple[int, int], Doc]] = {}

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name for p in self.directory.iterdir() if p.is_file() and self._servable(p.name))

    def get(self, name: str) -> Doc | None:
        """The file `name` (no directories, no dot-files), or None."""
        if not self._servable(name):
            return None
        path = self.directory / name
        try:
            stat = path.stat()
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._cache.get(name)
            if cached is None or cached[0] != key:
                cached = (key, Doc(path.read_bytes(), TYPES[path.suffix]))
                self._cache[name] = cached
        except OSError:
            return None
        return cached[1]

    @staticmethod
    def _servable(name: str) -> bool:
        return "/" not in name and "\\" not in name and not name.startswith(".") and Path(name).suffix in TYPES
