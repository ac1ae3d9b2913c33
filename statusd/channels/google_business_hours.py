"""Special hours for the Google Business Profile channel: what a closure makes of a location's days.

Google takes special hours as a list of periods, each shorter than 24 hours and on one
date (a period may run past midnight, to before noon the next day): a closure of several
days is one `closed: true` period per day, and a day it only partly covers keeps the
location's regular hours outside the closure (a closure from 14:00 leaves "09:00–14:00").

Everything here is pure: the channel reads the location, asks `plan` what to write, and
keeps the `Change` (what it added and took off) in the post's remote id, so that undo can
put back exactly what was there, holiday hours included.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

DAY = 24 * 60
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
# Regular hours: weekday (0 = Monday) → open intervals in minutes from midnight.
Regular = Mapping[int, Sequence[tuple[int, int]]]


@dataclass(frozen=True, order=True)
class Period:
    """One special-hours period: a whole day closed, or open from `opens` to `closes` (minutes;
    `closes` past 1440 runs into the next day)."""

    day: date
    closed: bool = False
    opens: int = 0
    closes: int = 0

    def text(self) -> str:
        """"2026-12-24 closed", "2026-12-24 10:00-14:00": as kept in remote ids and shown in history."""
        if self.closed:
            return f"{self.day.isoformat()} closed"
        return f"{self.day.isoformat()} {_hhmm(self.opens)}-{_hhmm(self.closes)}"

    @classmethod
    def parse(cls, text: str) -> Period:
        day, _, hours = text.partition(" ")
        if hours == "closed":
            return cls(date.fromisoformat(day), closed=True)
        opens, _, closes = hours.partition("-")
        return cls(date.fromisoformat(day), opens=_minutes(opens), closes=_minutes(closes))

    def to_google(self) -> dict[str, Any]:
        start = _google_date(self.day)
        if self.closed:
            return {"startDate": start, "endDate": start, "closed": True}
        end = self.day + timedelta(days=1) if self.closes > DAY else self.day
        return {"startDate": start, "endDate": _google_date(end), "openTime": _google_time(self.opens),
                "closeTime": _google_time(self.closes - DAY if self.closes > DAY else self.closes), "closed": False}


def from_google(data: Mapping[str, Any]) -> Period:
    """A period as Google answers it (ValueError if it is not one)."""
    day = _from_google_date(data.get("startDate"))
    if data.get("closed") is True:
        return Period(day, closed=True)
    opens, closes = _from_google_time(data.get("openTime")), _from_google_time(data.get("closeTime"))
    end = _from_google_date(data["endDate"]) if data.get("endDate") else day
    return Period(day, opens=opens, closes=closes + DAY * (end - day).days)


def regular_from_google(hours: Mapping[str, Any] | None) -> Regular | None:
    """The location's regular hours per weekday; None when Google holds none."""
    periods = (hours or {}).get("periods")
    if not isinstance(periods, list) or not periods:
        return None
    week: dict[int, list[tuple[int, int]]] = {}
    for item in periods:
        if not isinstance(item, dict) or item.get("openDay") not in WEEKDAYS:
            continue
        opens, closes = _from_google_time(item.get("openTime")), _from_google_time(item.get("closeTime"))
        if item.get("closeDay", item["openDay"]) != item["openDay"] or closes <= opens:
            closes = DAY  # runs past midnight: the closure is judged within its opening day
        week.setdefault(WEEKDAYS.index(item["openDay"]), []).append((opens, closes))
    return {day: sorted(parts) for day, parts in week.items()}


def closure(starts: datetime, until: datetime | None, today: date, regular: Regular | None,
            open_ended_days: int) -> list[Period]:
    """The periods a closure from `starts` to `until` (local times) means, from `today` on.

    An open-ended closure covers `open_ended_days` days from its start; a reopening
    takes back what is left. A day the closure does not touch needs no period.
    """
    first = max(starts.date(), today)
    if until is None:
        last = max(starts.date(), today) + timedelta(days=open_ended_days - 1)
    else:
        last = until.date() - timedelta(days=1) if until.time() == until.time().min else until.date()
    periods: list[Period] = []
    day = first
    while day <= last:
        shut_from = _of(starts) if day == starts.date() else 0
        shut_to = _of(until) if until is not None and day == until.date() else DAY
        periods.extend(_day(day, shut_from, shut_to, regular))
        day += timedelta(days=1)
    return periods


def _day(day: date, shut_from: int, shut_to: int, regular: Regular | None) -> list[Period]:
    if regular is None:  # no regular hours to keep: only whole days can be said
        return [Period(day, closed=True)] if (shut_from, shut_to) == (0, DAY) else []
    opening = regular.get(day.weekday(), ())
    left = [(o, c) for part in opening for o, c in _minus(part, shut_from, shut_to)]
    if list(opening) == left:
        return []  # the closure falls outside the day's opening hours
    if not left:
        return [Period(day, closed=True)]
    return [Period(day, opens=o, closes=c) for o, c in left]


