"""Tests for statusd.config.rules and bands: the `rules:` section and hysteresis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statusd.config.bands import QUEUE_BANDS, SEAT_BANDS, Bands
from statusd.config.load import Config
from statusd.config.reader import Problems, Section, loads
from statusd.config.rules import SCHEMA, RulesConfig
from statusd.errors import ConfigError
from statusd.loading import load
from statusd.sensors import default_rules, parse_rules

pytestmark = pytest.mark.unit

CONFIG = """\
public_url: https://bib.test
sites:
  main:
    zones: {floor2: {capacity: 200}, floor3: {capacity: 100}}
    queues: {entrance: {}}
  annexe:
    zones: {reading: {capacity: 80}}
channels:
  console: {type: console}
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = tmp_path_factory.mktemp("rules") / "statusd.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load(path)


def parse(config: Config, text: str) -> RulesConfig:
    problems = Problems("statusd.yaml")
    rules = parse_rules(
        Section(loads(text, "statusd.yaml")["rules"], "rules", problems), config.sites
    )
    problems.check()
    return rules


class TestDefaults:
    """With no section, every site gets the documented defaults."""

    def test_no_section(self, config: Config) -> None:
        rules = parse_rules(Section(None, "rules", Problems("statusd.yaml")), config.sites)
        assert rules == default_rules(config.sites)
        main = rules.site("main")
        assert main.zone("floor2").bands.names == ("free", "busy", "nearly_full", "full")
        assert main.zone("floor2").bands.lowers == (0, 50, 80, 95)
        assert main.queue_watch("entrance").bands.names == tuple(n for n, _ in QUEUE_BANDS)
        assert (main.min_interval, main.zone("floor2").stale_after, main.aggregate) == (
            1800,
            300,
            True,
        )
        assert (main.smoothing.method, main.smoothing.window, main.rate_window) == (
            "ewma",
            300,
            900,
        )
        assert main.zone("floor2").quiet == {"free", "busy"}

    def test_the_documented_schema_parses(self, config: Config) -> None:
        text = SCHEMA.replace("{bands: {...}, ", "{")
        rules = parse(config, text)
        assert rules.site("main").zone("floor3").quiet == frozenset()
        assert rules.site("main").queue_watch("entrance").gate == "door"
        assert rules.site("main").queue_watch("entrance").stale_after == 120


class TestCascade:
    """Settings cascade from rules to a site to one zone or queue."""

    def test_overrides(self, config: Config) -> None:
        rules = parse(
            config,
            """
rules:
  min_interval: 20m
  stale_after: 2m
  seats: {hysteresis: 3}
  sites:
    main:
      aggregate: false
      smoothing: {method: median, window: 10m}
      zones:
        floor3: {bands: {open: 0, crowded: 70, packed: 90}, quiet: [], stale_after: 10m}
      queues:
        entrance: {hysteresis: 5m}
""",
        )
        main, annexe = rules.site("main"), rules.site("annexe")
        assert (main.min_interval, annexe.min_interval) == (1200, 1200)
        assert (main.aggregate, annexe.aggregate) == (False, True)
        assert main.smoothing.method == "median" and annexe.smoothing.method == "ewma"
        assert main.zone("floor3").bands == Bands(("open", "crowded", "packed"), (0, 70, 90), 3.0)
        assert main.zone("floor3").stale_after == 600
        assert main.zone("floor2").bands.hysteresis == 3.0
        assert main.zone("floor2").stale_after == 120
        assert main.queue_watch("entrance").bands.hysteresis == 5.0


