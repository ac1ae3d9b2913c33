"""Current and planned closures as an iCalendar file (RFC 5545) patrons can subscribe to."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from statusd.config.load import Config
from statusd.safetext import clean
from statusd.web.doc import host
from statusd.web.words import target_name, text, words

CLOSING = ("closed", "emergency")
LINE_OCTETS = 75


@dataclass(frozen=True)
class Closure:
    """One closure of a site or service: when, how bad, and what staff said."""

    target: str
    level: str
    start: datetime
    end: datetime | None
    message: Mapping[str, str]


def closures(config: Config, snap: Mapping[str, Any]) -> Iterator[Closure]:
    """Every current and planned closure in the snapshot, sites first then their services."""
    now = datetime.fromisoformat(snap["generated_at"])
    for site_id, site in snap["sites"].items():
        yield from _of(f"{site_id}", site, now)
        for service_id, service in site["services"].items():
            yield from _of(f"{site_id}/{service_id}", service, now)


def _of(target: str, status: Mapping[str, Any], now: datetime) -> Iterator[Closure]:
    if status["level"] in CLOSING:
        start = _when(status["since"]) or now
        yield Closure(target, status["level"], start, _when(status["until"]), status["message"])
    planned = status.get("planned")
    if planned and planned["level"] in CLOSING and planned["from"]:
        yield Closure(target, planned["level"], _when(planned["from"]) or now,
                      _when(planned["until"]), planned["message"])


def calendar(config: Config, snap: Mapping[str, Any], lang: str, found: Sequence[Closure] | None = None) -> bytes:
    """The VCALENDAR of closures, with summaries in `lang`; `found` is `closures(config, snap)` when
    already listed (once for every language: the list is the same)."""
    w = words(config, lang)
    stamp = _utc(datetime.fromisoformat(snap["generated_at"]))
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//statusd//closures//EN",
             "CALSCALE:GREGORIAN", "METHOD:PUBLISH", f"X-WR-CALNAME:{escape(w['calendar'])}"]
    for closure in closures(config, snap) if found is None else found:
        lines += _event(config, snap, closure, lang, stamp)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines).encode("utf-8")


def _event(config: Config, snap: Mapping[str, Any], closure: Closure, lang: str, stamp: str) -> list[str]:
    w = words(config, lang)
    tz = config.sites[closure.target.partition("/")[0]].tz
    # Until further notice: shown as closed to the end of the local day it started.
    end = closure.end or datetime.combine(closure.start.astimezone(tz).date() + timedelta(days=1), time(), tz)
    key = f"{closure.target}|{closure.start.isoformat()}|{closure.level}"
    summary = f"{target_name(snap['sites'], closure.target, lang)}: {w[closure.level]}"
    description = text(closure.message, lang, config.languages)
    if closure.end is None:
        description = f"{description} ({w['until_further_notice']})".strip()
    return [
        "BEGIN:VEVENT",
        f"UID:{hashlib.sha256(key.encode()).hexdigest()[:24]}@{host(config.public_url)}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{_utc(closure.start)}",
        f"DTEND:{_utc(max(end, closure.start + timedelta(minutes=1)))}",
        f"SUMMARY:{escape(summary)}",
        f"DESCRIPTION:{escape(description)}",
        f"URL:{config.public_url}/?lang={lang}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
    ]


def escape(value: str) -> str:
    """TEXT escaping of RFC 5545 §3.3.11; a bare CR would end the content line, so it is a line break too."""
    return (clean(value).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def fold(line: str) -> str:
    """Fold a content line at 75 octets, never inside a UTF-8 sequence (RFC 5545 §3.1)."""
    parts: list[str] = []
    current, size, limit = "", 0, LINE_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            # Continuation lines start with a space, which counts in their 75 octets.
            current, size, limit = "", 0, LINE_OCTETS - 1
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
