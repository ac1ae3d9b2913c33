"""A building system's status announced before a stop but not yet in status.yaml: kept, not undone.

The daemon announces a pushed status (a fire panel's closure) first and writes it to
status.yaml just after. A stop between the two leaves the file saying what it said before,
and a start that read the file as it is would announce that again: the closure undone by a
crash. So at a start, a pushed status the store recorded after the file last changed, and
that the file does not hold, is taken as still in force and written to the file then. A
file changed since (a `set`, an undo, a hand edit) has the last word.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from statusd.config.load import Config
from statusd.model import StatusEntry, Target, Wanted

__all__ = ["adopt"]

log = structlog.get_logger()

Pending = dict[Target, tuple[StatusEntry, bool, StatusEntry | None]]


def adopt(pending: Pending, pushed: Mapping[Target, tuple[StatusEntry, float]], from_file: Wanted | None,
          seen: tuple[int, int, int] | None, config: Config) -> bool:
    """Add to `pending` the pushed entries the file never got; True if there were any.

    `pushed` maps a target to its last announced pushed entry and when it was recorded
    (seconds since the epoch); `seen` is the file's bounds.signature as read.
    Nothing without a usable file (the store's last good state is used whole then).
    """
    if seen is None or from_file is None:
        return False
    changed_ns = seen[2]
    found = False
    for target, (entry, recorded) in pushed.items():
        held = from_file.get(target)
        if recorded * 1e9 <= changed_ns or target in pending or _same(held, entry):
            continue
        if not _configured(target, config):
            # A site or service taken out of statusd.yaml since: the file cannot hold it, and
            # keeping it would mean a failed write, and an error logged, every few seconds.
            log.info("status_push_dropped", target=str(target), reason="no longer in statusd.yaml")
            continue
        pending[target] = (entry, False, held)
        found = True
        log.warning("status_push_restored", target=str(target), by=entry.by, level=entry.level.value,
                    note="announced before the stop but not yet in status.yaml; kept and written now")
    return found


def _configured(target: Target, config: Config) -> bool:
    site = config.sites.get(target.site)
    return site is not None and (target.service is None or target.service in site.services)


def _same(held: StatusEntry | None, entry: StatusEntry) -> bool:
    held = held or StatusEntry()
    return (held.level, dict(held.message), held.starts, held.until) == (
        entry.level, dict(entry.message), entry.starts, entry.until)
