"""Where readings arrive: gate totals become occupancy, building systems set statuses,
and the sensor rules decide what is worth a patron post."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog

from statusd import metrics
from statusd.config.load import Config
from statusd.events import Event
from statusd.model import FEED_AUTHOR, Level, StatusEntry, Target, Wanted
from statusd.rules import effective
from statusd.sensors.gates import GateCounter
from statusd.sensors.state import Sensors
from statusd.sources.readings import GateReading, Reading, StatusReading
from statusd.sources.status.text import MAX_MESSAGE, problem

log = structlog.get_logger()



class Intake:
    """Takes batches of readings from every feed and returns the events they lead to."""

    def __init__(self, config: Config, sensors: Sensors, wanted: Callable[[], Wanted | None],
                 submit: Callable[[Target, StatusEntry], None], *,
                 clock: Callable[[], datetime] | None = None) -> None:
        """`submit` puts a pushed status in force (the daemon writes status.yaml after; replay keeps it
        in memory); `clock` is the wall clock unless given (replay's day)."""
        self.config = config
        self.sensors = sensors
        self.gates = GateCounter()
        self._wanted = wanted
        # Puts a status in force at once; the file is written after, off the loop.
        self._submit = submit
        self._clock = clock or (lambda: datetime.now(UTC))

    def closed(self, site: str) -> bool:
        """Whether staff (or a building system) have the site closed: no automatic posts then."""
        entry = (self._wanted() or {}).get(Target(site))
        now = self._clock()
        return entry is not None and effective(entry, now).level in (Level.CLOSED, Level.EMERGENCY)

    def accept(self, readings: Sequence[Reading], now: datetime) -> list[Event]:
        measured: list[Reading] = []
        for reading in readings:
            metrics.READINGS.labels(metrics.feed_label(reading.source), "ingested").inc()
            if isinstance(reading, StatusReading):
                self._set_status(reading)
                continue
            if isinstance(reading, GateReading):
                # The rules want the raw totals too: admissions per hour feed the queue estimate.
                measured.append(self.gates.update(reading, self.config.sites[reading.site]))
            measured.append(reading)
        return self.sensors.ingest(measured, now, self.closed) if measured else []

    def _set_status(self, reading: StatusReading) -> None:
        """A fire panel or access system sets a status; staff keep the last word on reopening."""
        target = Target(reading.site)
        current = (self._wanted() or {}).get(target, StatusEntry())
        author = FEED_AUTHOR + reading.source
        if reading.level is Level.OPEN and current.level is not Level.OPEN and current.by != author:
            log.info("feed_status_ignored", site=reading.site, source=reading.source,
                     reason="staff set this status; only they reopen it")
            return
        entry = StatusEntry(level=_site_level(reading), message=self._message(reading), by=author, at=reading.at)
        self._submit(target, entry)

    def _reason(self, reading: StatusReading) -> str | None:
        """The building system's reason, if it can be published; the status counts either way."""
        if not reading.reason:
            return None
        refused = problem(reading.reason)
        if refused:
            # A fire alarm must not wait for its wording: the level goes out without the reason.
            log.error("feed_reason_refused", site=reading.site, source=reading.source,
                      reason=f"the reason {refused}", kept="the status, without the reason")
            return None
        return reading.reason

    def _message(self, reading: StatusReading) -> dict[str, str]:
        reason = self._reason(reading)
        if reason is None:
            return {}
        if reading.zone is None:
            return {self.config.default_language: reason}
        zone = self.config.sites[reading.site].zones[reading.zone]
        return {lang: f"{name}: {reason}"[:MAX_MESSAGE] for lang, name in zone.name.items()}


def _site_level(reading: StatusReading) -> Level:
    """A zone closed makes the site limited; an emergency anywhere is the site's emergency."""
    if reading.zone is not None and reading.level is Level.CLOSED:
        return Level.LIMITED
    return reading.level
