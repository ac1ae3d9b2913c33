"""② Compare what staff want said with what has been said, and decide the events.

Level-triggered: `reconcile` is a pure function of status.yaml, the store's
announced state and the time, so start-up, a file change and recovery after a
crash all go through the same code and say only the difference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from statusd.config.load import Config
from statusd.events import Event, EventKind
from statusd.model import Announced, Level, StatusEntry, Target, Wanted

OPEN_FINGERPRINT = "open"
HAND_EDIT = "hand edit of status.yaml"
SCHEDULE = "schedule"


@dataclass(frozen=True)
class Effective:
    """The status in force for a target now, and why."""

    level: Level
    entry: StatusEntry
    fingerprint: str
    reason: str


@dataclass
class Plan:
    """What to say now, what to remember having said, and when to look again."""

    events: list[Event] = field(default_factory=list)
    announced: dict[str, Announced] = field(default_factory=dict)
    wake_at: datetime | None = None

    def wake(self, when: datetime, now: datetime) -> None:
        if when > now and (self.wake_at is None or when < self.wake_at):
            self.wake_at = when


def fingerprint(entry: StatusEntry) -> str:
    """Identifies the facts of an entry (not who stamped it)."""
    if entry.level is Level.OPEN and not entry.message and not entry.until:
        return OPEN_FINGERPRINT
    facts = {
        "level": entry.level.value,
        "message": dict(sorted(entry.message.items())),
        "starts": entry.starts.isoformat() if entry.starts else None,
        "until": entry.until.isoformat() if entry.until else None,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def effective(entry: StatusEntry, now: datetime) -> Effective:
    """The entry as it stands at `now`: planned windows not started, or ended, count as open."""
    if entry.starts and now < entry.starts:
        return Effective(Level.OPEN, StatusEntry(), OPEN_FINGERPRINT, "staff")
    if entry.until and now >= entry.until:
        return Effective(Level.OPEN, StatusEntry(), OPEN_FINGERPRINT, "expired")
    reason = "scheduled" if entry.starts else "staff"
    return Effective(entry.level, entry, fingerprint(entry), reason)


def reconcile(wanted: Wanted, announced: Mapping[str, Announced], config: Config, now: datetime) -> Plan:
    """Events needed to bring what was said up to what is wanted at `now`."""
    plan = Plan()
    targets = {str(t): t for t in wanted} | {key: Target.parse(key) for key in announced}
    for key, target in sorted(targets.items()):
        if target.site not in config.sites:
            continue
        entry = wanted.get(target, StatusEntry())
        _status(plan, target, entry, announced.get(key), now)
        _planned(plan, target, entry, config.delivery.reminder, now)
    return plan


def _status(plan: Plan, target: Target, entry: StatusEntry, said: Announced | None, now: datetime) -> None:
    current = effective(entry, now)
    if entry.until:
        plan.wake(entry.until, now)
    if entry.starts:
        plan.wake(entry.starts, now)
    said = said or Announced(Level.OPEN.value, OPEN_FINGERPRINT)
    if current.fingerprint == said.fingerprint:
        return
    stamp = entry.at.isoformat() if entry.at else ""
    author = _author(entry, current, stamp, said)
    event = Event(
        kind=EventKind.STATUS_CHANGED,
        target=target,
        level=current.level,
        previous=Level(said.level),
        message=current.entry.message,
        at=now,
        author=author,
        # The previous event id keeps a repeat of an old situation distinct.
        revision=f"{current.fingerprint}|after|{said.event_id}",
        starts=current.entry.starts,
        until=current.entry.until,
        reason=current.reason,
    )
    plan.events.append(event)
    plan.announced[str(target)] = Announced(
        current.level.value, current.fingerprint, stamp, event.id, now.timestamp()
    )


def _author(entry: StatusEntry, current: Effective, stamp: str, said: Announced) -> str:
    if current.reason != "staff":
        return SCHEDULE
    if entry.by and stamp and stamp != said.stamp:
        return entry.by
    return HAND_EDIT


def _planned(plan: Plan, target: Target, entry: StatusEntry, reminder: float, now: datetime) -> None:
    """Announce a future closure when set, and remind of it shortly before it starts."""
    if not entry.starts or now >= entry.starts or entry.level is Level.OPEN:
        return
    rev = fingerprint(entry)
    remind_at = entry.starts - timedelta(seconds=reminder)
    kind = EventKind.CLOSURE_REMINDER if now >= remind_at else EventKind.CLOSURE_PLANNED
    plan.wake(remind_at, now)
    plan.events.append(
        Event(
            kind=kind,
            target=target,
            level=entry.level,
            previous=Level.OPEN,
            message=entry.message,
            at=now,
            author=entry.by or HAND_EDIT,
            revision=rev,
            starts=entry.starts,
            until=entry.until,
            reason="staff" if kind is EventKind.CLOSURE_PLANNED else "scheduled",
        )
    )
