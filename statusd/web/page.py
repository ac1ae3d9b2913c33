"""The public status page: server-rendered HTML that needs no JavaScript."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from statusd.config import wording
from statusd.config.load import Config
from statusd.config.types import Site
from statusd.web import jsonld
from statusd.web.feed import title
from statusd.web.words import text, words

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Links:
    """Where the page points: the live server's URLs, or the exported files' names."""

    public_url: str
    export: bool = False

    def page(self, lang: str) -> str:
        return f"index.{lang}.html" if self.export else f"?lang={lang}"

    def feed(self, lang: str) -> str:
        return f"feed.{lang}.atom" if self.export else f"feed.atom?lang={lang}"

    def calendar(self, lang: str) -> str:
        return f"closures.{lang}.ics" if self.export else f"closures.ics?lang={lang}"

    @property
    def events(self) -> str:
        # Exported pages are served elsewhere; live updates still come from the daemon.
        return f"{self.public_url}/events" if self.export else "events"

    status = "status.json"
    cap = "cap.xml"
    static = "static/"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class Sections:
    """Each site's rendered section, kept while its status, the config and the page's words stay the same.

    A change touches one site of hundreds: rendering every section again held the
    event loop for 60 ms a language at 500 sites (issue 15: flat from 3 to 500 sites).
    A section is made from its site's config, its status, the language, the page's
    words and the "Notify me" form's: the config by identity (a reload makes a new one),
    the rest by value.
    """

    def __init__(self) -> None:
        self._config: Config | None = None
        self._kept: dict[tuple[str, str], tuple[Any, Mapping[str, Any], bytes]] = {}
        self._contexts: dict[str, Any] = {}

    def context(self, lang: str, context: Any) -> Any:
        """`context`, or the equal one kept for `lang`: each section then compares it by identity."""
        kept = self._contexts.get(lang)
        if kept is not None and kept == context:
            return kept
        self._contexts[lang] = context
        return context

    def get(self, config: Config, site: Site, status: Mapping[str, Any], lang: str, context: Any,
            make: Callable[[], str]) -> bytes:
        """The section of `site` as UTF-8: the kept one when nothing it is made from changed, else `make()`'s."""
        if config is not self._config:
            self._config, self._kept = config, {}
        key = (lang, site.id)
        kept = self._kept.get(key)
        # By identity first: an unchanged site's status is the very entry kept by web.picture.
        if kept is not None and (kept[0] is context or kept[0] == context) and (
                kept[1] is status or kept[1] == status):
            return kept[2]
        html = make().encode("utf-8")
        self._kept[key] = (context, status, html)
        return html


# Where the sections go: page.html is rendered around this mark and the sections' bytes put in
# its place. Passed through Jinja and markupsafe, a 1 MB page of 500 sites was copied five
# times, 2 ms a page (issue 15). A NUL can be in no text of the page: the snapshot is cleaned
# and the config's and labels' texts are checked.
_SECTIONS = Markup("\x00sections\x00")


def render(config: Config, snap: Mapping[str, Any], lang: str, links: Links,
           sections: Sections | None = None) -> bytes:
    """The page in `lang`, as UTF-8 bytes; `sections` keeps the unchanged sites' sections between calls."""
    environment = _environment()
    # Looked up once a page: labels.yaml's group was built again for every site and service,
    # a third of a 500-site page's time (issue 15).
    w = words(config, lang)
    follow = _follow(config, lang, links)
    site_template = environment.get_template("site.html")
    kept = sections or Sections()
    context = kept.context(lang, (dict(w), follow))

    def section(site: Site) -> bytes:
        status = snap["sites"][site.id]
        return kept.get(config, site, status, lang, context, lambda: site_template.render(
            lang=lang, w=w, follow=follow, site=_site(config, site, status, lang, w)))

    html = environment.get_template("page.html").render(
        lang=lang,
        w=w,
        links=links,
        languages=[(code, _native(code)) for code in config.languages],
        sections=_SECTIONS,
        updates=[_update(config, snap, item, lang) for item in snap["updates"]],
        generated=_moment(snap["generated_at"], None, lang),
        json_ld=jsonld.script(config, snap, lang),
        follow=follow,
    )
    before, mark, after = html.partition(_SECTIONS)
    if not mark:
        raise RuntimeError("page.html has no {{ sections }}")
    return b"".join([before.encode("utf-8"), *(section(site) for site in config.sites.values()),
                     after.encode("utf-8")])


