"""The file feed follows an appended CSV or JSONL file, across rotation and truncation."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from statusd.config.feeds import Decoding, FileFeedConfig
from statusd.config.load import Config
from statusd.sources.feeds.file import FileFeed, Follower
from statusd.sources.readings import GateReading, Reading, SeatReading

pytestmark = pytest.mark.unit

NOW = datetime(2024, 5, 2, 8, 16, tzinfo=UTC)
CSV_HEADER = "at,zone,in,out,sensor\n"


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


class Follow:
    """A file feed running on `path`, with what its intake received."""

    def __init__(self, config: Config, path: Path, fmt: str, from_start: bool = False) -> None:
        feed = FileFeedConfig("export", frozenset({"seats", "gates"}), Decoding(site="main", zone="floor2"),
                              path, fmt, every=0.02)
        self.got: list[Reading] = []
        self.task = asyncio.create_task(FileFeed(feed, config, from_start, clock=lambda: NOW).run(self.got.extend))

    async def until(self, condition: Callable[[], bool]) -> None:
        for _ in range(300):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out; got {self.got}")

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def csv_feed(config: Config, tmp_path: Path) -> AsyncIterator[tuple[Follow, Path]]:
    path = tmp_path / "export.csv"
    path.write_text(CSV_HEADER + "2024-05-02T10:00:00+02:00,floor2,5,1,old\n", encoding="utf-8")
    follow = Follow(config, path, "csv")
    await asyncio.sleep(0.05)
    yield follow, path
    await follow.stop()


class TestCsv:
    """Rows appended to a CSV file become readings; rows already there before the start are history."""

    async def test_appended_rows(self, csv_feed: tuple[Follow, Path]) -> None:
        follow, path = csv_feed
        append(path, "2024-05-02T10:10:00+02:00,floor2,20,3,east\n2024-05-02T10:11:00+02:00,,22,3,east\n")
        await follow.until(lambda: len(follow.got) == 2)
        assert follow.got[0] == GateReading("main", "floor2", 20, 3, datetime(2024, 5, 2, 8, 10, tzinfo=UTC),
                                            "export/east")
        assert follow.got[1].zone == "floor2"  # type: ignore[union-attr]

    async def test_partial_line_waits_for_its_end(self, csv_feed: tuple[Follow, Path]) -> None:
        follow, path = csv_feed
        append(path, "2024-05-02T10:10:00+02:00,floor2,2")
        await asyncio.sleep(0.1)
        assert follow.got == []
        append(path, "0,3,east\n")
        await follow.until(lambda: len(follow.got) == 1)
        assert follow.got[0].total_in == 20  # type: ignore[union-attr]

    async def test_bad_rows_are_logged_and_skipped(self, csv_feed: tuple[Follow, Path]) -> None:
        follow, path = csv_feed
        with capture_logs() as logs:
            append(path, "2024-05-02T10:10:00+02:00,floor2,many,3,east\n1,2\n2024-05-02T10:12:00+02:00,floor2,9,3,e\n")
            await follow.until(lambda: len(follow.got) == 1)
        rejected = [(e["line"], e.get("field")) for e in logs if e["event"] == "reading_rejected"]
        assert rejected == [(3, "in"), (4, None)]

    async def test_rotation_reads_the_new_file_from_its_header(self, csv_feed: tuple[Follow, Path]) -> None:
        follow, path = csv_feed
        rotated = path.with_suffix(".csv.1")
        os.rename(path, rotated)
        path.write_text("zone,out,in,at\nfloor2,1,4,2024-05-02T10:13:00+02:00\n", encoding="utf-8")
        await follow.until(lambda: len(follow.got) == 1)
        assert (follow.got[0].total_in, follow.got[0].total_out) == (4, 1)  # type: ignore[union-attr]

    async def test_truncation_starts_over(self, csv_feed: tuple[Follow, Path]) -> None:
        follow, path = csv_feed
        path.write_text(CSV_HEADER, encoding="utf-8")  # same file, cut short
        await asyncio.sleep(0.1)
        append(path, "2024-05-02T10:14:00+02:00,floor2,1,0,x\n")
        await follow.until(lambda: len(follow.got) == 1)
        assert follow.got[0].total_in == 1  # type: ignore[union-attr]


class TestJsonl:
    """Each JSON line is a reading; the feed's site and zone fill in what a line leaves out."""

    async def test_lines(self, config: Config, tmp_path: Path) -> None:
        path = tmp_path / "seats.jsonl"
        follow = Follow(config, path, "jsonl")
        await asyncio.sleep(0.05)  # the file does not exist yet: it is waited for, then read whole
        path.write_text(json.dumps({"occupied": 40}) + "\n\n" + "{broken\n" + json.dumps({"occupied": 41}) + "\n",
                        encoding="utf-8")
        await follow.until(lambda: len(follow.got) == 2)
        await follow.stop()
        assert follow.got == [SeatReading("main", "floor2", n, None, NOW, "export") for n in (40, 41)]

    async def test_from_start(self, config: Config, tmp_path: Path) -> None:
        path = tmp_path / "seats.jsonl"
        path.write_text(json.dumps({"occupied": 40}) + "\n", encoding="utf-8")
        follow = Follow(config, path, "jsonl", from_start=True)
        await follow.until(lambda: len(follow.got) == 1)
        await follow.stop()


class TestFollower:
    """The follower keeps line numbers across looks and starts at the end of an existing file."""

    def test_line_numbers(self, tmp_path: Path) -> None:
        path = tmp_path / "a.jsonl"
        path.write_text("1\n2\n", encoding="utf-8")
        follower = Follower(path, is_csv=False, from_start=False)
        assert follower.new_records() == []
        append(path, "3\n4\n")
        assert follower.new_records() == [(3, b"3"), (4, b"4")]
