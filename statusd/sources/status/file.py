"""status.yaml → Wanted: what staff want said about each site and service, fully checked.

A site or service the file does not mention is open. Every problem is reported
together, with its line and field, so one fix-and-retry is enough.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from statusd.config.load import Config
from statusd.config.reader import Problems, Section
from statusd.config.types import Site
from statusd.errors import ConfigError, Problem
from statusd.model import LEVELS, Level, StatusEntry, Target, Wanted
from statusd.sources.status import bounds
from statusd.sources.status.text import describe, field, problem, snippet
from statusd.sources.status.times import LOCAL_FORM, ambiguous, show, to_local

__all__ = ["ENTRY_KEYS", "LOCAL_FORM", "ambiguous", "check", "load", "parse", "read", "show", "suggest",
           "to_local"]

ENTRY_KEYS: tuple[str, ...] = ("level", "message", "from", "until", "by", "at")
SITE_KEYS: tuple[str, ...] = (*ENTRY_KEYS, "services")
_EMPTY = "is empty; a truncated write? the last good status stays in force"


def read(path: Path, config: Config) -> Wanted:
    """Read and check `path`; raise ConfigError listing every problem.

    Blocking (the file may be large or slow): the daemon calls it in a thread.
    """
    return parse(bounds.read_text(path, config.status_max_bytes), str(path), config)


def parse(text: str, name: str, config: Config) -> Wanted:
    """Check status text; `name` is the file name used in problems."""
    return check(load(text, name), name, config)


def load(text: str, name: str) -> Any:
    """The YAML nodes of status text, bounded (bounds.py), or ConfigError with YAML's reason and a hint."""
    try:
        return bounds.parse_yaml(text, name)
    except ConfigError as err:
        raise ConfigError([_hint(p) for p in err.problems]) from err


def check(node: Any, name: str, config: Config) -> Wanted:
    """Check an already loaded document (ruamel round-trip nodes keep their lines)."""
    try:
        return _check(node, name, config)
    except ConfigError:
        raise
    except Exception as err:  # a value no check foresaw must not take the daemon down
        refused = Problem(name, None, "", f"could not be checked ({type(err).__name__}); the last good status stays")
        raise ConfigError([refused]) from err


