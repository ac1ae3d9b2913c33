"""Replay: a day of readings through the daemon's intake, rules and rendering, posting nothing."""

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

from statusd.announcer import render
from statusd.channels import build_channel
from statusd.compose.composer import Composer
from statusd.config.load import Config
from statusd.config.rules import RulesConfig, default_rules
from statusd.config.types import OPERATOR_KINDS
from statusd.errors import UserError
from statusd.events import Event
from statusd.intake import Intake
from statusd.model import StatusEntry, Target
from statusd.outbox.store import Planned
from statusd.sensors.state import Sensors
from statusd.sources.feeds.payload import PayloadError, readings_from_json
from statusd.sources.readings import Reading

TICK = timedelta(minutes=1)  # how often the daemon looks for silent sensors
FEED = "replay"


@dataclass(frozen=True)
class Post:
    """One event of the replay and what each channel carrying it would post."""

    event: Event
    messages: tuple[tuple[str, str], ...]

    @property
    def operator_only(self) -> bool:
        """A sensor notice no channel asked for: it goes to the log and `statusd show` only."""
        return not self.messages and self.event.kind.value in OPERATOR_KINDS


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

    The daemon's own Intake (gate totals, building systems' statuses, the
    sensor rules) and announcer's render run on the readings' clock; statuses
    stay in memory, status.yaml is never written. `speed` compresses time
    (3600: an hour a second; 0: as fast as possible).
    """
    sensors = Sensors(config, rules or default_rules(config.sites))
    clock = _Clock()
    statuses: dict[Target, StatusEntry] = {}
    intake = Intake(config, sensors, lambda: statuses, statuses.__setitem__, clock=clock)
    composer = Composer(config)
    channels = {name: build_channel(c, config.delivery) for name, c in config.channels.items()}
    posts: list[Post] = []
    for at, batch in groupby(readings, key=lambda r: r.at):
        events: list[Event] = []
        last = clock.now
        if speed > 0 and last is not None:
            sleep((at - last).total_seconds() / speed)
        for moment in _ticks(last, at):
            clock.now = moment
            events += sensors.tick(moment, intake.closed)
        clock.now = at
        events += intake.accept(list(batch), at)
        for event in events:
            post = _post(event, render(config, composer, channels, event))
            posts.append(post)
            if on_post:
                on_post(post)
    return posts


class _Clock:
    """The replayed day's time, which the intake reads as its clock."""

    now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now or datetime.now(UTC)


def _ticks(last: datetime | None, until: datetime) -> Iterator[datetime]:
    """The daemon's periodic looks between two readings (one a minute)."""
    if last is None:
        return
    moment = last + TICK
    while moment < until:
        yield moment
        moment += TICK


def _post(event: Event, planned: Sequence[Planned]) -> Post:
    """What each channel would post; a template that fails shows its error in place of the text."""
    return Post(event, tuple((p.channel, p.message.text if p.message else f"({p.error})") for p in planned))


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
