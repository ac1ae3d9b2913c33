"""Prometheus metrics: one registry for the daemon, served at /metrics."""

from __future__ import annotations

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


def render() -> bytes:
    """The text exposition format."""
    return generate_latest(REGISTRY)