class TestProblems:
    """Every mistake is reported with its line and field, and unknown keys are errors."""

    @pytest.mark.parametrize(
        ("text", "field", "words"),
        [
            ("rules:\n  min_intervall: 5m\n", "rules.min_intervall", "unknown key"),
            (
                "rules:\n  seats: {bands: {free: 0, full: 120}}\n",
                "rules.seats.bands",
                "wrong: full",
            ),
            (
                "rules:\n  seats: {bands: {free: 10, full: 90}}\n",
                "rules.seats.bands",
                "the first must be 0",
            ),
            (
                "rules:\n  seats: {bands: {free: 0, busy: 80, full: 50}}\n",
                "rules.seats.bands",
                "each higher",
            ),
            ("rules:\n  seats: {bands: {free: 0}}\n", "rules.seats.bands", "at least two"),
            ("rules:\n  seats: {hysteresis: 40}\n", "rules.seats.hysteresis", "from 0 to 25"),
            ("rules:\n  seats: {quiet: [empty]}\n", "rules.seats.quiet", "band names"),
            ("rules:\n  queue: {hysteresis: soon}\n", "rules.queue.hysteresis", "minutes (3)"),
            ("rules:\n  queue: {rate_window: 10s}\n", "rules.queue.rate_window", "at least 1m"),
            (
                "rules:\n  smoothing: {method: kalman}\n",
                "rules.smoothing.method",
                "ewma, median, none",
            ),
            ("rules:\n  aggregate: sometimes\n", "rules.aggregate", "true or false"),
            ("rules:\n  stale_after: later\n", "rules.stale_after", "a duration"),
            ("rules:\n  sites: {branch: {}}\n", "rules.sites.branch", "unknown site"),
            (
                "rules:\n  sites:\n    main:\n      zones: {floor9: {}}\n",
                "rules.sites.main.zones.floor9",
                "unknown zone",
            ),
            (
                "rules:\n  sites:\n    annexe:\n      queues: {door: {}}\n",
                "rules.sites.annexe.queues.door",
                "queues are none",
            ),
            (
                "rules:\n  sites:\n    main:\n      zones: {floor2: {gate: door}}\n",
                "rules.sites.main.zones.floor2.gate",
                "unknown key",
            ),
        ],
    )
    def test_reported(self, config: Config, text: str, field: str, words: str) -> None:
        with pytest.raises(ConfigError) as caught:
            parse(config, text)
        problems = caught.value.problems
        assert [p.field for p in problems] == [field]
        assert words in problems[0].text
        assert problems[0].line == text.count("\n", 0, text.rindex(field.rsplit(".", 1)[-1])) + 1

    def test_all_problems_together(self, config: Config) -> None:
        with pytest.raises(ConfigError) as caught:
            parse(
                config, "rules:\n  seats: {hysteresis: -1}\n  queue: {hysteresis: 99}\n  typo: 1\n"
            )
        assert len(caught.value.problems) == 3


class TestHysteresis:
    """A band is entered at its bound and left only `hysteresis` below it."""

    BANDS = Bands.of(SEAT_BANDS, 5.0)

    @pytest.mark.parametrize(
        ("value", "current", "expected"),
        [
            (79.9, None, "busy"),
            (80.0, None, "nearly_full"),
            (79.0, "nearly_full", "nearly_full"),
            (75.1, "nearly_full", "nearly_full"),
            (74.9, "nearly_full", "busy"),
            (96.0, "busy", "full"),
            (30.0, "full", "free"),
            (91.0, "full", "full"),
            (89.0, "full", "nearly_full"),
            (12.0, "gone", "free"),
        ],
    )
    def test_table(self, value: float, current: str | None, expected: str) -> None:
        assert self.BANDS.classify(value, current) == expected

    def test_a_narrow_band_can_be_left(self) -> None:
        queue = Bands.of((("none", 0.0), ("short", 1.0), ("long", 30.0)), 3.0)
        assert queue.classify(0.4, "short") == "none"

    @given(
        st.floats(min_value=0, max_value=100),
        st.sampled_from([None, *Bands.of(SEAT_BANDS, 5).names]),
    )
    def test_never_more_than_one_hysteresis_away(self, value: float, current: str | None) -> None:
        band = self.BANDS.classify(value, current)
        raw = self.BANDS.raw(value)
        assert band == raw or (
            self.BANDS.rank(band) == self.BANDS.rank(raw) + 1
            and value >= self.BANDS.lowers[self.BANDS.rank(band)] - 5.0
        )
