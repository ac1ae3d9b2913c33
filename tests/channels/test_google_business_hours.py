"""What a closure makes of special hours, and that undo gives back exactly what was there."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statusd.channels.google_business_hours import Change, Period, closure, from_google, plan, undo

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 7)  # a Monday
WEEK = {d: [(9 * 60, 12 * 60), (14 * 60, 18 * 60)] for d in range(5)}  # a lunch break, weekdays only
PARIS = ZoneInfo("Europe/Paris")

days = st.integers(min_value=0, max_value=13).map(lambda n: TODAY + timedelta(days=n))
periods = st.one_of(
    days.map(lambda d: Period(d, closed=True)),
    st.tuples(days, st.integers(0, 22), st.integers(1, 2)).map(
        lambda t: Period(t[0], opens=t[1] * 60, closes=(t[1] + t[2]) * 60)),
)


def one_a_day(items: list[Period]) -> list[Period]:
    """The library's own hours: at most one period a day, so that none overlap."""
    return sorted({p.day: p for p in items}.values())


class TestClosure:
    """Each day a closure touches, as Google takes it."""

    def test_split_hours_keep_the_morning(self) -> None:
        starts = datetime(2026, 12, 8, 11, tzinfo=PARIS)
        got = closure(starts, datetime(2026, 12, 9, 15, tzinfo=PARIS), TODAY, WEEK, 7)
        assert [p.text() for p in got] == ["2026-12-08 09:00-11:00", "2026-12-09 15:00-18:00"]

    def test_ending_at_midnight_ends_the_day_before(self) -> None:
        got = closure(datetime(2026, 12, 8, tzinfo=PARIS), datetime(2026, 12, 10, tzinfo=PARIS), TODAY, WEEK, 7)
        assert [p.text() for p in got] == ["2026-12-08 closed", "2026-12-09 closed"]

    def test_open_ended_and_weekend(self) -> None:
        got = closure(datetime(2026, 12, 11, 8, tzinfo=PARIS), None, TODAY, WEEK, 3)
        assert [p.text() for p in got] == ["2026-12-11 closed"]  # Saturday and Sunday are shut anyway

    def test_past_days_are_never_written(self) -> None:
        got = closure(datetime(2026, 12, 1, tzinfo=PARIS), datetime(2026, 12, 9, tzinfo=PARIS), TODAY, WEEK, 7)
        assert [p.day for p in got] == [TODAY, TODAY + timedelta(days=1)]

    def test_google_shapes_round_trip(self) -> None:
        late = Period(TODAY, opens=20 * 60, closes=26 * 60)  # 20:00 to 02:00 the next day
        assert from_google(late.to_google()) == late
        assert Period.parse(late.text()) == late


class TestUndoIsExact:
    """Whatever was there, a closure then its undo leaves the special hours as they were."""

    @given(present=st.lists(periods, max_size=8).map(one_a_day), wanted=st.lists(days, max_size=6))
    def test_closure_then_undo(self, present: list[Period], wanted: list[date]) -> None:
        want = sorted({Period(d, closed=True) for d in wanted})
        written, change = plan(present, want, None, TODAY, equal_is_ours=False)
        assert {p.day for p in want} <= {p.day for p in written}
        assert all(p in written for p in present if p.day not in {w.day for w in want})
        assert undo(written, Change.parse(change.remote_id())) == present

    @given(present=st.lists(periods, max_size=8).map(one_a_day), wanted=st.lists(days, min_size=1, max_size=6))
    def test_closure_then_reopening_gives_holidays_back(self, present: list[Period], wanted: list[date]) -> None:
        want = sorted({Period(d, closed=True) for d in wanted})
        written, closed = plan(present, want, None, TODAY, equal_is_ours=False)
        reopened, change = plan(written, [], closed, TODAY, equal_is_ours=False)
        assert reopened == present
        assert undo(reopened, change) == written
