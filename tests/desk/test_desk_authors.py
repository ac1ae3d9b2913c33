"""History with names: two updates within one second keep their own authors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from statusd.config.load import Config
from statusd.model import Level, StatusEntry, Target
from statusd.rules import reconcile
from statusd.sources.status import wanted as wanted_status

pytestmark = pytest.mark.unit


class TestSameSecond:
    """Each of two quick updates is announced under the name written with it."""

    def test_two_updates_in_one_second_keep_their_authors(self, config: Config) -> None:
        status = wanted_status.for_config(config)
        first_at = datetime(2031, 5, 6, 10, 0, 0, 100_000, tzinfo=UTC)
        main = Target("main")
        status.set(main, StatusEntry(Level.CLOSED, {"fr": "Alarme"}, by="Annexe desk (annexe-desk)", at=first_at))
        first = reconcile(status.read(), {}, config, first_at)
        assert [e.author for e in first.events] == ["Annexe desk (annexe-desk)"]
        second_at = first_at + timedelta(microseconds=600_000)  # the same second
        status.set(main, StatusEntry(Level.EMERGENCY, {"fr": "Évacuation"}, by="Main lead (main-lead)",
                                     at=second_at))
        second = reconcile(status.read(), first.announced, config, second_at)
        assert [e.author for e in second.events] == ["Main lead (main-lead)"]

    def test_the_file_keeps_the_author_and_the_stamp_to_the_microsecond(self, config: Config) -> None:
        status = wanted_status.for_config(config)
        at = datetime(2031, 5, 6, 10, 0, 0, 123_456, tzinfo=UTC)
        status.set(Target("annexe"), StatusEntry(Level.LIMITED, {"fr": "x"}, by="Annexe desk (annexe-desk)", at=at))
        entry = status.read()[Target("annexe")]
        assert entry.by == "Annexe desk (annexe-desk)" and entry.at == at
        assert "by: Annexe desk (annexe-desk)" in config.status_file.read_text()

    def test_a_hand_edit_is_still_named_as_one(self, config: Config) -> None:
        config.status_file.write_text("main:\n  level: closed\n  message: Travaux\n", encoding="utf-8")
        plan = reconcile(wanted_status.for_config(config).read(), {}, config, datetime.now(UTC))
        assert [e.author for e in plan.events] == ["hand edit of status.yaml"]
