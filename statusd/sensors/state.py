"""The live picture of every sensor, and the automatic events it deserves.

Posts are calm by construction: a post only when a band changes (with
hysteresis, on smoothed values), at most one per site and kind within
`min_interval` (a later change waits and is said then), never from stale
data, and never while the site is closed by staff or outside its hours.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

import structlog

from statusd.config.load import Config
from statusd.config.rules import RulesConfig
from statusd.config.types import Site
from statusd.events import Event, EventKind
from statusd.model import Level, Target
from statusd.sensors import hours, view
from statusd.sensors.series import QUEUE, ZONE, QueueSeries, Series, ZoneSeries, outage, summary
from statusd.sources.readings import GateReading, QueueReading, Reading, SeatReading

log = structlog.get_logger()

Closed = Callable[[str], bool]
AUTHOR = "sensors"
REASON = "sensor"
_CHANGED = {ZONE: EventKind.SEATS_CHANGED, QUEUE: EventKind.QUEUE_CHANGED}
_FAMILIES = {EventKind.SEATS_CHANGED: ZONE, EventKind.QUEUE_CHANGED: QUEUE}


class Sensors:
    """Readings in, events out; `view` for the banner and `stale` for `statusd show`."""

    def __init__(self, config: Config, rules: RulesConfig) -> None:
        self._config = config
        self._rules = rules
        self._series: dict[tuple[str, str, str], Series] = {}
        self._open: dict[str, bool] = {}
        self._opened_at: dict[str, datetime] = {}
        self._last_post: dict[tuple[str, ...], datetime] = {}
        self._counts: defaultdict[str, int] = defaultdict(int)

    def ingest(self, readings: Sequence[Reading], now: datetime, closed: Closed) -> list[Event]:
        """Take readings (any order); return the events they call for at `now`."""
        events: list[Event] = []
        touched: dict[str, None] = {}
        for reading in sorted(readings, key=lambda r: r.at):
            series = self._take(reading)
            if series is None:
                continue
            touched[series.site] = None
            if series.lost:
                events.append(self._restored(series))
        for site_id in touched:
            events += self._decide(site_id, now, closed)
        return events

    def tick(self, now: datetime, closed: Closed) -> list[Event]:
        """Notice silent sensors and say changes held back by the minimum interval."""
        events: list[Event] = []
        for site_id in dict.fromkeys(s.site for s in self._series.values()):
            events += self._decide(site_id, now, closed)
        return events

    def view(self, now: datetime) -> dict[str, dict[str, Any]]:
        """Live seats and queues of every site, for status.json, the banner and the page."""
        return {
            site_id: view.site_view(
                self._config, self._rules.site(site_id), self._ordered(site_id), now
            )
            for site_id in self._config.sites
        }

    def stale(self, now: datetime) -> list[str]:
        """One line per silent sensor, for `statusd show`."""
        return view.stale_lines(self._config, self._ordered(None), now)

    def remember(self, events: Iterable[Event], now: datetime) -> None:
        """Take back what was said today (from the store after a restart), so nothing is said twice."""
        for event in sorted(events, key=lambda e: e.at):
            family = _FAMILIES.get(event.kind)
            site = self._config.sites.get(event.target.site)
            if (
                family is None
                or site is None
                or hours.local_day(site, event.at) != hours.local_day(site, now)
            ):
                continue
            key = self._post_key(site.id, family, event.extra.get(family))
            self._last_post[key] = max(self._last_post.get(key, event.at), event.at)
            base, _, count = event.revision.rpartition("|")
            if count.isdigit():
                self._counts[f"{site.id}|{base}"] = max(
                    self._counts[f"{site.id}|{base}"], int(count) + 1
                )
            for item, band in (event.extra.get("told") or {}).items():
                self._get(site.id, family, str(item)).announced = band

    # ── readings ──────────────────────────────────────────────────────────

    def _take(self, reading: Reading) -> Series | None:
        """Update the series `reading` belongs to; None if it changed nothing."""
        if reading.site not in self._config.sites:
            log.warning("reading_unknown_site", site=reading.site, source=reading.source)
            return None
        if isinstance(reading, SeatReading):
            zone = self._get(reading.site, ZONE, reading.zone)
            assert isinstance(zone, ZoneSeries)
            return zone if zone.update(reading) else None
        if isinstance(reading, QueueReading):
            queue = self._get(reading.site, QUEUE, reading.queue)
            assert isinstance(queue, QueueSeries)
            return queue if queue.update(reading) else None
        if isinstance(reading, GateReading):
            self._gate(reading)
        return None  # status readings are staff-like changes, handled by the daemon

    def _gate(self, reading: GateReading) -> None:
        rules = self._rules.site(reading.site)
        for queue_id in self._site(reading.site).queues:
            if (rules.queue_watch(queue_id).gate or queue_id) == reading.zone:
                queue = self._get(reading.site, QUEUE, queue_id)
                assert isinstance(queue, QueueSeries)
                queue.rate.gate(reading.at, reading.total_in)

    def _get(self, site_id: str, family: str, item: str) -> Series:
        key = (site_id, family, item)
        if key not in self._series:
            rules = self._rules.site(site_id)
            if family == ZONE:
                zone = self._site(site_id).zones.get(item)
                self._series[key] = ZoneSeries(
                    site_id, item, rules.zone(item), rules.smoothing, zone.capacity if zone else 1
                )
            else:
                self._series[key] = QueueSeries(
                    site_id, item, rules.queue_watch(item), rules.smoothing, rules.rate_window
                )
        return self._series[key]

    # ── decisions ─────────────────────────────────────────────────────────

    def _decide(self, site_id: str, now: datetime, closed: Closed) -> list[Event]:
        if not self._is_open(site_id, now, closed):
            return []
        events = self._lost(site_id, now)
        for family in (ZONE, QUEUE):
            events += self._changes(site_id, family, now)
        return events

    def _is_open(self, site_id: str, now: datetime, closed: Closed) -> bool:
        """Whether automatic posts may be made; a closing makes the next opening start calm."""
        is_open = not closed(site_id) and hours.is_open(self._site(site_id), now)
        if is_open and not self._open.get(site_id, False):
            self._opened_at[site_id] = now
        if not is_open and self._open.get(site_id, True):
            for series in self._ordered(site_id):
                series.announced = None
            log.info("sensor_posts_paused", site=site_id, staff_closed=closed(site_id))
        self._open[site_id] = is_open
        return is_open

    def _changes(self, site_id: str, family: str, now: datetime) -> list[Event]:
        rules = self._rules.site(site_id)
        listed = [
            s for s in self._ordered(site_id, family) if s.band and s.fresh(now) and not s.lost
        ]
        changed = [s for s in listed if s.band and s.watch.worth_saying(s.told(), s.band)]
        groups = [changed] if rules.aggregate else [[s] for s in changed]
        events = []
        for group in groups:
            key = self._post_key(site_id, family, None if rules.aggregate else group[0].id)
            last = self._last_post.get(key)
            if not group or (
                last is not None and (now - last).total_seconds() < rules.min_interval
            ):
                continue
            events.append(
                self._changed_event(
                    site_id, family, group, listed if rules.aggregate else group, now
                )
            )
            self._last_post[key] = now
            for series in group:
                series.announced = series.band
        return events

    def _post_key(self, site_id: str, family: str, item: Any) -> tuple[str, ...]:
        return (
            (site_id, family)
            if self._rules.site(site_id).aggregate
            else (site_id, family, str(item))
        )

    def _changed_event(
        self, site_id: str, family: str, group: list[Series], listed: list[Series], now: datetime
    ) -> Event:
        first = group[0]
        combo = ",".join(f"{s.id}={s.band}" for s in group)
        day = hours.local_day(self._site(site_id), now)
        self._forget_other_days(site_id, day)
        base = f"{day}|{family}|{combo}"
        count = self._counts[f"{site_id}|{base}"]
        self._counts[f"{site_id}|{base}"] += 1
        extra = {
            family: first.id,
            "band": first.band,
            "previous_band": first.told(),
            **first.figures(),
            "changed": [s.id for s in group],
            "told": {s.id: s.band for s in group},
            f"{family}s": [summary(s, s in group) for s in listed],
        }
        log.info("sensor_band_changed", site=site_id, family=family, changes=combo)
        return self._event(_CHANGED[family], site_id, now, f"{base}|{count}", extra)

    def _forget_other_days(self, site_id: str, day: date) -> None:
        """Counts serve today's revisions only (the day is part of each): earlier days' go."""
        today = f"{site_id}|{day}|"
        for key in [k for k in self._counts if k.startswith(f"{site_id}|") and not k.startswith(today)]:
            del self._counts[key]

    def _lost(self, site_id: str, now: datetime) -> list[Event]:
        """SENSOR_LOST for sensors silent past their limit (counted from opening at the earliest)."""
        events = []
        opened = self._opened_at.get(site_id, now)
        for series in self._ordered(site_id):
            if series.lost or series.updated_at is None:
                continue
            silent = (now - max(series.updated_at, opened)).total_seconds()
            if silent > series.watch.stale_after:
                series.lost = True
                log.warning(
                    "sensor_lost",
                    site=site_id,
                    family=series.family,
                    item=series.id,
                    last_seen=series.updated_at.isoformat(),
                )
                events.append(
                    self._event(
                        EventKind.SENSOR_LOST,
                        site_id,
                        now,
                        f"lost|{series.family}|{series.id}|{series.updated_at.isoformat()}",
                        outage(series),
                    )
                )
        return events

    def _restored(self, series: Series) -> Event:
        series.lost = False
        assert series.updated_at is not None
        log.info("sensor_restored", site=series.site, family=series.family, item=series.id)
        extra = outage(series)
        return self._event(
            EventKind.SENSOR_RESTORED,
            series.site,
            series.updated_at,
            f"restored|{series.family}|{series.id}|{series.updated_at.isoformat()}",
            extra,
        )

    def _event(
        self, kind: EventKind, site_id: str, now: datetime, revision: str, extra: dict[str, Any]
    ) -> Event:
        return Event(kind=kind, target=Target(site_id), level=Level.OPEN, previous=Level.OPEN, message={},
                     at=now, author=AUTHOR, revision=revision, reason=REASON, extra=extra)

    def _ordered(self, site_id: str | None, family: str | None = None) -> list[Series]:
        """Series in the order of the config (zones and queues as listed), then the unknown."""
        found = [
            s
            for s in self._series.values()
            if (site_id is None or s.site == site_id) and (family is None or s.family == family)
        ]

        def order(series: Series) -> tuple[int, int]:
            site = self._site(series.site)
            items = list(site.zones if series.family == ZONE else site.queues)
            return (
                list(self._config.sites).index(series.site),
                items.index(series.id) if series.id in items else len(items),
            )

        return sorted(found, key=order)

    def _site(self, site_id: str) -> Site:
        return self._config.sites[site_id]
