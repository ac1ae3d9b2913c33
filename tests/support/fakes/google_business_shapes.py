"""What the fake Google Business Profile checks and answers: Google's error shape, special-hours
validation, and proto3 JSON as Google writes it (zero fields left out: 09:00 is {"hours": 9},
midnight is {}).

Special-hour periods are checked as the Business Information API documents them: a real
calendar date, times 00:00–24:00, `closeTime` required unless `closed`, the period shorter
than 24 hours and ending at most before noon the next day, and no two periods of a date
overlapping (a closed day overlaps anything else on it).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

RESPONSES = Path(__file__).resolve().parent / "responses" / "google_business"
DAY = 24 * 60


class Invalid(Exception):
    """A field Google would refuse: `field` as Google names it, `description` as it says why."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(description)
        self.field, self.description = field, description


def recorded(name: str) -> web.Response:
    """A recorded error answer."""
    data = json.loads((RESPONSES / f"{name}.json").read_text(encoding="utf-8"))
    return web.json_response(data["body"], status=int(data["status"]))


def bad_gateway() -> web.Response:
    return web.Response(status=502, text=(RESPONSES / "bad_gateway.html").read_text(encoding="utf-8"),
                        content_type="text/html")


def invalid(field: str, description: str, message: str = "Request contains an invalid argument.") -> web.Response:
    """400 INVALID_ARGUMENT with a google.rpc.BadRequest naming the field."""
    return web.json_response({"error": {
        "code": 400, "message": message, "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                     "fieldViolations": [{"field": field, "description": description}]}]}}, status=400)


def special_hours(body: Any) -> list[dict[str, Any]]:
    """The periods of a PATCH body, normalised as Google stores them; Invalid if Google would refuse them."""
    if not isinstance(body, dict):
        raise Invalid("location", "Invalid JSON payload received.")
    special = body.get("specialHours") or {}
    periods = special.get("specialHourPeriods") or [] if isinstance(special, dict) else None
    if not isinstance(periods, list):
        raise Invalid("special_hours.special_hour_periods", "Invalid value.")
    spans: list[tuple[date, int, int, int]] = []
    stored = []
    for index, period in enumerate(periods):
        where = f"special_hours.special_hour_periods[{index}]"
        day, opens, closes, closed = _period(period, where)
        for other_day, other_open, other_close, other_index in spans:
            if _overlap((day, opens, closes, closed), (other_day, other_open, other_close)):
                raise Invalid(where, f"Special hour periods {other_index} and {index} overlap.")
        spans.append((day, opens, DAY if closed else closes, index))
        stored.append(_stored(day, opens, closes, closed))
    return stored


def _period(period: Any, where: str) -> tuple[date, int, int, bool]:
    if not isinstance(period, dict):
        raise Invalid(where, "Invalid value.")
    day = _date(period.get("startDate"), f"{where}.start_date")
    if period.get("closed") is True:
        return day, 0, DAY, True
    if "closeTime" not in period or "openTime" not in period:
        raise Invalid(f"{where}.close_time", "close_time is required when closed is false.")
    opens = _time(period.get("openTime"), f"{where}.open_time")
    closes = _time(period.get("closeTime"), f"{where}.close_time")
    end = _date(period["endDate"], f"{where}.end_date") if period.get("endDate") else day
    if end < day or end > day + timedelta(days=1):
        raise Invalid(f"{where}.end_date", "end_date must be start_date or the day after.")
    span_end = closes + DAY * (end - day).days
    if span_end <= opens:
        raise Invalid(where, "open_time and start_date must predate close_time and end_date.")
    if end != day and closes >= 12 * 60:
        raise Invalid(f"{where}.close_time", "A period may end at most at 11:59 on the day after start_date.")
    return day, opens, span_end, False


def _overlap(one: tuple[date, int, int, bool], other: tuple[date, int, int]) -> bool:
    day, opens, closes, closed = one
    other_day, other_open, other_close = other
    if day != other_day:
        return False
    return closed or (other_close == DAY and other_open == 0) or (opens < other_close and other_open < closes)


def _date(value: Any, field: str) -> date:
    if not isinstance(value, dict):
        raise Invalid(field, "Invalid date.")
    try:
        parts = [value.get(k) for k in ("year", "month", "day")]
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in parts):
            raise ValueError
        return date(*parts)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise Invalid(field, "Invalid date.") from err


def _time(value: Any, field: str) -> int:
    if not isinstance(value, dict) or set(value) - {"hours", "minutes", "seconds", "nanos"}:
        raise Invalid(field, "Invalid time of day.")
    hours, minutes = value.get("hours", 0), value.get("minutes", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (hours, minutes)):
        raise Invalid(field, "Invalid time of day.")
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise Invalid(field, "Valid values are 00:00-24:00.")
    return int(hours) * 60 + int(minutes)


def _stored(day: date, opens: int, closes: int, closed: bool) -> dict[str, Any]:
    start = _json_date(day)
    if closed:
        return {"startDate": start, "closed": True}
    end = day + timedelta(days=closes // DAY) if closes > DAY else day
    close = closes - DAY if closes > DAY else closes
    return {"startDate": start, "openTime": json_time(opens), "endDate": _json_date(end), "closeTime": json_time(close)}


def _json_date(day: date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}


def json_time(minutes: int) -> dict[str, int]:
    """TimeOfDay as Google writes it: zero fields left out."""
    hours, rest = divmod(minutes, 60)
    return {k: v for k, v in (("hours", hours), ("minutes", rest)) if v}


def regular_hours(week: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """regularHours for {"MONDAY": (opens, closes), …} in minutes."""
    return {"periods": [{"openDay": day, "openTime": json_time(o), "closeDay": day, "closeTime": json_time(c)}
                        for day, (o, c) in week.items()]}
