"""Local times as staff write them: refused when the clocks skip them, the first when they repeat."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from statusd.logs import LazyLogger
from statusd.sources.status.text import describe, snippet

if TYPE_CHECKING:
    from statusd.model import Wanted

log = LazyLogger()  # `statusd set` imports this module and must not pay for structlog (issue 15)

LOCAL_FORM = "YYYY-MM-DD HH:MM"
# A window that keeps time arithmetic (reminders, UTC conversion) from overflowing.
FIRST_YEAR, LAST_YEAR = 1970, 2999


def to_local(value: Any, tz: ZoneInfo) -> datetime:
    """An aware datetime in `tz` from a text, a datetime or a date (naive = local time).

    Raises ValueError saying what form is expected.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        moment = _from_text(value.strip())
    else:
        raise ValueError(f'should be a time such as "{LOCAL_FORM}", got {describe(value)}')
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(
            f"year {moment.year} is out of range; use a year between {FIRST_YEAR} and {LAST_YEAR}"
        )
    # Rebuild as a plain datetime: YAML hands out its own datetime subclass.
    plain = datetime(moment.year, moment.month, moment.day, moment.hour, moment.minute,
                     moment.second, moment.microsecond, moment.tzinfo, fold=moment.fold)
    if plain.tzinfo is not None:
        return plain.astimezone(tz)
    local = plain.replace(tzinfo=tz)
    if _wall(local) != plain.replace(fold=0):
        before, after = _around_gap(plain, tz)
        raise ValueError(
            f"{show(plain)} does not exist in {tz.key} (the clocks skip it); "
            f'the nearest valid times are "{show(before)}" and "{show(after)}"'
        )
    return local


def ambiguous(moment: datetime) -> bool:
    """Whether the local time `moment` happens twice (the clocks go back over it)."""
    return moment.replace(fold=0).utcoffset() != moment.replace(fold=1).utcoffset()


def say_ambiguous(wanted: Wanted) -> None:
    """A local time that happens twice is taken as the first; say so where the sysadmin looks."""
    for target, entry in wanted.items():
        for key, moment in (("from", entry.starts), ("until", entry.until)):
            if moment is not None and ambiguous(moment):
                log.warning("status_time_ambiguous", target=str(target), field=key, taken=moment.isoformat(),
                            note="this local time happens twice; write it with its offset for the other one")


def _wall(local: datetime) -> datetime:
    """The wall-clock time a local time really shows, after a round trip through UTC."""
    assert local.tzinfo is not None
    return local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None, fold=0)


def _around_gap(plain: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The last valid minute before a DST gap and the first after it."""
    base = plain.replace(second=0, microsecond=0, fold=0)
    def exists(moment: datetime) -> bool:
        return _wall(moment.replace(tzinfo=tz)) == moment

    step = timedelta(minutes=1)
    before, after = base - step, base + step
    for _ in range(24 * 60):  # a gap is at most a few hours long
        if exists(before):
            break
        before -= step
    for _ in range(24 * 60):
        if exists(after):
            break
        after += step
    return before, after


def show(moment: datetime) -> str:
    """A time as staff write it: "YYYY-MM-DD HH:MM", seconds only when there are some."""
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")


def _from_text(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise ValueError(
            f'should be a time such as "{LOCAL_FORM}" (the site\'s local time) '
            f"or ISO 8601 with an offset, got {snippet(text)}"
        ) from None
