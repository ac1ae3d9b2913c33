"""The live view of seats and queues, for status.json, the banner, the page and `statusd show`.

A sensor silent past its limit shows no figures at all ("live data
unavailable"), never its last numbers: a dead counter must not read "0 people".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from statusd.config import wording
from statusd.config.load import Config
from statusd.config.rules import SiteRules
from statusd.sensors import hours
from statusd.sensors.queue import Step, round_wait
from statusd.sensors.series import QUEUE, ZONE, QueueSeries, Series


def site_view(
    config: Config, rules: SiteRules, series: Sequence[Series], now: datetime
) -> dict[str, Any]:
    """{"zones": {...}, "queues": {...}, "total": {...} or None} for one site."""
    zones = {s.id: zone_view(s, now) for s in series if s.family == ZONE}
    queues = {
        s.id: queue_view(s, now, config)
        for s in series
        if isinstance(s, QueueSeries) and s.family == QUEUE
    }
    fresh = [z for z in zones.values() if not z["stale"]]
    total: dict[str, Any] | None = None
    if fresh:
        occupied = sum(z["occupied"] for z in fresh)
        capacity = sum(z["capacity"] for z in fresh)
        percent = 100.0 * occupied / capacity
        total = {
            "occupied": occupied,
            "capacity": capacity,
            "free": capacity - occupied,
            "percent": round(percent),
            "band": rules.seats.bands.raw(percent),
        }
    return {"zones": zones, "queues": queues, "total": total}


def zone_view(series: Series, now: datetime) -> dict[str, Any]:
    """occupied, capacity, free, percent, band, stale, updated_at."""
    state = _freshness(series, now)
    figures = series.figures()
    if state["stale"] or state["band"] is None:
        figures = {key: None for key in figures} | {"capacity": figures["capacity"]}
    return figures | state


def queue_view(series: QueueSeries, now: datetime, config: Config) -> dict[str, Any]:
    """length, wait_minutes, estimate, band, stale, updated_at, and the wait worded per language."""
    state = _freshness(series, now)
    wait = None if state["stale"] else series.wait
    return state | {
        "length": None if state["stale"] else series.length,
        "wait_minutes": None if wait is None else round(wait),
        "estimate": series.estimate if wait is not None else False,
        "wording": None if wait is None else _worded(round_wait(wait), config),
    }


def _worded(step: Step, config: Config) -> dict[str, str]:
    """The wait as alerts/labels.yaml words it, in every configured language."""
    words = wording.load(config.alerts_dir)
    return {lang: words.wait(step.kind, step.minutes, lang, config.default_language) for lang in config.languages}


def stale_lines(config: Config, series: Sequence[Series], now: datetime) -> list[str]:
    """One line per silent sensor, with how long ago and when (site time) it last spoke."""
    lines = []
    for item in series:
        if item.updated_at is not None and not item.fresh(now):
            minutes = int((now - item.updated_at).total_seconds() // 60)
            seen = hours.local(config.sites[item.site], item.updated_at)
            lines.append(
                f"{item.site}/{item.id} ({item.family}): live data unavailable, "
                f"last reading {minutes} min ago at {seen:%H:%M}"
            )
    return lines


def _freshness(series: Series, now: datetime) -> dict[str, Any]:
    stale = not series.fresh(now)
    return {
        "band": None if stale else series.band,
        "stale": stale,
        "updated_at": series.updated_at.isoformat() if series.updated_at else None,
    }
