"""Compose: an event rendered for one channel, from the templates in alerts/."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time
from jinja2 import TemplatesNotFound, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError

from statusd import textfit
from statusd.channels.base import Message
from statusd.config import reader
from statusd.config.load import Config
from statusd.config.types import ChannelConfig, Site
from statusd.errors import ConfigError, Problem
from statusd.events import Event, EventKind
from statusd.model import LEVELS, Level, Target
from statusd.sandbox import ConfinedLoader, Sandbox
from statusd.sensors.context import SENSOR_VARIABLES, sensor_context

log = structlog.get_logger()

Measure = Callable[[str], int]
LABELS_FILE = "labels.yaml"
# Words the date formatting needs besides the level labels.
WORDS = ("today", "tomorrow", "day_at_time")
VARIABLES = ("site", "service", "level", "level_code", "previous", "previous_code", "message",
             "until", "starts", "at", "reason", "reopening", "kind", "link", *SENSOR_VARIABLES)
_SAMPLE_MESSAGE = {
    "fr": "Fermeture exceptionnelle : dégât des eaux au rez-de-chaussée.",
    "en": "Unexpected closure: water damage on the ground floor.",
    "sv": "Oplanerad stängning: vattenskada på bottenvåningen.",
}


class TemplateProblem(Exception):
    """A template failed to load or render; the message names the file and line."""

    def __init__(self, file: str, line: int | None, text: str) -> None:
        self.problem = Problem(file, line, "", text)
        super().__init__(str(self.problem))


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


@dataclass(frozen=True)
class _Labels:
    """labels.yaml: wording per language, the line of each language, what is wrong in it."""

    words: Mapping[str, Mapping[str, str]]
    lines: Mapping[str, int | None]
    problems: tuple[Problem, ...]
    mtime: float | None


class Composer:
    """Renders events into channel messages with the templates in `config.alerts_dir`."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._dir = Path(config.alerts_dir)
        self._env = Sandbox(ConfinedLoader(self._dir))
        self._labels_cache = _load_labels(self._dir / LABELS_FILE)

    def render(self, event: Event, channel: ChannelConfig, max_chars: int | None,
               measure: Measure) -> Message:
        """The message for `event` on `channel`; raise TemplateProblem if it cannot be made."""
        site = self._site(event.target.site)
        # The whole post in the language of the text it carries: never one language's frame around another's text.
        channel = replace(channel, language=self.language_for(event, channel))
        _, body = self._body(event, channel)
        return Message(
            text=textfit.fit(body, site.url, max_chars, measure),
            language=channel.language,
            link=site.url,
            event_id=event.id,
            kind=event.kind.value,
            target=str(event.target),
            level=event.level.value,
        )

    def language_for(self, event: Event, channel: ChannelConfig) -> str:
        """The channel's language if the update has text in it, else the first of its fallback chain that has."""
        texts = {lang for lang, text in event.message.items() if (text or "").strip()}
        if not texts or channel.language in texts:
            return channel.language
        chain = channel.fallback if channel.fallback is not None else self._config.languages
        return next((lang for lang in chain if lang in texts), channel.language)

    def check(self, channels: Iterable[tuple[ChannelConfig, int | None, Measure]]) -> list[Problem]:
        """Every problem in alerts/: syntax, missing templates or words, failures, overlong text."""
        problems = list(self._labels().problems) + self._check_files() + self._check_coverage()
        for channel, limit, measure in channels:
            problems += self._check_channel(channel, limit, measure)
        return list(dict.fromkeys(problems))  # one report per problem, in order

    def _body(self, event: Event, channel: ChannelConfig) -> tuple[str, str]:
        """(template file, rendered and reflowed text) for `event` on `channel`."""
        context = self._context(event, channel)
        name = f"{event.kind.value}.{channel.language}.j2"
        names = [f"{channel.name}/{name}", f"{channel.type}/{name}", name]
        try:
            template = self._env.select_template(names)
            text = template.render(context)
        except TemplatesNotFound:
            raise TemplateProblem(str(self._dir / name), None, _MISSING) from None
        except TemplateSyntaxError as err:
            raise TemplateProblem(err.filename or str(self._dir / name), err.lineno, err.message or str(err)) from err
        except Exception as err:  # any failure inside a template is the template's problem
            where, line = _where(err)
            raise TemplateProblem(where or str(self._dir / name), line, _describe(err)) from err
        return str(template.filename), _reflow(text)

    def _context(self, event: Event, channel: ChannelConfig) -> dict[str, Any]:
        lang = channel.language
        site = self._site(event.target.site)
        service = event.target.service

        def when(moment: datetime | None) -> When | None:
            return self._when(moment, event.at, site.tz, lang)

        return {
            "site": site.name.get(lang) or site.id,
            "service": (site.services.get(service, {}).get(lang) or service) if service else None,
            "level": self._word(lang, event.level.value),
            "level_code": event.level.value,
            "previous": self._word(lang, event.previous.value),
            "previous_code": event.previous.value,
            "message": self._message(event, lang),
            "until": when(event.until),
            "starts": when(event.starts),
            "at": when(event.at),
            "reason": event.reason,
            "reopening": event.reopening,
            "kind": event.kind.value,
            "link": site.url,
            **sensor_context(event, site, lang),
        }

    def _site(self, site_id: str) -> Site:
        site = self._config.sites.get(site_id)
        if site is None:  # an old event for a site since removed from statusd.yaml
            log.warning("compose_unknown_site", site=site_id)
            return Site(site_id, {}, "UTC", self._config.public_url, {}, {}, {})
        return site

    def _message(self, event: Event, lang: str) -> str:
        """The staff message in `lang`, else the default language, else any, else ""."""
        for key in (lang, self._config.default_language, *event.message):
            text = (event.message.get(key) or "").strip()
            if text:
                return text
        return ""

    def _when(self, moment: datetime | None, reference: datetime, tz: ZoneInfo,
              lang: str) -> When | None:
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
        day = self._word(lang, relative) if relative else date
        day_at_time = _glue(self._word(lang, "day_at_time"), "{day}", day, "{time}", time)
        text = time if days == 0 else day_at_time
        return When(text, date=date, time=time, day=day, short=short, iso=local.isoformat(),
                    same_day=days == 0, tomorrow=days == 1)

    def _labels(self) -> _Labels:
        """labels.yaml, read again when it changed on disk (it is edited live)."""
        path = self._dir / LABELS_FILE
        if _mtime(path) != self._labels_cache.mtime:
            self._labels_cache = _load_labels(path)
        return self._labels_cache

    def _word(self, lang: str, key: str) -> str:
        labels = self._labels()
        word = labels.words.get(lang, {}).get(key)
        if word is None and labels.problems:  # most likely why: labels.yaml is broken
            raise TemplateProblem(*_located(labels.problems[0]))
        if word is None:
            text = f"{lang}: has no wording for {key!r}; add it"
            raise TemplateProblem(str(self._dir / LABELS_FILE), labels.lines.get(lang), text)
        return word

    def _check_files(self) -> list[Problem]:
        if not self._dir.is_dir():
            return [Problem(str(self._dir), None, "", "the templates directory does not exist")]
        problems = []
        kinds = [k.value for k in EventKind]
        for path in sorted(self._dir.rglob("*.j2")):
            name = path.relative_to(self._dir).as_posix()
            match = re.fullmatch(r"(?:[\w-]+/)?(?P<kind>\w+)\.(?P<lang>[\w-]+)\.j2", name)
            languages = self._config.languages
            if not match or match["kind"] not in kinds or match["lang"] not in languages:
                problems.append(Problem(str(path), None, "", (
                    "is never used: templates are named KIND.LANGUAGE.j2, optionally in a folder "
                    f"named after a channel or channel type, with KIND one of {', '.join(kinds)} "
                    f"and LANGUAGE one of {', '.join(languages)}")))
            try:
                self._env.get_template(name)
            except TemplateSyntaxError as err:
                problems.append(Problem(str(path), err.lineno, "", err.message or str(err)))
        return problems

    def _check_coverage(self) -> list[Problem]:
        problems = []
        for kind in EventKind:
            for lang in self._config.languages:
                path = self._dir / f"{kind.value}.{lang}.j2"
                if not path.is_file():
                    problems.append(Problem(str(path), None, "", _MISSING))
        labels = self._labels()
        for lang in self._config.languages:
            missing = [key for key in (*LEVELS, *WORDS) if key not in labels.words.get(lang, {})]
            if missing:
                problems.append(Problem(str(self._dir / LABELS_FILE), labels.lines.get(lang), lang,
                                        f"has no wording for {', '.join(missing)}"))
        return problems

    def _check_channel(self, channel: ChannelConfig, limit: int | None,
                       measure: Measure) -> list[Problem]:
        problems: list[Problem] = []
        too_long: set[str] = set()
        for event, description in _samples(self._config, channel):
            try:
                file, body = self._body(event, channel)
            except TemplateProblem as err:
                problems.append(err.problem)
                continue
            size = measure(textfit.join(body, self._site(event.target.site).url))
            if limit is not None and size > limit and file not in too_long:
                too_long.add(file)
                problems.append(Problem(file, None, f"channel {channel.name}", (
                    f"renders to {size} characters with the link for {description}, over the "
                    f"limit of {limit}; it would be shortened, so make the template shorter")))
        return problems


