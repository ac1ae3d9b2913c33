"""Reconcile: what is wanted versus what was said, at a given time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from statusd.config.load import Config
from statusd.events import EventKind
from statusd.model import Announced, Level, StatusEntry, Target
from statusd.rules import HAND_EDIT, SCHEDULE, reconcile

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
MAIN = Target("main")


def closed(**kw: object) -> StatusEntry:
    base: dict[str, object] = {"level": Level.CLOSED, "message": {"fr": "Fermé : incendie."}}
    base.update(kw)
    return StatusEntry(**base)  # type: ignore[arg-type]


class Timeline:
    """Applies plans in turn, as the daemon would, remembering what was said."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.announced: dict[str, Announced] = {}
        self.said: list[str] = []

    def at(self, when: datetime, wanted: dict[Target, StatusEntry]) -> list[tuple[EventKind, str, Level]]:
        plan = reconcile(wanted, self.announced, self.config, when)
        fresh = [e for e in plan.events if e.id not in self.said]
        self.said += [e.id for e in fresh]
        self.announced.update(plan.announced)
        return [(e.kind, str(e.target), e.level) for e in fresh]


class TestStatusChanges:
    """A status change is said once, and only a change is said."""

    def test_all_open_on_first_start_says_nothing(self, config: Config) -> None:
        assert Timeline(config).at(NOW, {MAIN: StatusEntry()}) == []

    def test_a_closure_is_said_once(self, config: Config) -> None:
        line = Timeline(config)
        wanted = {MAIN: closed()}
        assert line.at(NOW, wanted) == [(EventKind.STATUS_CHANGED, "main", Level.CLOSED)]
        assert line.at(NOW + timedelta(seconds=5), wanted) == []

    def test_a_new_message_is_a_new_update(self, config: Config) -> None:
        line = Timeline(config)
        line.at(NOW, {MAIN: closed()})
        assert line.at(NOW, {MAIN: closed(message={"fr": "Fermé jusqu'à demain."})}) == [
            (EventKind.STATUS_CHANGED, "main", Level.CLOSED)
        ]

    def test_the_same_closure_again_later_is_said_again(self, config: Config) -> None:
        line = Timeline(config)
        line.at(NOW, {MAIN: closed()})
        line.at(NOW, {MAIN: StatusEntry()})
        assert line.at(NOW, {MAIN: closed()}) == [(EventKind.STATUS_CHANGED, "main", Level.CLOSED)]
        assert len(set(line.said)) == 3

    def test_a_service_is_its_own_target(self, config: Config) -> None:
        wifi = Target("main", "wifi")
        events = Timeline(config).at(NOW, {MAIN: StatusEntry(), wifi: StatusEntry(level=Level.LIMITED)})
        assert events == [(EventKind.STATUS_CHANGED, "main/wifi", Level.LIMITED)]

    def test_a_target_removed_from_the_file_reopens(self, config: Config) -> None:
        line = Timeline(config)
        line.at(NOW, {MAIN: closed()})
        assert line.at(NOW, {}) == [(EventKind.STATUS_CHANGED, "main", Level.OPEN)]

    def test_a_site_no_longer_configured_is_ignored(self, config: Config) -> None:
        line = Timeline(config)
        line.announced["gone"] = Announced("closed", "x")
        assert line.at(NOW, {}) == []


class TestAuthors:
    """Who made a change: the stamped user of `statusd set`, or a hand edit."""

    def test_stamped_change_names_the_user(self, config: Config) -> None:
        plan = reconcile({MAIN: closed(by="alice", at=NOW)}, {}, config, NOW)
        assert plan.events[0].author == "alice"

    def test_edit_keeping_the_old_stamp_is_a_hand_edit(self, config: Config) -> None:
        first = reconcile({MAIN: closed(by="alice", at=NOW)}, {}, config, NOW)
        edited = closed(by="alice", at=NOW, message={"fr": "Autre texte"})
        plan = reconcile({MAIN: edited}, first.announced, config, NOW)
        assert plan.events[0].author == HAND_EDIT

    def test_unstamped_change_is_a_hand_edit(self, config: Config) -> None:
        assert reconcile({MAIN: closed()}, {}, config, NOW).events[0].author == HAND_EDIT


class TestTimes:
    """`until` ends a status by itself; a planned closure is announced, reminded, started and ended."""

    def test_until_reopens_by_itself(self, config: Config) -> None:
        line = Timeline(config)
        wanted = {MAIN: closed(until=NOW + timedelta(hours=2))}
        line.at(NOW, wanted)
        plan = reconcile(wanted, line.announced, config, NOW)
        assert plan.wake_at == NOW + timedelta(hours=2)
        assert line.at(NOW + timedelta(hours=2), wanted) == [(EventKind.STATUS_CHANGED, "main", Level.OPEN)]
        event = reconcile(wanted, {}, config, NOW + timedelta(hours=3))
        assert event.events == []

    def test_planned_closure_lifecycle(self, config: Config) -> None:
        starts, until = NOW + timedelta(days=3), NOW + timedelta(days=5)
        wanted = {Target("annexe"): closed(starts=starts, until=until, by="bob", at=NOW)}
        line = Timeline(config)
        assert line.at(NOW, wanted) == [(EventKind.CLOSURE_PLANNED, "annexe", Level.CLOSED)]
        assert line.at(NOW + timedelta(days=1), wanted) == []
        assert reconcile(wanted, line.announced, config, NOW).wake_at == starts - timedelta(days=1)
        assert line.at(starts - timedelta(hours=20), wanted) == [(EventKind.CLOSURE_REMINDER, "annexe", Level.CLOSED)]
        assert line.at(starts - timedelta(hours=1), wanted) == []
        assert line.at(starts, wanted) == [(EventKind.STATUS_CHANGED, "annexe", Level.CLOSED)]
        assert line.at(until, wanted) == [(EventKind.STATUS_CHANGED, "annexe", Level.OPEN)]

    def test_scheduled_events_are_by_the_schedule(self, config: Config) -> None:
        starts = NOW + timedelta(hours=1)
        wanted = {MAIN: closed(starts=starts, by="bob", at=NOW)}
        plan = reconcile(wanted, {}, config, starts)
        assert [(e.reason, e.author) for e in plan.events] == [("scheduled", SCHEDULE)]

    def test_closure_set_within_the_reminder_window_is_said_once(self, config: Config) -> None:
        wanted = {MAIN: closed(starts=NOW + timedelta(hours=3))}
        assert Timeline(config).at(NOW, wanted) == [(EventKind.CLOSURE_REMINDER, "main", Level.CLOSED)]

    def test_a_window_that_passed_while_stopped_says_nothing(self, config: Config) -> None:
        wanted = {MAIN: closed(starts=NOW - timedelta(days=3), until=NOW - timedelta(days=1))}
        assert Timeline(config).at(NOW, wanted) == []
