"""Decoders: a feed's JSON document → readings, in our shape, a vendor's or a mapped one.

Every decoder ends in `readings_from_json`, so a vendor's figures go through
the same checks as our own (known site and zone, no negative count, no
timestamp from tomorrow). Samples of each vendor payload: examples/vendors/.

Axis People Counter, `GET /local/tvpc/.api?live-sum.json` (VAPIX People
counter API, "Request real-time data"; older firmware serves it under
/local/people-counter/), answers the counts of the day so far:

    {"serial": "00408CAC512B", "name": "Exit south", "timestamp": "20170503112756",
     "in": 12, "out": 318}

`timestamp` is the camera's local time, YYYYMMDDhhmmss, read in the site's time
zone; `in` and `out` are cumulative totals → one GateReading (sensor = serial).

Xovis PC sensors, data push agent for line count data in JSON (one element per
counting line; `measurement` holds the counts of each interval, labelled `fw`
for forward = in and `bw` for backward = out):

    {"sensor-time": {"timezone": "Europe/Zurich", "time": "2024-05-02T10:15:00+02:00"},
     "status": {"code": "OK"},
     "content": {"element": [{"element-id": 0, "element-name": "Entrance",
        "sensor-type": "SINGLE_SENSOR", "data-type": "LINE",
        "from": "...", "to": "...", "resolution": "ONE_MINUTE",
        "measurement": [{"from": "2024-05-02T10:14:00+02:00", "to": "2024-05-02T10:15:00+02:00",
                         "value": [{"value": 7, "label": "fw"}, {"value": 2, "label": "bw"}]}]}]},
     "sensor-info": {"serial-number": "00:26:...", "ip-address": "10.0.0.8", "name": "Entrance",
                     "group": "...", "device-type": "PC2S"}}

Xovis pushes interval counts, not totals, so the decoder adds them up (per
sensor and line, skipping intervals it has already seen when a push is
retried) and emits one GateReading with the running totals of all LINE
elements: several entrances into one zone add up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from statusd.config.feeds import Decoding
from statusd.config.load import Config
from statusd.sources.feeds.payload import PayloadError, parse_json, readings_from_json
from statusd.sources.readings import (
    GateReading,
    QueueReading,
    Reading,
    SeatReading,
    StatusReading,
)

log = structlog.get_logger()


class Decoder:
    """Turns one document from one feed into readings; keeps what a vendor format needs between documents."""

    def __init__(self, decoding: Decoding, config: Config, feed: str) -> None:
        self.decoding = decoding
        self.config = config
        self.feed = feed
        self._xovis = XovisTotals()
        self._decode: Callable[[Any, datetime], list[Reading]] = {
            "statusd": self._statusd,
            "mapping": self._mapping,
            "axis-live-sum": self._axis,
            "xovis-line-count": self._xovis_line_count,
        }[decoding.format]

    def decode(self, data: Any, now: datetime) -> list[Reading]:
        """Readings from `data`, or PayloadError naming the field at fault."""
        return self._decode(data, now)

    def _read(self, data: Any, now: datetime) -> list[Reading]:
        return readings_from_json(data, self.config, self.feed, now)

    def _statusd(self, data: Any, now: datetime) -> list[Reading]:
        if isinstance(data, dict) and self.decoding.site:
            if isinstance(data.get("readings"), list):
                data = {**data, "readings": [self._defaults(item) for item in data["readings"]]}
            else:
                data = self._defaults(data)
        return self._read(data, now)

    def _defaults(self, item: Any) -> Any:
        """The feed's site and zone (or queue) where a message leaves them out."""
        if not isinstance(item, dict):
            return item
        filled = {"site": self.decoding.site, **item}
        if self.decoding.zone and "queue" not in item:
            filled.setdefault("zone", self.decoding.zone)
        if self.decoding.queue and "zone" not in item:
            filled.setdefault("queue", self.decoding.queue)
        return filled

    def _mapping(self, data: Any, now: datetime) -> list[Reading]:
        item: dict[str, Any] = {"kind": self.decoding.kind, "site": self.decoding.site}
        if self.decoding.zone:
            item["zone"] = self.decoding.zone
        if self.decoding.queue:
            item["queue"] = self.decoding.queue
        for target, path in self.decoding.fields.items():
            value = lookup(data, path)
            if value is not None:
                item[target] = value
        return self._read(item, now)

    def _axis(self, data: Any, now: datetime) -> list[Reading]:
        if not isinstance(data, dict):
            raise PayloadError(400, "", "an Axis live-sum document is a JSON object")
        item = {"kind": "gates", "site": self.decoding.site, "zone": self.decoding.zone,
                "in": data.get("in"), "out": data.get("out"), "at": _axis_time(data.get("timestamp"))}
        if isinstance(data.get("serial"), str) and data["serial"]:
            item["sensor"] = data["serial"]
        return self._read(item, now)

    def _xovis_line_count(self, data: Any, now: datetime) -> list[Reading]:
        counts = xovis_counts(data)
        if not counts:
            return []
        serial, totals, at = self._xovis.preview(counts)
        item = {"kind": "gates", "site": self.decoding.site, "zone": self.decoding.zone,
                "in": totals[0], "out": totals[1], "at": at, "sensor": serial}
        readings = self._read(item, now)
        self._xovis.commit(counts)  # only once the whole push was accepted
        return readings


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path such as "data.zones.0.count", or None."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.lstrip("-").isdigit() and -len(data) <= int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _axis_time(value: Any) -> Any:
    """YYYYMMDDhhmmss (camera local time) → ISO 8601 without offset, read in the site's zone."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 14 or not value.isdigit():
        raise PayloadError(400, "timestamp", f"should be YYYYMMDDhhmmss as Axis sends it, got {value!r}")
    return f"{value[0:4]}-{value[4:6]}-{value[6:8]}T{value[8:10]}:{value[10:12]}:{value[12:14]}"


# One line's interval counts: (serial, element id, interval end, forward, backward).
XovisCount = tuple[str, str, datetime, int, int]


def xovis_counts(data: Any) -> list[XovisCount]:
    """Every interval count of every LINE element in a Xovis line count push."""
    if not isinstance(data, dict):
        raise PayloadError(400, "", "a Xovis push is a JSON object")
    info = data.get("sensor-info")
    serial = info.get("serial-number") if isinstance(info, dict) else None
    content = data.get("content")
    elements = content.get("element") if isinstance(content, dict) else None
    if not isinstance(elements, list):
        raise PayloadError(400, "content.element", "is required: the list of counting lines")
    counts: list[XovisCount] = []
    for i, element in enumerate(elements):
        where = f"content.element[{i}]"
        if not isinstance(element, dict):
            raise PayloadError(400, where, "should be an object")
        if element.get("data-type", "LINE") != "LINE":
            continue
        element_id = str(element.get("element-id", element.get("element-name", i)))
        counts += [(str(serial or "xovis"), element_id, *_xovis_measurement(m, f"{where}.measurement[{j}]"))
                   for j, m in enumerate(_list(element.get("measurement"), f"{where}.measurement"))]
    return counts


def _xovis_measurement(measurement: Any, where: str) -> tuple[datetime, int, int]:
    if not isinstance(measurement, dict):
        raise PayloadError(400, where, "should be an object")
    to = measurement.get("to")
    try:
        end = datetime.fromisoformat(to) if isinstance(to, str) else None
    except ValueError:
        end = None
    if end is None or end.tzinfo is None:
        raise PayloadError(
            400, f"{where}.to", f"should be a time with offset such as 2024-05-02T10:15:00+02:00, got {to!r}")
    by_label = {"fw": 0, "bw": 0}
    for k, value in enumerate(_list(measurement.get("value"), f"{where}.value")):
        label, count = (value.get("label"), value.get("value")) if isinstance(value, dict) else (None, None)
        if label in by_label:
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise PayloadError(
                    400, f"{where}.value[{k}].value", f"should be a whole number of people, got {count!r}")
            by_label[label] += count
    return end, by_label["fw"], by_label["bw"]


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise PayloadError(400, where, "should be a list")
    return value


class XovisTotals:
    """Running in/out totals built from Xovis interval counts, per sensor and line."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], tuple[int, int]] = {}
        self.seen: dict[tuple[str, str], datetime] = {}

    def _fresh(self, counts: list[XovisCount]) -> list[XovisCount]:
        return [c for c in counts if (c[0], c[1]) not in self.seen or c[2] > self.seen[(c[0], c[1])]]

    def preview(self, counts: list[XovisCount]) -> tuple[str, tuple[int, int], str]:
        """The sensor, the totals over all its lines once `counts` are added, and the latest time."""
        totals = dict(self.totals)
        for serial, line, _, fw, bw in self._fresh(counts):
            old = totals.get((serial, line), (0, 0))
            totals[(serial, line)] = (old[0] + fw, old[1] + bw)
        serial = counts[0][0]
        mine = [v for (s, _), v in totals.items() if s == serial]
        latest = max(c[2] for c in counts)
        return serial, (sum(v[0] for v in mine), sum(v[1] for v in mine)), latest.isoformat()

    def commit(self, counts: list[XovisCount]) -> None:
        for serial, line, end, fw, bw in self._fresh(counts):
            old = self.totals.get((serial, line), (0, 0))
            self.totals[(serial, line)] = (old[0] + fw, old[1] + bw)
            self.seen[(serial, line)] = max(end, self.seen.get((serial, line), end))