_MISSING = "is missing; every event kind needs a template in each configured language"


def _samples(config: Config, channel: ChannelConfig) -> Iterator[tuple[Event, str]]:
    """Events of every kind the channel carries, at every level, to try each template on."""
    sites = [s for s in config.sites.values() if channel.sites is None or s.id in channel.sites]
    if not sites:
        return
    lang = channel.language
    site = max(sites, key=lambda s: len(s.name.get(lang, s.id)))  # the longest is the worst case
    services = sorted(site.services, key=lambda s: -len(site.services[s].get(lang, s)))
    message = {lang: _SAMPLE_MESSAGE.get(lang, _SAMPLE_MESSAGE["en"])}
    at = datetime(2026, 12, 23, 18, 0, tzinfo=site.tz)
    starts, until = at + timedelta(days=1), at + timedelta(days=3, hours=-8)
    samples = [sample for target in [Target(site.id), *[Target(site.id, s) for s in services[:1]]]
               for sample in _sample_events(target, message, at, starts, until)]
    for event, description in [*samples, *_sensor_samples(site, at)]:
        if channel.events is None or event.kind.value in channel.events:
            yield event, description


def _sample_events(target: Target, message: Mapping[str, str], at: datetime, starts: datetime,
                   until: datetime) -> Iterator[tuple[Event, str]]:
    def event(kind: EventKind, level: Level, previous: Level, with_message: bool,
              **extra: Any) -> tuple[Event, str]:
        text = f"{kind.value} {previous.value}→{level.value} of {target}"
        text += " with a message" if with_message else ""
        text += "".join(f", {key} {v if isinstance(v, str) else 'set'}" for key, v in extra.items())
        return Event(kind, target, level, previous, message if with_message else {}, at, "check",
                     "sample", **extra), text

    for level in Level:
        previous = Level.CLOSED if level is Level.OPEN else Level.OPEN
        for with_message in (False, True):
            yield event(EventKind.STATUS_CHANGED, level, previous, with_message)
            yield event(EventKind.STATUS_CHANGED, level, previous, with_message, until=until)
    yield event(EventKind.STATUS_CHANGED, Level.OPEN, Level.EMERGENCY, False, reason="expired")
    yield event(EventKind.STATUS_CHANGED, Level.CLOSED, Level.OPEN, True, reason="scheduled",
                starts=at, until=until)
    for kind in (EventKind.CLOSURE_PLANNED, EventKind.CLOSURE_REMINDER):
        for with_message in (False, True):
            yield event(kind, Level.CLOSED, Level.OPEN, with_message, starts=starts)
            yield event(kind, Level.CLOSED, Level.OPEN, with_message, starts=starts, until=until)