def _follow(config: Config, lang: str, links: Links) -> dict[str, Any] | None:
    """The "Notify me" form's words and languages, when a webpush channel is on (not on exported
    copies: the service worker and the subscribe API live on the daemon's own origin)."""
    offered = {c.language for c in config.channels.values() if c.type == "webpush"}
    if links.export or not offered:
        return None
    return {
        "w": wording.load(config.alerts_dir).group("follow", lang, config.default_language),
        "languages": [(code, _native(code)) for code in config.languages if code in offered],
    }


def _site(config: Config, site: Site, status: Mapping[str, Any], lang: str, w: Mapping[str, str]) -> dict[str, Any]:
    live_zones = status.get("zones") or {}
    live_queues = status.get("queues") or {}
    return {
        "id": site.id,
        "name": site.name.get(lang, site.id),
        # The default url is this very page's anchor: no link to itself.
        "url": None if site.url.startswith(f"{config.public_url}/#") else site.url,
        **_status(config, site, status, lang, w),
        "services": [
            {"id": sid, "name": names.get(lang, sid), **_status(config, site, status["services"][sid], lang, w)}
            for sid, names in site.services.items()
        ],
        "zones": [
            {"id": zid, "name": zone.name.get(lang, zid), "capacity": zone.capacity,
             "free": (live_zones.get(zid) or {}).get("free")}
            for zid, zone in site.zones.items()
        ],
        "queues": [
            {"id": qid, "name": queue.name.get(lang, qid), "wait": (live_queues.get(qid) or {}).get("wait_minutes")}
            for qid, queue in site.queues.items()
        ],
    }


def _status(config: Config, site: Site, status: Mapping[str, Any], lang: str,
            w: Mapping[str, str]) -> dict[str, Any]:
    planned = status.get("planned")
    return {
        "level": status["level"],
        "level_word": w[status["level"]],
        "message": text(status["message"], lang, config.languages),
        "since": _moment(status["since"], site, lang),
        "until": _moment(status["until"], site, lang),
        "planned": {
            "level": planned["level"],
            "level_word": w[planned["level"]],
            "message": text(planned["message"], lang, config.languages),
            "from": _moment(planned["from"], site, lang),
            "until": _moment(planned["until"], site, lang),
        } if planned else None,
    }


def _update(config: Config, snap: Mapping[str, Any], item: Mapping[str, Any], lang: str) -> dict[str, Any]:
    site = config.sites.get(item["target"].partition("/")[0])
    return {
        "id": item["id"],
        "level": item["level"],
        "title": title(config, snap, item, lang),
        "message": text(item["message"], lang, config.languages),
        "at": _moment(item["at"], site, lang),
    }


def _moment(value: str | None, site: Site | None, lang: str) -> dict[str, str] | None:
    """{"iso": machine-readable, "text": as read in `lang` in the site's time zone}."""
    if not value:
        return None
    when = datetime.fromisoformat(value)
    tz = site.tz if site else when.tzinfo
    try:
        shown = (f"{format_skeleton('MMMEd', when, tzinfo=tz, locale=lang)} "
                 f"{format_time(when, 'short', tzinfo=tz, locale=lang)}")
    except (UnknownLocaleError, ValueError):
        shown = when.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return {"iso": value, "text": shown}


def _native(code: str) -> str:
    try:
        return Locale.parse(code).get_display_name(code) or code
    except (UnknownLocaleError, ValueError):
        return code