KIND_OF: Mapping[type, str] = {SeatReading: "seats", QueueReading: "queue", GateReading: "gates",
                               StatusReading: "status"}


def refuse_unallowed(readings: list[Reading], allow: frozenset[str], feed: str) -> None:
    """PayloadError 403 for the first reading of a kind `feed` may not send (HTTP, MQTT, poll, file alike)."""
    for i, reading in enumerate(readings):
        kind = KIND_OF[type(reading)]
        if kind not in allow:
            where = f"readings[{i}].kind" if len(readings) > 1 else "kind"
            raise PayloadError(403, where, f"feed {feed} may not send {kind} readings; "
                               f"it may send: {', '.join(sorted(allow))}")


class Receiver:
    """One long-lived feed's way in: decode, check the kinds it may send, hand over, log refusals."""

    def __init__(self, feed: str, decoding: Decoding, allow: frozenset[str], config: Config,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.feed = feed
        self.allow = allow
        self.decoder = Decoder(decoding, config, feed)
        self.clock = clock or (lambda: datetime.now(UTC))

    def readings(self, data: Any) -> list[Reading]:
        """Readings from raw bytes or a parsed document; PayloadError if any is refused."""
        if isinstance(data, (bytes, bytearray)):
            data = parse_json(bytes(data))
        readings = self.decoder.decode(data, self.clock())
        refuse_unallowed(readings, self.allow, self.feed)
        return readings

    def receive(self, data: Any, intake: Callable[[list[Reading]], None], **where: Any) -> int:
        """Hand the readings in `data` to `intake`; a refused message is logged and skipped."""
        try:
            readings = self.readings(data)
        except PayloadError as err:
            log.warning("reading_rejected", feed=self.feed, reason=err.reason, field=err.field, **where)
            return 0
        except Exception as err:
            log.warning("reading_rejected", feed=self.feed, reason=f"unreadable ({type(err).__name__})", **where)
            return 0
        if readings:
            intake(readings)
        return len(readings)