def _sensor_samples(site: Site, at: datetime) -> Iterator[tuple[Event, str]]:
    """Seats, queue and sensor events for `site`, every zone and queue listed (the longest case)."""
    zones = list(site.zones) or ["zone"]
    queues = list(site.queues) or ["entrance"]
    seat_bands = ("free", "busy", "nearly_full", "full")

    def event(kind: EventKind, description: str, **extra: Any) -> tuple[Event, str]:
        sample = Event(kind, Target(site.id), Level.OPEN, Level.OPEN, {}, at, "check", "sample",
                       reason="sensor", extra=extra)
        return sample, f"{kind.value} of {site.id}, {description}"

    for band, previous in zip(seat_bands, seat_bands[1:] + seat_bands[:1]):
        for changed in (zones[:1], zones):
            listed = [{"id": z, "band": band if z in changed else "free", "previous_band": previous,
                       "changed": z in changed, "occupied": 950, "capacity": 1000, "free": 50,
                       "percent": 95} for z in zones]
            yield event(EventKind.SEATS_CHANGED, f"{len(changed)} zone(s) {previous}→{band}",
                        zone=zones[0], band=band, previous_band=previous, zones=listed,
                        free=50, capacity=1000, percent=95, occupied=950)
    for kind, minutes in (("none", 0), ("under", 5), ("about", 45), ("about", 60), ("over", 90)):
        for estimate in (False, True):
            wait = {"kind": kind, "minutes": minutes, "hours": minutes // 60, "rest": minutes % 60}
            listed = [{"id": q, "band": "30_60", "previous_band": "15_30", "changed": True,
                       "length": 250, "wait_minutes": minutes, "estimate": estimate, "wait": wait}
                      for q in queues]
            yield event(EventKind.QUEUE_CHANGED, f"wait {kind} {minutes} min", queue=queues[0],
                        band="30_60", previous_band="15_30", wait=wait, estimate=estimate,
                        length=250, queues=listed)
    for kind in (EventKind.SENSOR_LOST, EventKind.SENSOR_RESTORED):
        yield event(kind, f"zone {zones[0]}", zone=zones[0], last_seen=at.isoformat())
        yield event(kind, f"queue {queues[0]}", queue=queues[0], last_seen=at.isoformat())


def _load_labels(path: Path) -> _Labels:
    mtime = _mtime(path)
    try:
        root = reader.load(path)
    except ConfigError as err:
        return _Labels({}, {}, tuple(err.problems), mtime)
    words: dict[str, dict[str, str]] = {}
    lines: dict[str, int | None] = {}
    problems: list[Problem] = []
    if not isinstance(root, Mapping):
        text = "should map each language to its words, e.g. fr: {open: ouvert}"
        return _Labels({}, {}, (Problem(str(path), 1, "", text),), mtime)
    for lang, entries in root.items():
        lines[str(lang)] = reader.key_line(root, lang)
        if not isinstance(entries, Mapping):
            text = "should map each word to its text"
            problems.append(Problem(str(path), lines[str(lang)], str(lang), text))
            continue
        words[str(lang)] = {}
        for key, text in entries.items():
            line = reader.key_line(entries, key)
            if key not in (*LEVELS, *WORDS):
                text = f"unknown entry; expected one of {', '.join((*LEVELS, *WORDS))}"
                problems.append(Problem(str(path), line, f"{lang}.{key}", text))
            elif not isinstance(text, str) or not text.strip():
                problems.append(Problem(str(path), line, f"{lang}.{key}", "should be a text"))
            else:
                words[str(lang)][str(key)] = text.strip()
    return _Labels(words, lines, tuple(problems), mtime)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _reflow(text: str) -> str:
    """Paragraphs are separated by blank lines; line breaks within one become spaces."""
    paragraphs = re.split(r"\n[ \t\r]*\n", text.strip())
    flowed = (re.sub(r"[ \t\r\n]+", " ", p).strip() for p in paragraphs)
    return "\n\n".join(p for p in flowed if p)


def _where(err: BaseException) -> tuple[str | None, int | None]:
    """The template file and line where a render error happened, from its traceback."""
    found: tuple[str | None, int | None] = (None, None)
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".j2"):
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _describe(err: Exception) -> str:
    if isinstance(err, SecurityError):
        return f"not allowed in a template: {err}"
    if isinstance(err, UndefinedError):
        return f"{err}; the variables are {', '.join(VARIABLES)}"
    return f"{type(err).__name__}: {err}"


def _glue(pattern: str, *pairs: str) -> str:
    """`pattern` with each placeholder replaced (no str.format: the pattern is user-edited)."""
    for placeholder, value in zip(pairs[::2], pairs[1::2]):
        pattern = pattern.replace(placeholder, value)
    return pattern


def _located(problem: Problem) -> tuple[str, int | None, str]:
    field = f"{problem.field}: " if problem.field else ""
    return problem.file, problem.line, field + problem.text


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