def _check(node: Any, name: str, config: Config) -> Wanted:
    problems = Problems(name)
    wanted: dict[Target, StatusEntry] = {}
    root = Section(node, "", problems)
    if node is None:
        problems.add(1, "", _EMPTY)
    elif not isinstance(node, Mapping):
        # Never the value itself: a file that is not a status file may be anything (a secret).
        problems.add(root.line() or 1, "", "should be a mapping of site to status "
                     f"(main: {{level: closed}}), got {_kind(node)}")
    else:
        for site_id, section in root.items():
            if site_id not in config.sites:
                known = ", ".join(config.sites)
                guess = _guess(site_id, config.sites)
                _error(root, site_id, f"unknown site {snippet(site_id)}{guess}; known sites: {known}")
            elif _is_entry(root, site_id, section):
                _site(section, site_id, config, wanted)
    problems.check()
    return wanted


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a mistyped `word`, if one is close enough."""
    import difflib  # only for a mistake: a good file never needs it

    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _guess(word: str, choices: Iterable[str]) -> str:
    near = suggest(word, choices)
    return f" (did you mean {near!r}?)" if near else ""


def _site(section: Section, site_id: str, config: Config, wanted: dict[Target, StatusEntry]) -> None:
    # The site is looked up only for a time or a service: `statusd set` reads a site's block of
    # statusd.yaml when asked for it (config/scoped.py), and most entries hold neither.
    if len(section.node) == 1 and section.node.get("level") in LEVELS:
        # `level: open` alone, as most sites of a large file say: what the checks below make of it.
        wanted[Target(site_id)] = StatusEntry(level=Level(section.node["level"]))
        return
    _allow(section, SITE_KEYS)
    entry = _entry(section, lambda: config.sites[site_id].tz, config)
    if entry is not None:
        wanted[Target(site_id)] = entry
    services = section.sub("services")
    if services.node is None:
        if "services" in section.node:
            section.error("services", "is empty; list services under it or remove the line")
        return
    if not isinstance(services.node, Mapping):
        got = describe(services.node)
        section.error("services", f"should be a mapping of service to status, got {got}")
        return
    site = config.sites[site_id]
    for service_id, sub in services.items():
        if service_id not in site.services:
            _error(services, service_id, _unknown_service(service_id, site))
        elif _is_entry(services, service_id, sub):
            _allow(sub, ENTRY_KEYS)
            entry = _entry(sub, lambda: site.tz, config)
            if entry is not None:
                wanted[Target(site.id, service_id)] = entry


def _unknown_service(service_id: str, site: Site) -> str:
    if not site.services:
        return f"unknown service {snippet(service_id)}; site {site.id} has no services in statusd.yaml"
    known = ", ".join(site.services)
    guess = _guess(service_id, site.services)
    return f"unknown service {snippet(service_id)}{guess}; services of {site.id}: {known}"


def _error(section: Section, key: Any, text: str) -> None:
    """A problem at a key the user wrote: named by a short, printable form of it."""
    name = field(key)
    section.problems.add(section.line(key), f"{section.path}.{name}" if section.path else name, text)


def _allow(section: Section, keys: tuple[str, ...]) -> None:
    """Report every key that is not one of `keys` (typos must not pass silently)."""
    if isinstance(section.node, Mapping):
        for key in section.node:
            if key not in keys:
                _error(section, key, f"unknown key; expected one of: {', '.join(keys)}")


def _is_entry(parent: Section, key: str, section: Section) -> bool:
    if section.node is None:
        parent.error(key, "has nothing under it; indent its keys below it, such as `level: closed`")
        return False
    if not isinstance(section.node, Mapping):
        got = describe(section.node)
        parent.error(key, f"should be a mapping such as {{level: closed, message: ...}}, got {got}")
        return False
    return True


def _entry(section: Section, tz: Callable[[], ZoneInfo], config: Config) -> StatusEntry | None:
    before = len(section.problems.found)
    level = _level(section)
    message = _message(section, config)
    starts, until, at = (_time(section, key, tz) for key in ("from", "until", "at"))
    by = _by(section)
    if starts is not None and until is not None and starts >= until:
        section.error("from", f"should be before until ({show(until)}), got {show(starts)}")
    if len(section.problems.found) > before:
        return None
    return StatusEntry(level=level, message=message, starts=starts, until=until, by=by, at=at)


def _by(section: Section) -> str | None:
    value = section.get("by")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        section.error("by", f"should be a non-empty text, got {describe(value)}")
        return None
    return value


def _kind(node: Any) -> str:
    """What a node is, without quoting it."""
    return describe(node) if node is None or isinstance(node, (Mapping, list, bool)) else "a single value"


def _level(section: Section) -> Level:
    if "level" not in section.node:
        return Level.OPEN
    value = section.get("level")
    choices = ", ".join(LEVELS)
    if not isinstance(value, str):
        section.error("level", f"should be one of {choices}, got {describe(value)}")
    elif value in LEVELS:
        return Level(value)
    elif value.strip().lower() in LEVELS:
        section.error("level", f"use lower case {value.strip().lower()!r}")
    else:
        guess = _guess(value, LEVELS)
        section.error("level", f"unknown level {snippet(value)}{guess}; use one of {choices}")
    return Level.OPEN


def _message(section: Section, config: Config) -> dict[str, str]:
    if "message" not in section.node:
        return {}
    value = section.get("message")
    if isinstance(value, str):
        if not value.strip():
            section.error("message", "is empty; write a text or remove the line")
        elif problem(value):
            section.error("message", str(problem(value)))
        return {config.default_language: str(value)}
    if not isinstance(value, Mapping):
        got = describe(value)
        section.error("message", f"should be a text or a mapping of language to text, got {got}")
        return {}
    texts = section.sub("message")
    message: dict[str, str] = {}
    known = ", ".join(config.languages)
    for lang, text in value.items():
        if lang not in config.languages:
            _error(texts, lang, f"unknown language {snippet(str(lang))}; configured languages: {known}")
        elif not isinstance(text, str) or not text.strip():
            texts.error(str(lang), f"should be a non-empty text, got {describe(text)}")
        elif problem(text):
            texts.error(str(lang), str(problem(text)))
        else:
            message[str(lang)] = str(text)
    return message


def _time(section: Section, key: str, zone: Callable[[], ZoneInfo]) -> datetime | None:
    if key not in section.node:
        return None
    tz = zone()
    value = section.get(key)
    if value is None:
        section.error(key, f'is empty; write a time such as "{LOCAL_FORM}" or remove the line')
        return None
    try:
        return to_local(value, tz)
    except ValueError as err:
        section.error(key, str(err))
        return None


def _hint(problem: Problem) -> Problem:
    """Add the fix people need most often to YAML's own wording."""
    if "'\\t'" in problem.text:
        text = problem.text + "; indent with spaces, not tabs"
        return Problem(problem.file, problem.line, problem.field, text, problem.column)
    return problem
