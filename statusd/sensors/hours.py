"""Opening hours, read in the site's own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

from statusd.config.types import Site


def local(site: Site, now: datetime) -> datetime:
    """`now` on the site's clock (a naive time is taken as UTC)."""
    aware = now if now.tzinfo else now.replace(tzinfo=UTC)
    return aware.astimezone(site.tz)


def local_day(site: Site, now: datetime) -> date:
    return local(site, now).date()


def is_open(site: Site, now: datetime) -> bool:
    """Whether `now` is within the site's regular hours; a site without hours is always open."""
    return period_start(site, now) is not None


def period_start(site: Site, now: datetime) -> datetime | None:
    """When the opening period that contains `now` began (local time), or None when shut.

    A site without hours is taken as open since the start of the local day.
    """
    here = local(site, now)
    if not site.hours:
        return here.replace(hour=0, minute=0, second=0, microsecond=0)
    for opens, closes in site.hours.get(here.weekday(), ()):
        if opens <= here.time() < closes:
            return here.replace(hour=opens.hour, minute=opens.minute, second=0, microsecond=0)
    return None
