"""JSON readings → typed readings, checked field by field; a batch is all or nothing.

The shape (the same over HTTP, MQTT and files); `kind` may be left out when
the fields make it plain:

    {"kind": "seats", "site": "main", "zone": "floor2", "occupied": 120, "capacity": 240}
    {"kind": "seats", "site": "main", "zone": "floor2", "percent": 50}
    {"kind": "queue", "site": "main", "queue": "entrance", "length": 40,
     "wait_minutes": 35, "throughput_per_hour": 90}
    {"kind": "gates", "site": "main", "zone": "floor2", "in": 1520, "out": 1311}
    {"kind": "status", "site": "main", "level": "closed", "reason": "fire alarm"}

plus optional `at` (ISO 8601, or Unix seconds; a time without offset is the
site's local time) and `sensor` (a device id, kept in the reading's source).
A batch is {"readings": [...]}. Malformed input is a 400, input that is well
formed but cannot be true (unknown site, negative count, a time in the future)
is a 422; `field` names the culprit, e.g. "readings[3].occupied".
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from statusd.config.feeds import FIELDS, KINDS
from statusd.config.load import Config
from statusd.config.types import Site
from statusd.model import Level
from statusd.safetext import problem
from statusd.sources.readings import (
    GateReading,
    QueueReading,
    Reading,
    SeatReading,
    StatusReading,
)

MAX_BATCH = 1000
FUTURE = timedelta(minutes=5)
PAST = timedelta(days=1)
OVERCOUNT = 1.5  # counters overshoot a little; beyond this the figure is wrong, not noisy
MAX_WAIT_MINUTES = 24 * 60

# A field that only one kind has tells the kind when `kind` is left out.
_TELLS = (("occupied", "seats"), ("percent", "seats"), ("queue", "queue"), ("length", "queue"),
          ("wait_minutes", "queue"), ("in", "gates"), ("out", "gates"), ("level", "status"))


class PayloadError(Exception):
    """A reading that is refused: the HTTP status, the field at fault and why."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.status = status
        self.field = field
        self.reason = reason

    def to_json(self) -> dict[str, str]:
        return {"error": self.reason, "field": self.field}


