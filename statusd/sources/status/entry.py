"""`statusd set` / `statusd preview` arguments → one checked entry, or one clear refusal.

Desk staff type these in a hurry, so every refusal is one sentence that says
what to type instead, and nothing is written until everything is right.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from statusd.config.load import Config
from statusd.config.types import Site
from statusd.errors import UserError
from statusd.model import LEVELS, Level, StatusEntry, Target
from statusd.sources.status.file import LOCAL_FORM, show, suggest, to_local

CLOSURES = (Level.CLOSED, Level.EMERGENCY)
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_CLOCK = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
# Line breaks and tabs are fine in a message; other control characters are paste accidents.
_ALLOWED_CONTROLS = {"\n", "\t"}


def build(
    config: Config,
    target: str,
    level: str,
    messages: Sequence[str],
    starts: str | None,
    until: str | None,
    user: str,
    now: datetime,
) -> tuple[Target, StatusEntry]:
    """Check the arguments of `statusd set` and return the entry to write.

    Raises UserError with one sentence when anything is wrong.
    """
    site, service = _target(config, target)
    chosen = _level(level)
    message = _messages(config, messages)
    if chosen in CLOSURES and not message:
        article = "an" if chosen is Level.EMERGENCY else "a"
        raise UserError(
            f"{article} {chosen.value} status needs a message saying why, "
            f'e.g. -m "{_example(config)}"'
        )
    local_now = now.astimezone(site.tz)
    begin = _when(starts, "--from", site.tz, local_now)
    end = _when(until, "--until", site.tz, local_now)
    _check_times(chosen, begin, end, local_now, site)
    by = _text(user.strip(), "user name") or None
    entry = StatusEntry(chosen, message, begin, end, by=by, at=now)
    return Target(site.id, service), entry


def _target(config: Config, text: str) -> tuple[Site, str | None]:
    wanted = Target.parse(text.strip())
    site = config.sites.get(wanted.site)
    if site is None:
        raise UserError(
            f"unknown site {wanted.site!r}{_guess(wanted.site, config.sites)}; "
            f"the known sites are {', '.join(config.sites)}"
        )
    if wanted.service is not None and wanted.service not in site.services:
        if not site.services:
            raise UserError(f"site {site.id} has no services; set the site itself with `{site.id}`")
        raise UserError(
            f"unknown service {wanted.service!r} of {site.id}"
            f"{_guess(wanted.service, site.services)}; "
            f"its services are {', '.join(site.services)}"
        )
    return site, wanted.service


def _level(text: str) -> Level:
    word = text.strip().lower()  # typed at a prompt: case does not matter here
    if word in LEVELS:
        return Level(word)
    raise UserError(f"unknown level {text!r}{_guess(word, LEVELS)}; use one of {', '.join(LEVELS)}")


def _messages(config: Config, raw: Sequence[str]) -> dict[str, str]:
    messages: dict[str, str] = {}
    for item in raw:
        lang, text = _split(config, item)
        if not text:
            raise UserError(f"the message {item!r} is empty; write what the public should read")
        if lang in messages:
            raise UserError(f"two messages in {lang!r}; give one -m per language")
        messages[lang] = _text(text, "message")
    return messages


def _split(config: Config, item: str) -> tuple[str, str]:
    """("fr", "Fermé") from "fr:Fermé"; a text without a language is in the default one."""
    head, colon, rest = item.partition(":")
    code = head.strip()
    if not colon or not _LANG.match(code):
        return config.default_language, item.strip()
    if code not in config.languages:
        raise UserError(
            f"unknown language {code!r} in -m {item!r}; write lang:text with one of "
            f"{', '.join(config.languages)} (a text without lang: is in {config.default_language})"
        )
    return code, rest.strip()


def _text(text: str, what: str) -> str:
    for char in text:
        category = unicodedata.category(char)
        if category == "Cs" or (category == "Cc" and char not in _ALLOWED_CONTROLS):
            raise UserError(
                f"the {what} holds an invisible control character ({char!r}); retype it "
                "or check the terminal's encoding"
            )
    return text


def _when(text: str | None, flag: str, tz: ZoneInfo, now: datetime) -> datetime | None:
    if text is None:
        return None
    raw = text.strip()
    clock = _CLOCK.match(raw)
    if clock:
        return _today_or_tomorrow(int(clock[1]), int(clock[2]), flag, text, now)
    try:
        return to_local(raw, tz)
    except ValueError as err:
        reason = str(err) if str(err).startswith("year") else "is not a time I can read"
        raise UserError(
            f'{flag} {text!r} {reason}; write "{LOCAL_FORM}" (or HH:MM for today) '
            f"in the site's time ({tz.key})"
        ) from None


def _today_or_tomorrow(hour: int, minute: int, flag: str, text: str, now: datetime) -> datetime:
    if hour > 23 or minute > 59:
        raise UserError(
            f"{flag} {text!r} is not a time of day; write HH:MM between 00:00 and 23:59"
        )
    clock = time(hour, minute)
    moment = datetime.combine(now.date(), clock, tzinfo=now.tzinfo)
    if moment <= now:
        moment = datetime.combine(now.date() + timedelta(days=1), clock, tzinfo=now.tzinfo)
    return moment


def _check_times(
    level: Level, begin: datetime | None, end: datetime | None, now: datetime, site: Site
) -> None:
    if end is not None and end <= now:
        raise UserError(
            f"--until {show(end)} is already past (it is {show(now)} at {site.id}, {site.timezone})"
        )
    if begin is None:
        return
    if level is Level.OPEN:
        raise UserError(
            "--from plans a change ahead; it only goes with limited, closed or emergency"
        )
    if end is not None and begin >= end:
        raise UserError(f"--from {show(begin)} should be before --until {show(end)}")


def _guess(word: str, choices: Iterable[str]) -> str:
    near = suggest(word, choices)
    return f" (did you mean {near!r}?)" if near else ""


def _example(config: Config) -> str:
    return f"{config.default_language}:…"
