"""The SQLite store's write-ahead log copied into its file from a thread and connection of their own.

SQLite checkpoints, unless told otherwise, inside the commit that takes the log past
1,000 pages: with `synchronous = NORMAL` that commit then copies the pages into the
database and waits for two fsyncs. With 128 channels an event's record is that commit
every 10 to 20 events, and it took 8 ms instead of 2 before the first request could
leave (issue 15: a pushed change's first request under 10 ms). The daemon's connection
now checkpoints itself only past BACKSTOP pages (should this one fall behind), and a
PASSIVE checkpoint runs here soon after the log changes: it waits for no writer, and no
writer waits for it. The hourly TRUNCATE (the pruning's, which keeps the files small) runs
here too, one checkpoint at a time, and gives up at once rather than hold the write lock
while it waits for a reader: a TRUNCATE on the store's thread that met this thread's
PASSIVE held that lock up to its busy timeout, and a `statusd set` probing the store then
found it locked.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from statusd import tasks
from statusd.outbox import sqlite_file

__all__ = ["BACKSTOP", "Checkpoints"]

log = structlog.get_logger()

# Pages in the log past which the daemon's own commits checkpoint after all (about 64 MB).
BACKSTOP = 16_000
# After a change, this long for the rest of its burst (a fan-out's marks) to land first.
AFTER = 0.5


class Checkpoints:
    """PASSIVE checkpoints of the store's file at `path`, each soon after a change, never two at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._db: sqlite3.Connection | None = None
        self._soon: asyncio.Task[None] | None = None
        self._failing = False

    def soon(self) -> None:
        """The log changed: copy it within AFTER (one checkpoint for a burst of changes)."""
        if self._soon is None:
            self._soon = tasks.spawn(self._later(), "store-checkpoint")

    async def _later(self) -> None:
        try:
            await asyncio.sleep(AFTER)
        finally:
            self._soon = None  # a change from here on asks for a checkpoint of its own
        await self._off("PASSIVE")

    async def truncate(self) -> None:
        """Copy the whole log and empty its file, unless a reader or writer is busy (then next time)."""
        await self._off("TRUNCATE")

    async def _off(self, mode: str) -> None:
        try:
            frames = await asyncio.get_running_loop().run_in_executor(self._thread, self.run, mode)
        except sqlite3.Error as err:
            if not self._failing:  # said once, until one succeeds: the backstop keeps the log bounded
                log.warning("store_checkpoint_failed", store=str(self.path), reason=str(err),
                            note=f"the daemon's commits checkpoint past {BACKSTOP} pages")
            self._failing = True
            return
        self._failing = False
        log.debug("store_checkpointed", mode=mode, frames=frames)

    def run(self, mode: str = "PASSIVE") -> int:
        """One checkpoint (PASSIVE or TRUNCATE), on the calling thread; the log's frames copied."""
        if self._db is None:
            self._db = sqlite_file.connect(self.path)
            self._db.execute("PRAGMA busy_timeout = 0")  # never wait holding a lock: try again later
        row = self._db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return int(row[2]) if row and row[2] is not None else 0

    async def close(self) -> None:
        """Stop: a pending checkpoint is dropped (the next start's commits copy the log)."""
        if self._soon is not None:
            self._soon.cancel()
        loop = asyncio.get_running_loop()
        if self._db is not None:
            await loop.run_in_executor(self._thread, self._db.close)
            self._db = None
        self._thread.shutdown(wait=False)
