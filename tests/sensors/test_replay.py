"""Tests for `statusd replay`: a day of readings through the real rules and Composer, posting nothing."""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from statusd.commands import parser
from statusd.config.load import Config
from statusd.errors import UserError
from statusd.events import EventKind
from statusd.loading import load
from statusd.replay import Post, play
from statusd.replay import load as load_readings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent.parent
LARGE = REPO / "examples" / "day-large-library.jsonl"
EXAMS = REPO / "examples" / "day-university-exams.csv"


@pytest.fixture(scope="module")
def shipped() -> Config:
    return load(REPO / "statusd.yaml")


@pytest.fixture(scope="module")
def large(shipped: Config) -> list[Post]:
    return replay(shipped, LARGE)


@pytest.fixture(scope="module")
def exams(shipped: Config) -> list[Post]:
    return replay(shipped, EXAMS)


def replay(config: Config, path: Path) -> list[Post]:
    loaded = load_readings(path, config)
    assert loaded.problems == []
    return play(loaded.readings, config)


def said(posts: list[Post], kind: EventKind) -> list[tuple[str, str]]:
    """(local time, band) of each post of `kind` that a channel carries."""
    return [
        (f"{p.event.at.astimezone(p.event.at.tzinfo):%H:%M}", p.event.extra["band"])
        for p in posts
        if p.event.kind is kind and p.messages
    ]


class TestLargeLibrary:
    """A morning queue near two hours that drains by noon, and floors that fill, in a short list."""

    def test_the_queue(self, large: list[Post]) -> None:
        queue = said(large, EventKind.QUEUE_CHANGED)
        assert [band for _, band in queue] == [
            "30_60",
            "60_90",
            "over_90",
            "60_90",
            "30_60",
            "under_15",
        ]
        assert queue[0][0] == "09:00"
        assert queue[-1][0] < "12:30"  # drained by noon: the last queue post of the day

    def test_the_floors(self, large: list[Post]) -> None:
        seats = [p.event for p in large if p.event.kind is EventKind.SEATS_CHANGED]
        assert [(e.extra["zone"], e.extra["band"]) for e in seats] == [
            ("floor3", "nearly_full"),
            ("floor3", "full"),
            ("floor2", "nearly_full"),
            ("floor2", "full"),
            ("floor1", "nearly_full"),
            ("floor2", "nearly_full"),
            ("floor1", "busy"),
            ("floor2", "busy"),
            ("floor3", "busy"),
        ]
        gaps = [b.at - a.at for a, b in itertools.pairwise(seats)]
        assert min(gaps) >= timedelta(minutes=30)

    def test_every_post_in_every_language(self, large: list[Post]) -> None:
        posts = large
        assert len(posts) == 15
        assert all(
            [name for name, _ in p.messages] == ["console-fr", "console-en", "console-sv"]
            for p in posts
        )
        peak = next(p for p in posts if p.event.extra.get("band") == "over_90")
        assert dict(peak.messages)["console-en"].startswith(
            "Central Library — Main entrance: waiting time over 1 h 30 (estimate)."
        )


class TestUniversityExams:
    """Noisy counters in an exam-season reading room, and a 20-minute outage that posts nothing."""

    def test_posts(self, exams: list[Post]) -> None:
        assert said(exams, EventKind.SEATS_CHANGED) == [
            ("09:27", "nearly_full"),
            ("10:01", "full"),
            ("17:29", "nearly_full"),
            ("18:26", "busy"),
        ]

    def test_outage_is_an_operator_notice(self, exams: list[Post]) -> None:
        notices = [(p.event.kind, f"{p.event.at:%H:%M}") for p in exams if p.operator_only]
        assert notices == [(EventKind.SENSOR_LOST, "14:15"), (EventKind.SENSOR_RESTORED, "14:30")]

    def test_a_channel_that_asks_carries_the_notices(self, tmp_path: Path) -> None:
        text = (
            (REPO / "statusd.yaml")
            .read_text(encoding="utf-8")
            .replace(
                "console-sv: {type: console, language: sv}",
                "console-sv: {type: console, language: sv}\n"
                "  operators: {type: console, language: en, events: [sensor_lost, sensor_restored]}",
            )
        )
        (tmp_path / "statusd.yaml").write_text(
            f"{text}\nalerts: {REPO / 'alerts'}\n", encoding="utf-8"
        )
        config = load(tmp_path / "statusd.yaml")
        posts = replay(config, EXAMS)
        lost = next(p for p in posts if p.event.kind is EventKind.SENSOR_LOST)
        assert [name for name, _ in lost.messages] == ["operators"]
        assert "Reading room is unavailable since 2:09\u202fPM" in lost.messages[0][1]
        seats = next(p for p in posts if p.event.kind is EventKind.SEATS_CHANGED)
        assert "operators" not in dict(seats.messages)


