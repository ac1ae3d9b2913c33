"""The Composer: an event rendered for one channel, from the templates in alerts/."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from jinja2 import TemplatesNotFound, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError

from statusd import textfit
from statusd.compose.dates import When, when
from statusd.compose.message import Message
from statusd.compose.samples import samples
from statusd.config import wording
from statusd.config.load import Config
from statusd.config.types import ChannelConfig, Site
from statusd.errors import Problem
from statusd.events import Event, EventKind
from statusd.sandbox import ConfinedLoader, Sandbox
from statusd.sensors.context import SENSOR_VARIABLES, sensor_context

log = structlog.get_logger()

Measure = Callable[[str], int]
VARIABLES = ("site", "service", "level", "level_code", "previous", "previous_code", "message",
             "until", "starts", "at", "reason", "reopening", "kind", "link", *SENSOR_VARIABLES)
# labels.yaml's optional `again` entry, when a language has none.
DEFAULT_AGAIN = "({time})"


class TemplateProblem(Exception):
    """A template failed to load or render; the message names the file and line."""

    def __init__(self, file: str, line: int | None, text: str) -> None:
        self.problem = Problem(file, line, "", text)
        super().__init__(str(self.problem))


class Composer:
    """Renders events into channel messages with the templates in `config.alerts_dir`."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._dir = Path(config.alerts_dir)
        self._env = Sandbox(ConfinedLoader(self._dir))
        # One event to many channels: the text is made once per (type, own templates, language).
        self._own = _subdirectories(self._dir)
        self._memo_event: Event | None = None
        self._memo: dict[tuple[str, str | None, str], str] = {}
        self._made: dict[tuple[tuple[str, str | None, str], bool], Message] = {}

    def render(self, event: Event, channel: ChannelConfig, max_chars: int | None,
               measure: Measure, *, again: bool = False) -> Message:
        """The message for `event` on `channel`; raise TemplateProblem if it cannot be made.

        `again`: the channel refuses a text it already holds, so the message also
        carries its variant with the time of the change (Message.again).
        """
        # The whole post in the language of the text it carries: never one language's frame around another's text.
        language = self.language_for(event, channel)
        if self._memo_event is not event:
            self._memo_event, self._memo, self._made = event, {}, {}
        # A channel's own folder of templates (alerts/NAME/) makes its text its own.
        key = (channel.type, channel.name if channel.name in self._own else None, language)
        # Without a limit the message is the same for every such channel (the measure is not used).
        whole = (key, again) if max_chars is None else None
        if whole is not None and (made := self._made.get(whole)) is not None:
            return made
        message = self._compose(event, replace(channel, language=language), key, max_chars, measure, again)
        if whole is not None:
            self._made[whole] = message
        return message

    def _compose(self, event: Event, channel: ChannelConfig, key: tuple[str, str | None, str],
                 max_chars: int | None, measure: Measure, again: bool) -> Message:
        site = self._site(event.target.site)
        body = self._memo.get(key)
        if body is None:
            body = self._memo[key] = self._body(event, channel)[1]
        tail = self._again(event, site, channel.language) if again else None
        return Message(
            text=textfit.fit(body, site.url, max_chars, measure),
            language=channel.language,
            link=site.url,
            event_id=event.id,
            kind=event.kind.value,
            target=str(event.target),
            level=event.level.value,
            again=None if tail is None else textfit.fit_with_tail(body, tail, site.url, max_chars, measure),
            starts=_iso(event.starts, site),
            until=_iso(event.until, site),
            at=_iso(event.at, site),
        )

    def _again(self, event: Event, site: Site, lang: str) -> str:
        """What sets a repeated post apart: the time of the change, worded by labels.yaml's `again`."""
        moment = when(event.at, event.at, site.tz, lang, self._word)
        pattern = wording.load(self._dir).word(lang, "again") or DEFAULT_AGAIN
        return pattern.replace("{time}", moment.time if moment else "")

    def language_for(self, event: Event, channel: ChannelConfig) -> str:
        """The channel's language if the update has text in it, else the first of its fallback chain that has."""
        texts = {lang for lang, text in event.message.items() if (text or "").strip()}
        if not texts or channel.language in texts:
            return channel.language
        chain = channel.fallback if channel.fallback is not None else self._config.languages
        return next((lang for lang in chain if lang in texts), channel.language)

    def check(self, channels: Iterable[tuple[ChannelConfig, int | None, Measure]]) -> list[Problem]:
        """Every problem in alerts/: syntax, missing templates or words, failures, overlong text."""
        problems = [*wording.load(self._dir).broken, *self._check_files(), *self._check_coverage()]
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

        def worded(moment: datetime | None) -> When | None:
            return when(moment, event.at, site.tz, lang, self._word)

        return {
            "site": site.name.get(lang) or site.id,
            "service": (site.services.get(service, {}).get(lang) or service) if service else None,
            "level": self._word(lang, event.level.value),
            "level_code": event.level.value,
            "previous": self._word(lang, event.previous.value),
            "previous_code": event.previous.value,
            "message": self._message(event, lang),
            "until": worded(event.until),
            "starts": worded(event.starts),
            "at": worded(event.at),
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

    def _word(self, lang: str, key: str) -> str:
        labels = wording.load(self._dir)
        word = labels.word(lang, key)
        if word is None and labels.broken:  # most likely why: labels.yaml is broken
            raise TemplateProblem(*_located(labels.broken[0]))
        if word is None:
            text = f"{lang}: has no wording for {key!r}; add it"
            raise TemplateProblem(str(labels.path), labels.lines.get(lang), text)
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
            # A template for a language this config does not use (the shipped fr, en, sv
            # when only some are named) is fine: it waits for the language to be added.
            if not match or match["kind"] not in kinds or not _LANGUAGE_TAG.fullmatch(match["lang"]):
                problems.append(Problem(str(path), None, "", (
                    "is never used: templates are named KIND.LANGUAGE.j2, optionally in a folder "
                    f"named after a channel or channel type, with KIND one of {', '.join(kinds)} "
                    f"and LANGUAGE a language tag such as {', '.join(languages)}")))
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
        return problems + wording.load(self._dir).missing(self._config.languages)

    def _check_channel(self, channel: ChannelConfig, limit: int | None,
                       measure: Measure) -> list[Problem]:
        problems: list[Problem] = []
        too_long: set[str] = set()
        for event, description in samples(self._config, channel):
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


_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_MISSING = "is missing; every event kind needs a template in each configured language"


def _reflow(text: str) -> str:
    """Paragraphs are separated by blank lines; line breaks within one become spaces."""
    paragraphs = re.split(r"\n[ \t\r]*\n", text.strip())
    flowed = (re.sub(r"[ \t\r\n]+", " ", p).strip() for p in paragraphs)
    return "\n\n".join(p for p in flowed if p)


def _subdirectories(directory: Path) -> frozenset[str]:
    try:
        return frozenset(p.name for p in directory.iterdir() if p.is_dir())
    except OSError:
        return frozenset()


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


def _located(problem: Problem) -> tuple[str, int | None, str]:
    field = f"{problem.field}: " if problem.field else ""
    return problem.file, problem.line, field + problem.text


def _iso(moment: datetime | None, site: Site) -> str | None:
    """`moment` as an ISO time in the site's zone (a naive one is taken as UTC)."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(site.tz).isoformat()
