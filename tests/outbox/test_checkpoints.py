"""The SQLite store's log is copied into its file by outbox/checkpoints.py, not inside the daemon's commits.

SQLite checkpointed inside the commit that took the log past 1,000 pages: an event's
record with 128 channels then took 8 ms instead of 2 (issue 15). The daemon's
connection checkpoints only past BACKSTOP pages; a PASSIVE checkpoint of a thread and
connection of its own copies the log soon after each change. Read back from the
database file alone (a copy without its -wal), not from our own connection.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from statusd.outbox import checkpoints
from statusd.outbox.checkpoints import BACKSTOP, Checkpoints
from statusd.outbox.sqlite import SqliteStore
from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.waiting import until

PAGE_ROWS = 2_000  # rows of about 2 kB: about 1,000 pages a batch


def _fill(store: SqliteStore, batches: int) -> None:
    """Commits on the store's own connection (whose checkpoint setting is under test)."""
    db = store._sqlite  # the daemon's connection itself: its wal_autocheckpoint is what is tested
    db.execute("CREATE TABLE IF NOT EXISTS pad (n INTEGER, x BLOB)")
    for batch in range(batches):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO pad VALUES (?, randomblob(2000))", [(batch,)] * PAGE_ROWS)
        db.execute("COMMIT")


def _rows_in_the_file_alone(path: Path, tmp_path: Path, table: str = "pad", where: str = "1") -> int:
    """The rows a copy of the database file holds without its log: what a checkpoint copied."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    db = sqlite3.connect(copy)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}").fetchone()[0])
    except sqlite3.OperationalError:  # not even the table: nothing copied
        return 0
    finally:
        db.close()


@pytest.mark.unit
class TestTheCommitsDoNotCheckpoint:
    def test_the_daemons_connection_keeps_its_log_past_a_thousand_pages(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "statusd.db", autocheckpoint=BACKSTOP)
        _fill(store, 3)
        assert _rows_in_the_file_alone(store.path, tmp_path) == 0  # every commit's pages still in the log
        store.close()

    def test_sqlites_own_setting_checkpoints_in_the_commit(self, tmp_path: Path) -> None:
        """Not vacuous: with SQLite's 1,000 pages the same commits copy the log themselves."""
        store = SqliteStore(tmp_path / "statusd.db")
        _fill(store, 3)
        assert _rows_in_the_file_alone(store.path, tmp_path) >= PAGE_ROWS
        store.close()


@pytest.mark.unit
class TestCheckpoints:
    def test_run_copies_the_log_into_the_file(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "statusd.db", autocheckpoint=BACKSTOP)
        _fill(store, 2)
        copied = Checkpoints(store.path).run()
        assert copied > 1_000
        assert _rows_in_the_file_alone(store.path, tmp_path) == 2 * PAGE_ROWS
        store.close()

    async def test_soon_copies_once_for_a_burst(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(checkpoints, "AFTER", 0.05)
        store = SqliteStore(tmp_path / "statusd.db", autocheckpoint=BACKSTOP)
        kept = Checkpoints(store.path)
        runs: list[int] = []
        original = kept.run

        def counted(mode: str = "PASSIVE") -> int:
            runs.append(1)
            return original(mode)

        monkeypatch.setattr(kept, "run", counted)
        _fill(store, 1)
        for _ in range(5):
            kept.soon()
        await until(lambda: _rows_in_the_file_alone(store.path, tmp_path) == PAGE_ROWS, "the log copied", timeout=5)
        await asyncio.sleep(0.2)
        assert runs == [1]
        await kept.close()
        store.close()

    async def test_a_truncate_never_holds_the_write_lock_while_a_reader_reads(self, tmp_path: Path) -> None:
        """The hourly TRUNCATE waits for readers holding the write lock; with a busy timeout it held
        it that long, and a `statusd set` probing the store beside a stopped daemon found it locked."""
        store = SqliteStore(tmp_path / "statusd.db", autocheckpoint=BACKSTOP)
        _fill(store, 1)
        reader = sqlite3.connect(store.path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM pad").fetchone()  # a snapshot the TRUNCATE must wait for
        kept, refused = Checkpoints(store.path), []

        def write() -> None:
            writer = sqlite3.connect(store.path, isolation_level=None, timeout=0.1)
            for _ in range(50):
                try:
                    writer.execute("BEGIN IMMEDIATE")
                    writer.execute("COMMIT")
                except sqlite3.OperationalError as err:
                    refused.append(str(err))
                time.sleep(0.002)
            writer.close()

        other = threading.Thread(target=write)
        other.start()
        for _ in range(20):
            kept.run("TRUNCATE")
        other.join()
        reader.execute("COMMIT")
        reader.close()
        await kept.close()
        store.close()
        assert refused == []

    async def test_a_failing_checkpoint_is_said_once(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(checkpoints, "AFTER", 0.01)
        path = tmp_path / "statusd.db"
        path.write_bytes(b"not a database, and secret=hunter2 " * 200)
        kept = Checkpoints(path)
        with capture_logs() as logs:
            for _ in range(3):
                kept.soon()
                await asyncio.sleep(0.1)
        failed = [entry for entry in logs if entry["event"] == "store_checkpoint_failed"]
        assert len(failed) == 1 and "hunter2" not in str(failed)
        await kept.close()


@pytest.mark.e2e
async def test_the_daemon_copies_its_log_after_a_flip(write_config: WriteConfig, tmp_path: Path) -> None:
    """The running daemon: after a `set`, the event is in the database file itself within a moment."""
    daemon = Daemon(write_config(), tmp_path / "state").start()
    try:
        await asyncio.to_thread(daemon.cli, "set", "main", "closed", "-m", "fr:Fermé pour travaux.")
        path = tmp_path / "state" / "statusd.db"
        await until(lambda: _rows_in_the_file_alone(path, tmp_path, "events", "target = 'main'") >= 1,
                    "the flip's event in the database file", timeout=10)
    finally:
        daemon.kill()