def parse_json(body: bytes) -> Any:
    """Bytes → JSON value; NaN and Infinity are refused (they are not JSON)."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise PayloadError(400, "", "the body is not UTF-8 text") from None
    except (ValueError, RecursionError) as err:
        raise PayloadError(400, "", f"the body is not valid JSON ({_short(err)})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _short(err: Exception) -> str:
    return str(err).split(":")[0] if isinstance(err, json.JSONDecodeError) else str(err)[:80]


def readings_from_json(data: Any, config: Config, feed: str, now: datetime) -> list[Reading]:
    """One reading object or {"readings": [...]} → readings; raises PayloadError for any fault."""
    if not isinstance(data, dict):
        raise PayloadError(400, "", f"expected a JSON object, got {_type(data)}")
    if "readings" not in data:
        return [_reading(data, "", config, feed, now)]
    if len(data) != 1:
        extra = min(k for k in data if k != "readings")
        raise PayloadError(400, extra, "a batch holds only \"readings\"")
    items = data["readings"]
    if not isinstance(items, list):
        raise PayloadError(400, "readings", f"should be a list, got {_type(items)}")
    if not items:
        raise PayloadError(400, "readings", "is empty")
    if len(items) > MAX_BATCH:
        raise PayloadError(413, "readings", f"holds {len(items)} readings; send at most {MAX_BATCH} per request")
    return [_reading(item, f"readings[{i}].", config, feed, now) for i, item in enumerate(items)]


def _reading(item: Any, where: str, config: Config, feed: str, now: datetime) -> Reading:
    if not isinstance(item, dict):
        raise PayloadError(400, where.rstrip("."), f"expected a JSON object, got {_type(item)}")
    fields = _Fields(item, where)
    kind = _kind(fields)
    for key in item:
        if key not in FIELDS[kind]:
            raise PayloadError(400, where + str(key), f"unknown field for a {kind} reading; "
                               f"expected: {', '.join(FIELDS[kind])}")
    site = _site(fields, config)
    at = _at(fields, site, now)
    sensor = fields.text("sensor", required=False)
    source = f"{feed}/{sensor}" if sensor else feed
    return _BUILDERS[kind](fields, site, at, source)


def _kind(fields: _Fields) -> str:
    kind = fields.text("kind", required=False)
    if kind is None:
        told = {k for key, k in _TELLS if key in fields.item}
        if len(told) != 1:
            raise PayloadError(400, fields.where + "kind", "cannot tell the kind of reading; "
                               f"add \"kind\": one of {', '.join(KINDS)}")
        return told.pop()
    if kind not in KINDS:
        raise PayloadError(400, fields.where + "kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def _site(fields: _Fields, config: Config) -> Site:
    site_id = fields.text("site")
    assert site_id is not None
    if site_id not in config.sites:
        raise PayloadError(422, fields.where + "site", f"unknown site {site_id!r}; known: {', '.join(config.sites)}")
    return config.sites[site_id]


def _at(fields: _Fields, site: Site, now: datetime) -> datetime:
    value = fields.item.get("at")
    if value is None:
        return now
    at = _timestamp(value, site, fields.where + "at")
    if at > now + FUTURE:
        raise PayloadError(422, fields.where + "at", f"{value} is in the future (more than 5 minutes ahead)")
    if at < now - PAST:
        raise PayloadError(422, fields.where + "at", f"{value} is more than a day old")
    return at


def _timestamp(value: Any, site: Site, field: str) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise PayloadError(422, field, f"{value} is not a plausible Unix time") from None
    if not isinstance(value, str):
        raise PayloadError(400, field, f"should be an ISO 8601 time or Unix seconds, got {_type(value)}")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise PayloadError(400, field, f"{value!r} is not an ISO 8601 time such as 2024-05-02T14:30:00+02:00") from None
    return at.replace(tzinfo=site.tz) if at.tzinfo is None else at


def _seats(fields: _Fields, site: Site, at: datetime, source: str) -> SeatReading:
    zone = _zone(fields, site)
    configured = site.zones[zone].capacity
    capacity = fields.maybe_count("capacity", minimum=1)
    percent = fields.number("percent", required=False)
    if "occupied" in fields.item and percent is not None:
        raise PayloadError(400, fields.where + "percent", "give either occupied or percent, not both")
    if percent is not None:
        if percent > 100:
            raise PayloadError(422, fields.where + "percent", f"{percent} is over 100")
        capacity = capacity or configured
        occupied = round(percent * capacity / 100)
    else:
        occupied = fields.count("occupied")
    limit = capacity or configured
    if occupied > limit * OVERCOUNT:
        raise PayloadError(422, fields.where + "occupied",
                           f"{occupied} is far over the capacity of {limit}; check the sensor or the capacity")
    return SeatReading(site.id, zone, occupied, capacity, at, source)


def _queue(fields: _Fields, site: Site, at: datetime, source: str) -> QueueReading:
    queue = fields.text("queue")
    assert queue is not None
    if queue not in site.queues:
        known = ", ".join(site.queues) or "none configured"
        raise PayloadError(422, fields.where + "queue", f"unknown queue {queue!r} at {site.id}; known: {known}")
    length = fields.maybe_count("length")
    wait = fields.number("wait_minutes", required=False)
    rate = fields.number("throughput_per_hour", required=False)
    if length is None and wait is None:
        raise PayloadError(400, fields.where + "length", "a queue reading needs length, wait_minutes or both")
    if wait is not None and wait > MAX_WAIT_MINUTES:
        raise PayloadError(422, fields.where + "wait_minutes", f"{wait} minutes is more than a day")
    return QueueReading(site.id, queue, length, wait, rate, at, source)


def _gates(fields: _Fields, site: Site, at: datetime, source: str) -> GateReading:
    zone = _zone(fields, site)
    return GateReading(site.id, zone, fields.count("in"), fields.count("out"), at, source)


def _status(fields: _Fields, site: Site, at: datetime, source: str) -> StatusReading:
    zone = _zone(fields, site) if "zone" in fields.item else None
    level_text = fields.text("level")
    try:
        level = Level(level_text)
    except ValueError:
        raise PayloadError(422, fields.where + "level",
                           f"unknown level {level_text!r}; expected one of open, limited, closed, emergency") from None
    reason = fields.text("reason", required=level is not Level.OPEN) or ""
    return StatusReading(site.id, zone, level, reason, at, source)


def _zone(fields: _Fields, site: Site) -> str:
    zone = fields.text("zone")
    assert zone is not None
    if zone not in site.zones:
        known = ", ".join(site.zones) or "none configured"
        raise PayloadError(422, fields.where + "zone", f"unknown zone {zone!r} at {site.id}; known: {known}")
    return zone


_BUILDERS: Mapping[str, Callable[[_Fields, Site, datetime, str], Reading]] = {
    "seats": _seats, "queue": _queue, "gates": _gates, "status": _status,
}


class _Fields:
    """Typed access to one reading object; every refusal names the field."""

    def __init__(self, item: dict[str, Any], where: str) -> None:
        self.item = item
        self.where = where

    def _get(self, key: str, required: bool) -> Any:
        value = self.item.get(key)
        if value is None and required:
            raise PayloadError(400, self.where + key, "is required")
        return value

    def text(self, key: str, required: bool = True) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > 500:
            raise PayloadError(400, self.where + key, f"should be a non-empty text, got {_type(value)}")
        # Ids and kinds are one line; a reason may have line breaks. Never a control or lone surrogate.
        why = problem(value, newlines=key == "reason")
        if why is not None:
            raise PayloadError(400, self.where + key, why)
        return value

    def number(self, key: str, required: bool = True) -> float | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PayloadError(400, self.where + key, f"should be a number, got {_type(value)}")
        if not math.isfinite(value):
            raise PayloadError(400, self.where + key, "should be a finite number")
        if value < 0:
            raise PayloadError(422, self.where + key, f"{value} is negative")
        return float(value)

    def count(self, key: str, minimum: int = 0) -> int:
        value = self.maybe_count(key, minimum, required=True)
        assert value is not None
        return value

    def maybe_count(self, key: str, minimum: int = 0, required: bool = False) -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PayloadError(400, self.where + key, f"should be a whole number, got {_type(value)}")
        if value < minimum:
            what = "negative" if value < 0 else f"below {minimum}"
            raise PayloadError(422, self.where + key, f"{value} is {what}")
        return value


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "an object"
    return repr(value)[:40]
