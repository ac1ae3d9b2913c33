"""Tests for statusd.sensors.queue: Little's law, the admission rate and rounding waits for patrons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd.config import wording
from statusd.config.rules import DEFAULT_SITE, Smoothing
from statusd.sensors.queue import BUCKET, AdmissionRate, Step, littles_law, round_wait
from statusd.sensors.series import QueueSeries
from statusd.sources.readings import QueueReading

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
ALERTS = Path(__file__).resolve().parent.parent.parent / "alerts"


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


class TestLittlesLaw:
    """Wait ≈ queue length ÷ admissions per minute; unknown when nobody is admitted."""

    @pytest.mark.parametrize(
        ("length", "rate", "wait"),
        [
            (90, 3.0, 30.0),
            (480, 4.0, 120.0),
            (0, None, 0.0),
            (0, 0.0, 0.0),
            (10, None, None),
            (10, 0.0, None),
        ],
    )
    def test_table(self, length: int, rate: float | None, wait: float | None) -> None:
        assert littles_law(length, rate) == wait


class TestAdmissionRate:
    """The rate is smoothed over a window, from throughput readings or a gate counter."""

    def test_throughput_is_averaged_over_the_window(self) -> None:
        rate = AdmissionRate(900)
        rate.throughput(at(0), 600)  # leaves the 15-minute window
        rate.throughput(at(10), 120)
        rate.throughput(at(20), 240)
        assert rate.per_minute(at(20)) == pytest.approx(3.0)

    def test_gate_counter_growth(self) -> None:
        rate = AdmissionRate(900)
        for minute in range(21):
            rate.gate(at(minute), 1000 + 4 * minute)
        assert rate.per_minute(at(20)) == pytest.approx(4.0)

    def test_gate_reset_starts_again(self) -> None:
        rate = AdmissionRate(900)
        rate.gate(at(0), 5000)
        rate.gate(at(1), 10)
        rate.gate(at(3), 16)
        assert rate.per_minute(at(3)) == pytest.approx(3.0)

    def test_samples_are_trimmed_without_being_read(self) -> None:
        """Ten hours of readings twice a second, never read: only the window is kept."""
        rate = AdmissionRate(900)
        start = at(0)
        for tick in range(72_000):
            moment = start + timedelta(seconds=tick / 2)
            rate.throughput(moment, 300.0)
            rate.gate(moment, tick)
        assert len(rate) <= 2 * (900 / BUCKET + 5)
        assert rate.per_minute(start + timedelta(seconds=36_000)) == pytest.approx(2 * 60.0, rel=0.02)

    def test_a_fast_sensor_averages_as_a_slow_one(self) -> None:
        rate = AdmissionRate(900)
        for tick in range(1800):
            rate.throughput(at(0) + timedelta(seconds=tick / 2), 120.0 if tick % 2 else 240.0)
        assert rate.per_minute(at(15)) == pytest.approx(3.0)

    def test_nothing_recent(self) -> None:
        rate = AdmissionRate(600)
        rate.throughput(at(0), 200)
        assert rate.per_minute(at(30)) is None


class TestQueueSeries:
    """The sensor's wait is used when given; otherwise Little's law, flagged as an estimate."""

    def series(self) -> QueueSeries:
        return QueueSeries("main", "entrance", DEFAULT_SITE.queue, Smoothing("none"), 900)

    def test_sensor_wait_wins(self) -> None:
        series = self.series()
        series.update(QueueReading("main", "entrance", 300, 42.0, 100.0, at(0), "t"))
        assert (series.wait, series.estimate, series.band) == (42.0, False, "30_60")

    def test_estimate_from_length_and_throughput(self) -> None:
        series = self.series()
        series.update(QueueReading("main", "entrance", 200, None, 120.0, at(0), "t"))
        assert (series.wait, series.estimate, series.band) == (100.0, True, "over_90")
        assert series.figures()["wait"] == {"kind": "over", "minutes": 90, "hours": 1, "rest": 30}

    def test_no_rate_no_band(self) -> None:
        series = self.series()
        series.update(QueueReading("main", "entrance", 200, None, None, at(0), "t"))
        assert (series.wait, series.band) == (None, None)


class TestRounding:
    """Waits are announced in steps patrons understand, worded per language."""

    @pytest.mark.parametrize(
        ("minutes", "step", "en", "fr", "sv"),
        [
            (0.4, Step("none", 0), "no wait", "pas d'attente", "ingen väntetid"),
            (3, Step("under", 5), "under 5 min", "moins de 5 min", "under 5 min"),
            (12, Step("about", 10), "about 10 min", "environ 10 min", "cirka 10 min"),
            (13, Step("about", 15), "about 15 min", "environ 15 min", "cirka 15 min"),
            (41, Step("about", 45), "about 45 min", "environ 45 min", "cirka 45 min"),
            (55, Step("about", 60), "about 1 h", "environ 1 h", "cirka 1 tim"),
            (64, Step("over", 60), "over 1 h", "plus d'1 h", "över 1 tim"),
            (97, Step("over", 90), "over 1 h 30", "plus d'1 h 30", "över 1 tim 30 min"),
            (118, Step("over", 90), "over 1 h 30", "plus d'1 h 30", "över 1 tim 30 min"),
            (125, Step("over", 120), "over 2 h", "plus de 2 h", "över 2 tim"),
        ],
    )
    def test_table(self, minutes: float, step: Step, en: str, fr: str, sv: str) -> None:
        assert round_wait(minutes) == step
        words = wording.load(ALERTS)
        assert tuple(words.wait(step.kind, step.minutes, lang, "en") for lang in ("en", "fr", "sv")) == (en, fr, sv)

    def test_a_language_without_labels_is_reported_not_silent(self) -> None:
        words = wording.load(ALERTS)
        with capture_logs() as logs:
            assert words.wait("about", 45, "de", "fr") == "environ 45 min"
        assert [e["event"] for e in logs] == ["wording_missing"]
        assert any(p.field == "de" and "has no wording for" in p.text for p in words.problems(["fr", "de"]))

    @given(st.floats(min_value=0, max_value=24 * 60))
    def test_never_promises_less_than_the_wait_by_much(self, minutes: float) -> None:
        step = round_wait(minutes)
        if step.kind == "over":
            assert step.minutes <= minutes < step.minutes + 30
        elif step.kind == "about":
            assert abs(step.minutes - minutes) <= 7.5
        elif step.kind == "under":
            assert minutes < step.minutes
        else:
            assert minutes < 1