class TestSpeed:
    """Speed 0 plays a whole day in well under two seconds; a speed compresses time."""

    @pytest.mark.parametrize("path", [LARGE, EXAMS])
    def test_as_fast_as_possible(self, shipped: Config, path: Path) -> None:
        start = time.perf_counter()
        replay(shipped, path)
        assert time.perf_counter() - start < 2.0

    def test_an_hour_a_second(self, shipped: Config) -> None:
        loaded = load_readings(EXAMS, shipped)
        slept: list[float] = []
        play(loaded.readings, shipped, speed=3600, sleep=slept.append)
        day = (loaded.readings[-1].at - loaded.readings[0].at).total_seconds()
        assert sum(slept) == pytest.approx(day / 3600)


class TestFiles:
    """JSONL and CSV files are read; bad lines are named and skipped; a site closure holds posts back."""

    def test_bad_lines(self, shipped: Config, tmp_path: Path) -> None:
        path = tmp_path / "day.jsonl"
        good = {
            "site": "annexe",
            "zone": "reading",
            "occupied": 10,
            "at": "2026-05-19T09:00:00+02:00",
        }
        path.write_text(
            "\n".join(
                [
                    json.dumps(good),
                    "{oops",
                    json.dumps({**good, "zone": "attic"}),
                    "",
                    "# a comment",
                ]
            ),
            encoding="utf-8",
        )
        loaded = load_readings(path, shipped)
        assert len(loaded.readings) == 1
        assert [p.split(": ", 1)[0] for p in loaded.problems] == [f"{path}:2", f"{path}:3"]
        assert "unknown zone 'attic'" in loaded.problems[1]

    def test_closure_in_the_feed(self, shipped: Config, tmp_path: Path) -> None:
        start = datetime.fromisoformat("2026-05-19T09:00:00+02:00")
        rows = [
            "at,kind,site,zone,occupied,level,reason",
            f"{start.isoformat()},status,annexe,,,closed,fire alarm",
        ]
        rows += [
            f"{(start + timedelta(minutes=i)).isoformat()},seats,annexe,reading,79,,"
            for i in range(1, 90)
        ]
        path = tmp_path / "day.csv"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        loaded = load_readings(path, shipped)
        assert loaded.problems == []
        before = shipped.status_file.read_bytes() if shipped.status_file.exists() else None
        assert play(loaded.readings, shipped) == []
        # The daemon's intake took the closure, into memory: the real status file is untouched.
        assert (shipped.status_file.read_bytes() if shipped.status_file.exists() else None) == before

    def test_unreadable(self, shipped: Config, tmp_path: Path) -> None:
        with pytest.raises(UserError):
            load_readings(tmp_path / "missing.jsonl", shipped)


class TestCommand:
    """`statusd replay FILE` prints each post with its time and a summary, and posts nothing."""

    # The handler is called without main(), which would configure the process-wide logging.
    def run(self, *argv: str) -> int:
        args = parser().parse_args(["replay", *argv, "--config", str(REPO / "statusd.yaml")])
        code: int = args.handler(args)
        return code

    def test_prints_the_day(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = self.run(str(EXAMS))
        out = capsys.readouterr().out
        assert code == 0
        assert "10:01  annexe  seats_changed  reading nearly_full → full\n" in out
        assert "    console-en: Science Annexe — Reading room: full." in out
        assert "14:15  annexe  sensor_lost  reading  (operator notice" in out
        assert out.rstrip().endswith("4 post(s) and 2 operator notice(s) for the day.")

    def test_refuses_a_negative_speed(self) -> None:
        with pytest.raises(UserError, match="--speed"):
            self.run(str(EXAMS), "--speed", "-1")

    def test_refuses_a_file_without_readings(self, tmp_path: Path) -> None:
        (tmp_path / "empty.jsonl").write_text("# nothing\n", encoding="utf-8")
        with pytest.raises(UserError, match="no usable reading"):
            self.run(str(tmp_path / "empty.jsonl"))
