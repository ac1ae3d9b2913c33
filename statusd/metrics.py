"""Prometheus metrics: one registry for the daemon, served on the operator's listener at /metrics.

Label values come from the config only (channel and feed names, checked
identifiers): a sensor id a feed invents, or a name holding a character the
exposition format cannot carry, is counted under `other`, so the number of
series stays bounded and /metrics always renders.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()

DELIVERIES = Counter(
    "statusd_deliveries", "Deliveries finished, by channel and outcome (sent, failed, retry).",
    ["channel", "outcome"], registry=REGISTRY,
)
LATENCY = Histogram(
    "statusd_delivery_latency_seconds", "From an update being recorded to its post being sent.",
    ["channel"], buckets=(0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300, 1800), registry=REGISTRY,
)
RETRY_QUEUE = Gauge(
    "statusd_retry_queue", "Deliveries waiting for another attempt, by channel.", ["channel"], registry=REGISTRY,
)
PAUSES = Counter(
    "statusd_rate_limit_pauses", "Times a platform's rate limit paused a channel.", ["channel"], registry=REGISTRY,
)
SSE_SUBSCRIBERS = Gauge("statusd_sse_subscribers", "Live-banner clients connected.", registry=REGISTRY)
READINGS = Counter(
    "statusd_readings", "Sensor readings, by feed and result (ingested, rejected).",
    ["feed", "result"], registry=REGISTRY,
)
SENSORS_STALE = Gauge("statusd_sensors_stale", "Sensors silent for longer than expected.", registry=REGISTRY)
STATUS_FILE_ERRORS = Counter(
    "statusd_status_file_errors", "Times status.yaml was broken and the last good status was kept.",
    registry=REGISTRY,
)


OTHER = "other"
_known_feeds: frozenset[str] = frozenset()


def know_feeds(feeds: Iterable[str]) -> None:
    """The configured feed names: the only values of the `feed` label."""
    global _known_feeds
    _known_feeds = frozenset(feeds)


def feed_label(source: str) -> str:
    """A reading's source is `feed` or `feed/sensor`: the feed's name, if configured."""
    feed = source.split("/", 1)[0]
    return feed if feed in _known_feeds else OTHER


def render() -> bytes:
    """The text exposition format."""
    return generate_latest(REGISTRY)
