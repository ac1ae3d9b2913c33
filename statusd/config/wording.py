"""alerts/labels.yaml: the one wording of posts, the status page, the banner and the feeds.

    fr:
      open: ouvert                      # words inside posts ({{ level }}, dates)
      ...
      wait: {none: "pas d'attente", under: "moins de {d}", ...}   # the banner's queue waits
      page: {open: Ouvert, title: "État de la bibliothèque", ...} # the page, Atom, iCalendar, CAP

Every configured language needs every entry; `problems(languages)` says what
is missing, so `statusd check` reports it rather than the page falling back
to another language. The file is read again when it changes on disk, so a
communications officer's edit reaches the next post and the next page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statusd.config import reader
from statusd.errors import ConfigError, Problem
from statusd.logs import LazyLogger
from statusd.model import LEVELS

# Lazily: `statusd set` imports this module and must not pay for structlog (issue 15).
log = LazyLogger()

LABELS_FILE = "labels.yaml"
# Words the posts' date formatting needs besides the level labels.
POST_WORDS = ("today", "tomorrow", "day_at_time")
# Optional: what sets a post apart when a platform refuses to repeat a text (X, Facebook),
# "{time}" being the time of the change; without it, the time in brackets.
OPTIONAL_WORDS = ("again",)
# The banner's queue wait: {d} in none/under/about/over is one of the three durations.
WAIT_WORDS = ("none", "under", "about", "over", "minutes", "hours", "hours_minutes")
PAGE_WORDS = (
    *LEVELS,
    "title", "skip", "services", "since", "until", "planned", "from", "seats", "queue",
    "no_live_data", "updates", "no_updates", "languages", "feeds", "feed", "calendar",
    "status_json", "cap", "updated", "until_further_notice", "site_page", "author",
)
# The status page's "Notify me" (Web Push) form, shown when a webpush channel is configured.
FOLLOW_WORDS = ("button", "kinds", "status", "all", "language", "start", "stop", "on", "off", "denied",
                "unsupported", "failed", "privacy")
GROUPS: Mapping[str, tuple[str, ...]] = {"wait": WAIT_WORDS, "page": PAGE_WORDS, "follow": FOLLOW_WORDS}


@dataclass(frozen=True)
class Wording:
    """labels.yaml read: words per language and group, the line of each language, what is wrong."""

    path: Path
    words: Mapping[str, Mapping[str, str]]  # language → "closed", "wait.none", "page.title", ...
    lines: Mapping[str, int | None]
    broken: tuple[Problem, ...]
    mtime: float | None

    def word(self, lang: str, key: str) -> str | None:
        """The entry `key` ("closed", "page.title") in `lang`, None when labels.yaml lacks it."""
        return self.words.get(lang, {}).get(key)

    def group(self, group: str, lang: str, fallback: str) -> dict[str, str]:
        """A group's words in `lang`; an entry it lacks comes from `fallback` and is logged."""
        keys = GROUPS[group]
        found = {key: self.word(lang, f"{group}.{key}") for key in keys}
        missing = [key for key, text in found.items() if text is None]
        if missing and (self.path, self.mtime, lang, group) not in _LOGGED:
            # Once per file version, not per page; earlier versions are forgotten.
            _LOGGED.difference_update({seen for seen in _LOGGED if seen[0] == self.path and seen[1] != self.mtime})
            _LOGGED.add((self.path, self.mtime, lang, group))
            log.warning("wording_missing", file=str(self.path), language=lang, group=group, keys=missing,
                        used=fallback)
        return {key: text if text is not None else (self.word(fallback, f"{group}.{key}") or key)
                for key, text in found.items()}

    def wait(self, kind: str, minutes: int, lang: str, fallback: str) -> str:
        """A rounded queue wait for the banner: "about 45 min", "plus d'1 h 30"."""
        words = self.group("wait", lang, fallback)
        hours, rest = divmod(minutes, 60)
        if minutes < 60:
            duration = _glue(words["minutes"], m=minutes)
        else:
            duration = _glue(words["hours_minutes"] if rest else words["hours"], h=hours, m=rest)
        text = _glue(words[kind], d=duration)
        return text.replace("plus de 1 h", "plus d'1 h")  # French elides before a vowel sound

    def problems(self, languages: Sequence[str]) -> list[Problem]:
        """What is wrong in the file, then each configured language's missing entries."""
        return [*self.broken, *self.missing(languages)]

    def missing(self, languages: Sequence[str]) -> list[Problem]:
        """One problem per configured language that lacks entries, naming them."""
        found = []
        for lang in languages:
            wanted = [*LEVELS, *POST_WORDS, *(f"{g}.{k}" for g, keys in GROUPS.items() for k in keys)]
            missing = [key for key in wanted if self.word(lang, key) is None]
            if missing:
                found.append(Problem(str(self.path), self.lines.get(lang), lang,
                                     f"has no wording for {', '.join(missing)}"))
        return found


_CACHE: dict[Path, Wording] = {}
_LOGGED: set[tuple[Path, float | None, str, str]] = set()


def load(alerts_dir: Path) -> Wording:
    """The wording in `alerts_dir`, read again only when labels.yaml changed on disk."""
    path = Path(alerts_dir) / LABELS_FILE
    cached = _CACHE.get(path)
    if cached is None or cached.mtime != _mtime(path):
        cached = _CACHE[path] = _read(path)
    return cached


def _read(path: Path) -> Wording:
    mtime = _mtime(path)
    try:
        root = reader.load(path)
    except ConfigError as err:
        return Wording(path, {}, {}, tuple(err.problems), mtime)
    if not isinstance(root, Mapping):
        text = "should map each language to its words, e.g. fr: {open: ouvert}"
        return Wording(path, {}, {}, (Problem(str(path), 1, "", text),), mtime)
    words: dict[str, dict[str, str]] = {}
    lines: dict[str, int | None] = {}
    problems: list[Problem] = []
    for lang, entries in root.items():
        lines[str(lang)] = reader.key_line(root, lang)
        if not isinstance(entries, Mapping):
            problems.append(Problem(str(path), lines[str(lang)], str(lang), "should map each word to its text"))
            continue
        words[str(lang)] = _entries(path, str(lang), entries, (*LEVELS, *POST_WORDS, *OPTIONAL_WORDS, *GROUPS),
                                   problems)
    return Wording(path, words, lines, tuple(problems), mtime)


def _entries(path: Path, where: str, entries: Mapping[Any, Any], allowed: tuple[str, ...],
             problems: list[Problem], prefix: str = "") -> dict[str, str]:
    words: dict[str, str] = {}
    for key, text in entries.items():
        line = reader.key_line(entries, key)
        field = f"{where}.{key}"
        if key not in allowed:
            problems.append(Problem(str(path), line, field, f"unknown entry; expected one of {', '.join(allowed)}"))
        elif key in GROUPS and not prefix:
            if isinstance(text, Mapping):
                words |= _entries(path, field, text, GROUPS[key], problems, prefix=f"{key}.")
            else:
                problems.append(Problem(str(path), line, field, "should map each word to its text"))
        elif isinstance(text, str) and text.strip():
            words[f"{prefix}{key}"] = text.strip()
        else:
            problems.append(Problem(str(path), line, field, "should be a text"))
    return words


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _glue(pattern: str, **values: object) -> str:
    """`pattern` with each {name} replaced (no str.format: the pattern is user-edited)."""
    for name, value in values.items():
        pattern = pattern.replace("{" + name + "}", str(value))
    return pattern
