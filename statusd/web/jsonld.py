"""schema.org JSON-LD for the status page: each site a Library with its opening hours.

Closures go in `specialOpeningHoursSpecification` (what search engines read
now): a wholly closed day opens and closes at 00:00; a day partly closed keeps
only the part of its regular hours outside the closure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from statusd.config.load import Config
from statusd.config.types import Site

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CLOSING = ("closed", "emergency")
Spec = dict[str, Any]


def graph(config: Config, snap: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """The JSON-LD document: one Library per site."""
    now = datetime.fromisoformat(snap["generated_at"])
    return {
        "@context": "https://schema.org",
        "@graph": [library(site, snap["sites"][site.id], lang, now) for site in config.sites.values()],
    }


def script_text(data: Mapping[str, Any]) -> str:
    """JSON safe inside <script>: no "</script>" or "<!--" can appear."""
    # Compact: with an indent, json uses its pure-Python encoder, 5 times slower on a 500-site graph.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")


def script(config: Config, snap: Mapping[str, Any], lang: str) -> str:
    """`script_text(graph(...))`, with each site without a closure kept from the last page.

    Such a site's Library is its config's alone; making and encoding all 500 again took
    2 ms a page, a third of the page's time (issue 15)."""
    now = datetime.fromisoformat(snap["generated_at"])
    sites = ",".join(_library_text(site, snap["sites"][site.id], lang, now) for site in config.sites.values())
    return '{"@context":"https://schema.org","@graph":[' + sites + "]}"


_TEXTS: dict[Any, tuple[Site, Any]] = {}


def _library_text(site: Site, status: Mapping[str, Any], lang: str, now: datetime) -> str:
    if _closures(status, now):
        return script_text(library(site, status, lang, now))
    text: str = _kept(_TEXTS, (id(site), lang), site, lambda: script_text(library(site, status, lang, now)))
    return text


def library(site: Site, status: Mapping[str, Any], lang: str, now: datetime) -> dict[str, Any]:
    data: dict[str, Any] = {
        "@type": "Library",
        "@id": f"{site.url.split('#')[0]}#library-{site.id}",
        "name": site.name.get(lang, site.id),
        "url": site.url,
        "openingHoursSpecification": regular(site),
    }
    special = [spec for start, end in _closures(status, now) for spec in closed(site, start, end, now)]
    if special:
        data["specialOpeningHoursSpecification"] = special
    return data


# Each site's regular hours as specifications, kept by the site (a config reload makes new ones):
# every page of every language held them, made again for each site at each change (issue 15).
_REGULAR: dict[Any, tuple[Site, Any]] = {}
_KEEP = 4096


def regular(site: Site) -> list[Spec]:
    """One specification per period, with the days that share it (kept: never change the list)."""
    specs: list[Spec] = _kept(_REGULAR, id(site), site, lambda: _regular(site))
    return specs


def _kept(cache: dict[Any, tuple[Site, Any]], key: Any, site: Site, make: Callable[[], Any]) -> Any:
    """What `make()` gives for `site`, kept in `cache` under `key` (which holds id(site))."""
    kept = cache.get(key)
    if kept is not None and kept[0] is site:  # the site itself is kept, so its id is not reused
        return kept[1]
    if len(cache) >= _KEEP:
        cache.clear()  # the sites of configs read before: dropped all at once
    value = make()
    cache[key] = (site, value)
    return value


def _regular(site: Site) -> list[Spec]:
    by_period: dict[tuple[time, time], list[str]] = {}
    for day in sorted(site.hours):
        for period in site.hours[day]:
            by_period.setdefault(period, []).append(f"https://schema.org/{DAYS[day]}")
    return [
        {"@type": "OpeningHoursSpecification", "dayOfWeek": days, "opens": _hm(opens), "closes": _hm(closes)}
        for (opens, closes), days in by_period.items()
    ]


def _closures(status: Mapping[str, Any], now: datetime) -> list[tuple[datetime, datetime | None]]:
    found = []
    if status["level"] in CLOSING:
        found.append((_when(status["since"]) or now, _when(status["until"])))
    planned = status.get("planned")
    if planned and planned["level"] in CLOSING and planned["from"]:
        found.append((_when(planned["from"]) or now, _when(planned["until"])))
    return found


def closed(site: Site, start: datetime, end: datetime | None, now: datetime) -> list[Spec]:
    """Special hours for a closure from `start` to `end` (None: until further notice, today)."""
    tz = site.tz
    first, last_moment = start.astimezone(tz), end.astimezone(tz) if end else None
    # A closure until midnight leaves the next day alone.
    last_day = (last_moment - timedelta(microseconds=1)).date() if last_moment else \
        max(first.date(), now.astimezone(tz).date())
    specs, days = [], [first.date() + timedelta(n) for n in range((last_day - first.date()).days + 1)]
    closed_days = []
    for day in days:
        open_part = _open_part(site, day, first, last_moment)
        if open_part is None:
            closed_days.append(day)
        elif open_part != list(site.hours.get(day.weekday(), ())):
            specs += [_special(day, day, opens, closes) for opens, closes in open_part]
    if closed_days:
        specs.insert(0, _special(closed_days[0], closed_days[-1], time(0), time(0)))
    return specs


def _open_part(site: Site, day: date, start: datetime, end: datetime | None) -> list[tuple[time, time]] | None:
    """The regular periods of `day` left outside the closure; None when nothing is left."""
    kept = []
    for opens, closes in site.hours.get(day.weekday(), ()):
        begin, finish = (datetime.combine(day, t, site.tz) for t in (opens, closes))
        if begin < start:
            kept.append((opens, _local(min(finish, start), site)))
        if end is not None and finish > end:
            kept.append((_local(max(begin, end), site), closes))
    return kept or None


def _local(when: datetime, site: Site) -> time:
    return when.astimezone(site.tz).time().replace(second=0, microsecond=0)


def _special(first: date, last: date, opens: time, closes: time) -> Spec:
    return {
        "@type": "OpeningHoursSpecification",
        "validFrom": first.isoformat(),
        "validThrough": last.isoformat(),
        "opens": _hm(opens),
        "closes": _hm(closes),
    }


def _hm(value: time) -> str:
    return value.strftime("%H:%M")


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
