"""Events: things worth saying, each with an id that is the same every time."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from statusd.model import Level, Target


class EventKind(str, Enum):
    """The kinds of event; each has a template per language in alerts/."""

    STATUS_CHANGED = "status_changed"
    CLOSURE_PLANNED = "closure_planned"
    CLOSURE_REMINDER = "closure_reminder"
    # Automatic posts from sensors; `extra` carries the zone or queue and the figures.
    SEATS_CHANGED = "seats_changed"
    QUEUE_CHANGED = "queue_changed"
    SENSOR_LOST = "sensor_lost"
    SENSOR_RESTORED = "sensor_restored"

    @property
    def automatic(self) -> bool:
        return self in AUTOMATIC


AUTOMATIC = frozenset({EventKind.SEATS_CHANGED, EventKind.QUEUE_CHANGED, EventKind.SENSOR_LOST,
                       EventKind.SENSOR_RESTORED})
STAFF_KINDS = (EventKind.STATUS_CHANGED, EventKind.CLOSURE_PLANNED, EventKind.CLOSURE_REMINDER)


@dataclass(frozen=True)
class Event:
    """Something worth saying about one target.

    `revision` fingerprints what staff asked for and the phase it is in, so the
    same situation always yields the same `id`: that is how nothing is said
    twice after a restart. `reason` says why it happens now: "staff" (a change
    in status.yaml), "scheduled" (a planned closure starts) or "expired" (its
    `until` passed).
    """

    kind: EventKind
    target: Target
    level: Level
    previous: Level
    message: Mapping[str, str]
    at: datetime
    author: str
    revision: str
    starts: datetime | None = None
    until: datetime | None = None
    reason: str = "staff"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        raw = f"{self.kind.value}|{self.target}|{self.revision}"
        return hashlib.sha256(raw.encode()).hexdigest()[:20]

    @property
    def reopening(self) -> bool:
        return self.level is Level.OPEN and self.previous is not Level.OPEN

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind.value,
                "target": str(self.target),
                "level": self.level.value,
                "previous": self.previous.value,
                "message": dict(self.message),
                "at": self.at.isoformat(),
                "author": self.author,
                "revision": self.revision,
                "starts": self.starts.isoformat() if self.starts else None,
                "until": self.until.isoformat() if self.until else None,
                "reason": self.reason,
                "extra": dict(self.extra),
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Event:
        data = json.loads(text)
        return cls(
            kind=EventKind(data["kind"]),
            target=Target.parse(data["target"]),
            level=Level(data["level"]),
            previous=Level(data["previous"]),
            message=data["message"],
            at=datetime.fromisoformat(data["at"]),
            author=data["author"],
            revision=data["revision"],
            starts=_when(data.get("starts")),
            until=_when(data.get("until")),
            reason=data.get("reason", "staff"),
            extra=data.get("extra") or {},
        )


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
