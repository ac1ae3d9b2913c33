"""File feed: follow a CSV or JSONL file that a counter or gate system appends to.

Like `tail -F`: rows written after the daemon starts are read as they come
(a CSV's header is read from the first line); a file replaced by a new one
(rotation) or cut shorter (truncation) is read again from its start; a
missing file is waited for. One line is one reading; a bad line is logged
with its number and skipped. CSV columns are the reading's fields
(kind, site, zone, queue, occupied, capacity, percent, length, wait_minutes,
throughput_per_hour, in, out, level, reason, at, sensor); empty cells are
left out and the feed's site and zone fill in what a row does not say.
"""

from __future__ import annotations

import asyncio
import csv
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from statusd.config.feeds import FileFeedConfig
from statusd.config.load import Config
from statusd.sources.feeds.vendors import Receiver
from statusd.sources.readings import Reading

log = structlog.get_logger()

MAX_READ = 4 * 1024 * 1024  # per look, so a huge backlog cannot stall the loop
NUMERIC = frozenset({"occupied", "capacity", "percent", "length", "wait_minutes", "throughput_per_hour",
                     "in", "out"})


class FileFeed:
    """One followed file."""

    def __init__(self, feed: FileFeedConfig, config: Config, from_start: bool = False,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.feed = feed
        self.receiver = Receiver(feed.name, feed.decoding, feed.allow, config, clock)
        self.follower = Follower(feed.path, feed.format == "csv", from_start)

    async def run(self, intake: Callable[[list[Reading]], None]) -> None:
        """Follow the file until cancelled."""
        while True:
            for line, record in self.follower.new_records():
                if isinstance(record, BadRow):
                    log.warning("reading_rejected", feed=self.feed.name, reason=record.reason,
                                path=str(self.feed.path), line=line)
                else:
                    self.receiver.receive(record, intake, path=str(self.feed.path), line=line)
            await asyncio.sleep(self.feed.every)


@dataclass(frozen=True)
class BadRow:
    """A CSV line that is not a row of the file's table."""

    reason: str


class Follower:
    """Reads what was appended since the last look, noticing rotation and truncation."""

    def __init__(self, path: Path, is_csv: bool, from_start: bool) -> None:
        self.path = path
        self.is_csv = is_csv
        self.inode: int | None = None
        self.position = 0
        self.line = 0
        self.header: list[str] | None = None
        self.partial = b""
        self.skip_existing = not from_start

    def new_records(self) -> list[tuple[int, Any]]:
        """(line number, record) for each complete new line: bytes for JSONL, a dict for CSV."""
        try:
            stat = os.stat(self.path)
        except OSError:
            if self.inode is not None:
                log.warning("feed_file_missing", path=str(self.path))
                self.inode = None
            self.skip_existing = False  # a file that appears later is new from its first line
            return []
        if stat.st_ino != self.inode or stat.st_size < self.position:
            self._restart(stat.st_ino, stat.st_size)
        if stat.st_size == self.position:
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.position)
            data = handle.read(MAX_READ)
        self.position += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return list(self._records(lines))

    def _restart(self, inode: int, size: int) -> None:
        if self.inode is not None:
            log.info("feed_file_rotated", path=str(self.path))
        self.inode, self.position, self.line, self.header, self.partial = inode, 0, 0, None, b""
        if self.skip_existing:
            self.skip_existing = False
            self._skip_to(size)

    def _skip_to(self, size: int) -> None:
        """Start at the end of what is already there, but keep the CSV header and line count."""
        with open(self.path, "rb") as handle:
            existing = handle.read(size)
        complete = existing[: existing.rfind(b"\n") + 1]
        self.position = len(complete)
        lines = complete.split(b"\n")[:-1]
        self.line = len(lines)
        if self.is_csv and lines:
            self.header = _csv_row(lines[0])

    def _records(self, lines: list[bytes]) -> Iterator[tuple[int, Any]]:
        for raw in lines:
            self.line += 1
            if not raw.strip():
                continue
            if not self.is_csv:
                yield self.line, raw
            elif self.header is None:
                self.header = _csv_row(raw)
            else:
                yield self.line, self._row(raw)

    def _row(self, raw: bytes) -> Any:
        cells = _csv_row(raw)
        assert self.header is not None
        if cells is None:
            return BadRow("the line is not UTF-8 CSV")
        if len(cells) != len(self.header):
            return BadRow(f"the row has {len(cells)} cells, the header {len(self.header)}")
        return {key: _cell(key, value) for key, value in zip(self.header, cells) if value.strip()}


def _csv_row(raw: bytes) -> list[str] | None:
    try:
        return next(csv.reader([raw.decode("utf-8-sig").rstrip("\r")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None


def _cell(key: str, value: str) -> Any:
    """A CSV cell in the type JSON would carry: numbers for counts and Unix times, else text."""
    value = value.strip()
    if key in NUMERIC or (key == "at" and value.replace(".", "", 1).isdigit()):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    return value
