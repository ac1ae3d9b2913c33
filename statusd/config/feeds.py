"""The `feeds:` section of statusd.yaml: its frozen values, and the kinds of reading a feed may send.

`statusd.config.feed_section` parses the section into these. No section
means no feeds. `allow` defaults to seats, queue and gates: a feed may only
close a site (`status`) when it is allowed to in so many words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from statusd.config.types import Secret

# The kinds of reading a feed may send, and the fields each has: the one list, for the
# config's checks, the payload parser, HTTP ingest and every long-lived feed.
KINDS = ("seats", "queue", "gates", "status")
_READING_COMMON = ("kind", "site", "at", "sensor")
FIELDS: Mapping[str, tuple[str, ...]] = {
    "seats": (*_READING_COMMON, "zone", "occupied", "capacity", "percent"),
    "queue": (*_READING_COMMON, "queue", "length", "wait_minutes", "throughput_per_hour"),
    "gates": (*_READING_COMMON, "zone", "in", "out"),
    "status": (*_READING_COMMON, "zone", "level", "reason"),
}
FEED_TYPES = ("http", "mqtt", "poll", "file")
DECODINGS = ("statusd", "axis-live-sum", "xovis-line-count", "mapping")
VENDOR_FORMATS = ("axis-live-sum", "xovis-line-count")
FILE_FORMATS = ("csv", "jsonl")
DEFAULT_ALLOW = frozenset({"seats", "queue", "gates"})
# A people counter pushes every few seconds at most; a token sending far more is broken or stolen.
DEFAULT_MAX_RATE = 50
@dataclass(frozen=True)
class Decoding:
    """How a feed's JSON becomes readings: our own shape, a vendor's, or a field mapping.

    `site`, `zone` and `queue` say where a vendor's or a mapped reading belongs;
    for our own shape they fill in what a message leaves out.
    """

    format: str = "statusd"
    site: str | None = None
    zone: str | None = None
    queue: str | None = None
    kind: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpFeedConfig:
    """Readings pushed to POST /api/v1/readings with this feed's bearer token."""

    name: str
    allow: frozenset[str]
    decoding: Decoding
    token: Secret
    # Requests per second this token may make (bursts of twice that); 0 = no limit.
    max_rate: int = DEFAULT_MAX_RATE


@dataclass(frozen=True)
class MqttFeedConfig:
    """Readings published on a broker's topics."""

    name: str
    allow: frozenset[str]
    decoding: Decoding
    host: str
    port: int
    topics: tuple[str, ...]
    username: str | None
    password: Secret | None
    client_id: str | None
    qos: int
    keepalive: float


@dataclass(frozen=True)
class PollFeedConfig:
    """A JSON document fetched every `every` seconds (a counter vendor's API)."""

    name: str
    allow: frozenset[str]
    decoding: Decoding
    url: str
    every: float
    timeout: float
    auth: str
    username: str | None
    password: Secret | None
    token: Secret | None


@dataclass(frozen=True)
class FileFeedConfig:
    """A CSV or JSONL file that a counter appends to, followed across rotation."""

    name: str
    allow: frozenset[str]
    decoding: Decoding
    path: Path
    format: str
    every: float


FeedConfig = HttpFeedConfig | MqttFeedConfig | PollFeedConfig | FileFeedConfig


@dataclass(frozen=True)
class FeedsConfig:
    """Every configured feed by name."""

    feeds: Mapping[str, FeedConfig] = field(default_factory=dict)

    def http(self) -> dict[str, HttpFeedConfig]:
        return {n: f for n, f in self.feeds.items() if isinstance(f, HttpFeedConfig)}
