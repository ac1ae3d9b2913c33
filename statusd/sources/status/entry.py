"""`statusd set` / `statusd preview` arguments → one checked entry, or one clear refusal.

Desk staff type these in a hurry, so every refusal is one sentence that says
what to type instead, and nothing is written until everything is right.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from statusd.config.load import Config
from statusd.config.types import Site
from statusd.errors import UserError
from statusd.model import LEVELS, Level, StatusEntry, Target
from statusd.sources.status.file import LOCAL_FORM, ambiguous, show, suggest, to_local
from statusd.sources.status.text import bad_char, snippet, too_long

CLOSURES = (Level.CLOSED, Level.EMERGENCY)
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_CLOCK = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")


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


def notes(config: Config, target: Target, entry: StatusEntry) -> list[str]:
    """What staff should know about an accepted entry: a time that happens twice, and which was taken."""
    site = config.sites[target.site]
    found = []
    for flag, moment in (("--from", entry.starts), ("--until", entry.until)):
        if moment is not None and ambiguous(moment):
            found.append(
                f"{flag} {show(moment)} happens twice at {site.id} ({site.timezone}, the clocks go back); "
                f"the first one was taken ({moment:%Z}, UTC{moment:%z}); for the second write "
                f'"{moment.replace(fold=1).isoformat(sep=" ", timespec="minutes")}"'
            )
    return found


def _target(config: Config, text: str) -> tuple[Site, str | None]:
    raw = _text(text.strip(), "target")
    if raw.endswith("/") or raw.startswith("/") or raw.count("/") > 1:
        head = raw.strip("/").split("/")[0] or "main"
        raise UserError(f"{snippet(raw)} is not a target; write a site ({head}) or a service of it ({head}/wifi)")
    wanted = Target.parse(raw)
    site = config.sites.get(wanted.site)
    if site is None:
        raise UserError(
            f"unknown site {snippet(wanted.site)}{_guess(wanted.site, config.sites)}; "
            f"the known sites are {', '.join(config.sites)}"
        )
    if wanted.service is not None and wanted.service not in site.services:
        if not site.services:
            raise UserError(f"site {site.id} has no services; set the site itself with `{site.id}`")
        raise UserError(
            f"unknown service {snippet(wanted.service)} of {site.id}"
            f"{_guess(wanted.service, site.services)}; "
            f"its services are {', '.join(site.services)}"
        )
    return site, wanted.service


def _level(text: str) -> Level:
    word = text.strip().lower()  # typed at a prompt: case does not matter here
    if word in LEVELS:
        return Level(word)
    raise UserError(f"unknown level {snippet(text)}{_guess(word, LEVELS)}; use one of {', '.join(LEVELS)}")


def _messages(config: Config, raw: Sequence[str]) -> dict[str, str]:
    messages: dict[str, str] = {}
    for item in raw:
        lang, text = _split(config, item)
        if not text:
            raise UserError(f"the message {snippet(item)} is empty; write what the public should read")
        if lang in messages:
            raise UserError(f"two messages in {lang!r}; give one -m per language")
        long = too_long(text)
        if long:
            raise UserError(f"the {lang} message {long}")
        messages[lang] = _text(text, "message")
    return messages


def _split(config: Config, item: str) -> tuple[str, str]:
    """("fr", "Fermé") from "fr:Fermé"; a text without a language is in the default one.

    Only a configured language code is a prefix: "bar: closed tonight" is a text.
    """
    head, colon, rest = item.partition(":")
    code = head.strip()
    if not colon or not _LANG.match(code) or code not in config.languages:
        return config.default_language, item.strip()
    return code, rest.strip()


def _text(text: str, what: str) -> str:
    bad = bad_char(text)
    if bad:
        raise UserError(f"the {what} {bad}")
    return text


def _when(text: str | None, flag: str, tz: ZoneInfo, now: datetime) -> datetime | None:
    if text is None:
        return None
    raw = text.strip()
    clock = _CLOCK.match(raw)
    try:
        if clock:
            return _today_or_tomorrow(int(clock[1]), int(clock[2]), flag, text, now)
        return to_local(raw, tz)
    except ValueError as err:
        known = str(err).startswith("year") or "does not exist" in str(err)
        reason = str(err) if known else "is not a time I can read"
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
    tz = now.tzinfo
    assert isinstance(tz, ZoneInfo)
    moment = to_local(datetime.combine(now.date(), clock), tz)  # refuses a time the clocks skip
    if moment <= now:
        moment = to_local(datetime.combine(now.date() + timedelta(days=1), clock), tz)
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