def _minus(part: tuple[int, int], start: int, end: int) -> list[tuple[int, int]]:
    opens, closes = part
    pieces = [(opens, min(closes, start)), (max(opens, end), closes)]
    return [(o, c) for o, c in pieces if c > o]


@dataclass(frozen=True)
class Change:
    """What one update did to the special hours, and what the incident holds after it.

    `added`/`removed` are this update's own doing (undo reverses them); `held` are the
    periods statusd wrote for the incident and still in force; `displaced` those of the
    library's own (holiday hours) that a closure took off, put back when it ends.
    """

    added: tuple[Period, ...] = ()
    removed: tuple[Period, ...] = ()
    held: tuple[Period, ...] = ()
    displaced: tuple[Period, ...] = ()
    post: str | None = None

    def remote_id(self) -> str:
        data: dict[str, Any] = {key: [p.text() for p in getattr(self, key)]
                                for key in ("added", "removed", "held", "displaced") if getattr(self, key)}
        if self.post:
            data["post"] = self.post
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    @classmethod
    def parse(cls, remote_id: str) -> Change:
        """The change a remote id made by `remote_id` holds (ValueError if it is not one)."""
        data = json.loads(remote_id)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        lists = {key: tuple(Period.parse(str(t)) for t in data.get(key, []))
                 for key in ("added", "removed", "held", "displaced")}
        post = data.get("post")
        return cls(**lists, post=str(post) if post else None)


def plan(present: Sequence[Period], wanted: Sequence[Period], before: Change | None, today: date,
         *, equal_is_ours: bool) -> tuple[list[Period], Change]:
    """The special hours to write, and the change that makes them, for `wanted` (empty: open).

    Only days from `today` on are touched. A day the incident held and no longer wants
    gets back what the closure displaced from it; a wanted day replaces whatever is there,
    keeping the library's own periods as displaced. `equal_is_ours`: a wanted period found
    already written counts as statusd's (a planned closure's days, written when announced).
    """
    held = {p for p in (before.held if before else ()) if p.day >= today or p in wanted}
    old_held = set(before.held) if before else set()
    displaced = set(before.displaced) if before else set()
    by_day = _by_day(wanted)
    removed: set[Period] = set()
    added: set[Period] = set()
    for day in {p.day for p in old_held if p.day >= today} - set(by_day):
        ours = {p for p in present if p.day == day and p in old_held}
        removed |= ours
        back = {p for p in displaced if p.day == day}
        displaced -= back
        if not {p for p in present if p.day == day} - ours:  # else the library changed the day since: its call
            added |= back
    for day, periods in by_day.items():
        there = {p for p in present if p.day == day}
        if there == periods:
            if equal_is_ours:
                held |= periods
            continue
        removed |= there
        displaced |= {p for p in there if p not in old_held}
        added |= periods
    held = (held - removed) | {p for p in added if p.day in by_day}
    result = sorted((set(present) - removed) | added)
    change = Change(tuple(sorted(added - set(present))), tuple(sorted(removed - added)),
                    tuple(sorted(held)), tuple(sorted(displaced)))
    return result, change


def recovered(present: Sequence[Period], wanted: Sequence[Period], before: Change | None, left: Change,
              today: date) -> Change:
    """The change a lost attempt made, as well as the hours now show it (`left`: `plan`'s answer,
    with nothing left to do): the wanted periods taken as its own, the incident's days gone
    since as its removals. What it displaced cannot be known: undo then leaves those days
    to the regular hours."""
    old = set(before.held) if before else set()
    added = tuple(sorted(p for p in wanted if p not in old))
    removed = tuple(sorted(p for p in old if p.day >= today and p not in present and p not in wanted))
    return Change(added, removed, left.held, left.displaced)


def undo(present: Sequence[Period], change: Change) -> list[Period]:
    """The special hours with `change` reversed: its periods taken off, what it took off put back
    (on days nothing else has taken since)."""
    kept = [p for p in present if p not in change.added]
    taken = {p.day for p in kept}
    back = [p for p in change.removed if p.day not in taken]
    return sorted([*kept, *back])


def _by_day(periods: Iterable[Period]) -> dict[date, set[Period]]:
    days: dict[date, set[Period]] = {}
    for period in periods:
        days.setdefault(period.day, set()).add(period)
    return days


def _of(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    return int(hours) * 60 + int(minutes)


def _google_date(day: date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}


def _google_time(minutes: int) -> dict[str, int]:
    return {"hours": minutes // 60, "minutes": minutes % 60}


def _from_google_date(value: Any) -> date:
    if not isinstance(value, dict):
        raise ValueError("a period without a startDate")
    return date(int(value["year"]), int(value["month"]), int(value["day"]))


def _from_google_time(value: Any) -> int:
    """TimeOfDay: {} is midnight, hours 24 the end of the day."""
    value = value if isinstance(value, dict) else {}
    return int(value.get("hours", 0)) * 60 + int(value.get("minutes", 0))
