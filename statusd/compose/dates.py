"""Moments as patrons read them: in the site's time zone, the channel's language, relative to the event."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time

log = structlog.get_logger()


class When(str):
    """A moment as patrons read it, in the site's time zone and the channel's language.

    As text it is the natural wording relative to the event ("10:00" the same
    day, "demain à 10:00", "jeudi 26 novembre à 10:00"); templates can also
    use .date, .time, .day ("demain" or the date), .short ("26 déc. 10:00"),
    .iso, and the booleans .same_day and .tomorrow.
    """

    date: str
    time: str
    day: str
    short: str
    iso: str
    same_day: bool
    tomorrow: bool

    def __new__(cls, text: str, **forms: Any) -> When:
        self = super().__new__(cls, text)
        self.__dict__.update(forms)
        return self


def when(moment: datetime | None, reference: datetime, tz: ZoneInfo, lang: str,
         word: Callable[[str, str], str]) -> When | None:
    """`moment` worded relative to `reference`; `word(lang, key)` gives today/tomorrow/day_at_time."""
    if moment is None:
        return None
    local, locale = _local(moment, tz), _locale(lang)
    days = (local.date() - _local(reference, tz).date()).days
    far = abs(days) > 180  # show the year only when it is not obvious
    date = format_date(local, _date_pattern(locale, far), locale=locale)
    time = format_time(local, "short", locale=locale)
    short_date = format_skeleton("yMMMd" if far else "MMMd", local, locale=locale)
    short = _glue(str(locale.datetime_formats["short"]), "{1}", short_date, "{0}", time)
    relative = {0: "today", 1: "tomorrow"}.get(days)
    day = word(lang, relative) if relative else date
    day_at_time = _glue(word(lang, "day_at_time"), "{day}", day, "{time}", time)
    text = time if days == 0 else day_at_time
    return When(text, date=date, time=time, day=day, short=short, iso=local.isoformat(),
                same_day=days == 0, tomorrow=days == 1)


def _glue(pattern: str, *pairs: str) -> str:
    """`pattern` with each placeholder replaced (no str.format: the pattern is user-edited)."""
    for placeholder, value in zip(pairs[::2], pairs[1::2]):
        pattern = pattern.replace(placeholder, value)
    return pattern


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


@lru_cache(maxsize=32)
def _locale(lang: str) -> Locale:
    try:
        return Locale.parse(lang, sep="-")
    except (ValueError, UnknownLocaleError):
        log.warning("compose_unknown_locale", language=lang)
        return Locale.parse("en")


def _date_pattern(locale: Locale, with_year: bool) -> str:
    """The locale's full date ("jeudi 26 novembre 2026"), without the year unless asked."""
    full = str(locale.date_formats["full"].pattern)
    return full if with_year else re.sub(r"[\s,]*\by+\b", "", full).strip()
