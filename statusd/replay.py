"""Replay: a day of readings through the real rules and the real Composer, posting nothing."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any

from statusd.channels import build_channel
from statusd.compose import Composer, TemplateProblem
from statusd.config.load import Config
from statusd.config.rules import RulesConfig, default_rules
from statusd.errors import UserError
from statusd.events import Event, EventKind
from statusd.model import Level
from statusd.sensors.gates import GateCounter
from statusd.sensors.state import Sensors
from statusd.sources.feeds.payload import PayloadError, readings_from_json
from statusd.sources.readings import GateReading, Reading, StatusReading

TICK = timedelta(minutes=1)  # how often the daemon looks for silent sensors
OPERATOR_KINDS = (EventKind.SENSOR_LOST, EventKind.SENSOR_RESTORED)
FEED = "replay"


@dataclass(frozen=True)
class Post:
    """One event of the replay and what each channel carrying it would post."""

    event: Event
    messages: tuple[tuple[str, str], ...]

    @property
    def operator_only(self) -> bool:
        """A sensor notice no channel asked for: it goes to the log and `statusd show` only."""
        return not self.messages and self.event.kind in OPERATOR_KINDS


@dataclass
class Replay:
    """The readings of a file and the problems met reading it."""

    readings: list[Reading] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load(path: Path, config: Config) -> Replay:
    """Readings from a JSONL or CSV file in the feeds' shape; bad lines are listed, not fatal."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path}: {err}") from err
    rows = _csv_rows(text) if path.suffix.lower() == ".csv" else _jsonl_rows(text)
    replay = Replay()
    for line, row in rows:
        if isinstance(row, _Bad):
            replay.problems.append(f"{path}:{line}: {row.reason}")
            continue
        try:
            replay.readings += readings_from_json(row, config, FEED, _when(row, config))
        except PayloadError as err:
            replay.problems.append(f"{path}:{line}: {err}")
    replay.readings.sort(key=lambda r: r.at)
    return replay


def play(
    readings: Sequence[Reading],
    config: Config,
    rules: RulesConfig | None = None,
    *,
    speed: float = 0.0,
    on_post: Callable[[Post], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Post]:
    """Every event the readings call for, rendered for every configured channel that carries it.

    `speed` compresses time (3600: an hour a second; 0: as fast as possible).
    """
    sensors = Sensors(config, rules or default_rules(config.sites))
    render = _Renderer(config)
    gates, closed_sites = GateCounter(), set[str]()
    posts: list[Post] = []
    clock: datetime | None = None
    for at, batch in groupby(readings, key=lambda r: r.at):
        group = list(batch)
        events: list[Event] = []
        for moment in _ticks(clock, at):
            events += sensors.tick(moment, closed_sites.__contains__)
        if speed > 0 and clock is not None:
            sleep((at - clock).total_seconds() / speed)
        clock = at
        group = _apply_status(group, closed_sites)
        group += _occupancy(group, gates, config)
        events += sensors.ingest(group, at, closed_sites.__contains__)
        for event in events:
            post = render(event)
            posts.append(post)
            if on_post:
                on_post(post)
    return posts


def _ticks(last: datetime | None, until: datetime) -> Iterator[datetime]:
    """The daemon's periodic looks between two readings (one a minute)."""
    if last is None:
        return
    moment = last + TICK
    while moment < until:
        yield moment
        moment += TICK


def _apply_status(group: list[Reading], closed_sites: set[str]) -> list[Reading]:
    """A building system's site status stands in for staff status during the replay."""
    for reading in group:
        if isinstance(reading, StatusReading) and reading.zone is None:
            if reading.level in (Level.CLOSED, Level.EMERGENCY):
                closed_sites.add(reading.site)
            else:
                closed_sites.discard(reading.site)
    return [r for r in group if not isinstance(r, StatusReading)]


def _occupancy(group: list[Reading], gates: GateCounter, config: Config) -> list[Reading]:
    """Gate totals become seats occupied, as the daemon does (and still feed admission rates)."""
    seats: list[Reading] = []
    for reading in group:
        if isinstance(reading, GateReading):
            seats.append(gates.update(reading, config.sites[reading.site]))
    return seats


class _Renderer:
    """The real Composer, for every configured channel, with each channel's limit and measure."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._composer = Composer(config)
        self._channels = {
            name: build_channel(c, config.delivery) for name, c in config.channels.items()
        }

    def __call__(self, event: Event) -> Post:
        messages = []
        for name, channel in self._channels.items():
            settings = self._config.channels[name]
            if not carries(settings.events, event.kind) or not settings.carries(
                event.target.site, event.kind.value
            ):
                continue
            try:
                text = self._composer.render(
                    event, settings, channel.max_chars, channel.measure
                ).text
            except TemplateProblem as err:
                text = f"(template error: {err})"
            messages.append((name, text))
        return Post(event, tuple(messages))


def carries(events: Sequence[str] | None, kind: EventKind) -> bool:
    """Sensor notices go only to channels that list them; other kinds follow `events` as usual."""
    return kind not in OPERATOR_KINDS or (events is not None and kind.value in events)


@dataclass(frozen=True)
class _Bad:
    """A line that could not even be parsed."""

    reason: str


def _jsonl_rows(text: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as err:
                yield number, _Bad(f"not a JSON object ({err.msg})")


def _csv_rows(text: str) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        yield reader.line_num, {k: _cell(v) for k, v in row.items() if k and v and v.strip()}


def _cell(value: str) -> Any:
    """Numbers as numbers (as JSON would carry them), the rest as text."""
    value = value.strip()
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _when(row: Any, config: Config) -> datetime:
    """The reading's own time, so the feed's "not from the future, not too old" check fits the day."""
    if not isinstance(row, dict):
        return datetime.now(UTC)
    value, site_id = row.get("at"), row.get("site")
    site = config.sites.get(site_id) if isinstance(site_id, str) else None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            at = datetime.fromisoformat(value)
            return at.replace(tzinfo=site.tz) if at.tzinfo is None and site else at
    except (ValueError, OverflowError, OSError):
        pass
    return datetime.now(UTC)
