"""`statusd set`'s probe of the SQLite store, made without the store: it answers as the store's own.

The command probes the file before it writes status.yaml (commands/setting.py);
the daemon probes it for /readyz (upkeep.py). Both make the same small write,
opened the same way (outbox/sqlite_file.py), so both must say the same thing.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from statusd.outbox import probe
from statusd.outbox.dialect import SQLITE
from statusd.outbox.schema import STEPS, VERSION
from statusd.outbox.sqlite import SqliteStore

pytestmark = pytest.mark.unit


def _store_trouble(path: Path) -> str | None:
    """What the store's own probe says, as /readyz reads it."""
    store = SqliteStore(path)
    try:
        store.probe()
    except sqlite3.Error:
        return store.trouble
    finally:
        store.close()
    return None


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM probe").fetchone()[0])


class TestAsTheStoreSays:
    def test_a_healthy_store_is_fine_and_keeps_no_row(self, tmp_path: Path) -> None:
        path = tmp_path / "statusd.db"
        SqliteStore(path).close()
        assert probe.sqlite_trouble(path) is None
        assert _rows(path) == 0

    def test_no_store_yet_is_the_daemons_to_make(self, tmp_path: Path) -> None:
        assert probe.sqlite_trouble(tmp_path / "statusd.db") is None
        assert not (tmp_path / "statusd.db").exists()  # the command makes no store of its own

    def test_a_file_that_is_not_a_store(self, tmp_path: Path) -> None:
        path = tmp_path / "statusd.db"
        path.write_bytes(b"not a database, " * 512)
        said = probe.sqlite_trouble(path)
        assert said is not None and said.startswith(f"the store {path} cannot record: ")
        assert "not a database" in said

    def test_a_store_locked_by_another_program_says_so_as_the_store_does(self, tmp_path: Path) -> None:
        path = tmp_path / "statusd.db"
        SqliteStore(path).close()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            said = probe.sqlite_trouble(path)
            theirs = _store_trouble(path)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert said == theirs and said is not None and "locked" in said

    def test_the_lock_released_within_the_wait_is_no_trouble(self, tmp_path: Path) -> None:
        """busy_timeout as the store's: a writer finishing within a second is waited for."""
        path = tmp_path / "statusd.db"
        SqliteStore(path).close()
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        threading.Timer(0.2, lambda: holder.execute("COMMIT")).start()
        try:
            assert probe.sqlite_trouble(path) is None
        finally:
            holder.close()

    def test_an_older_store_is_left_for_the_daemon_to_upgrade(self, tmp_path: Path) -> None:
        """The command neither upgrades the daemon's file under it nor blames a table it has not yet."""
        path = tmp_path / "statusd.db"
        with sqlite3.connect(path) as db:
            STEPS[1](SQLITE, db.execute)
            db.execute("INSERT INTO schema_version (version) VALUES (1)")
        assert probe.sqlite_trouble(path) is None
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1 < VERSION


class TestNoRoomThoughTheLogHasSome:
    """A full file system is said by both probes, even when the log's file has room to be written
    again from its start (a checkpoint copied all of it): the next record needing a page more fails."""

    def test_a_full_file_system_is_full_for_both(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        path = tmp_path / "statusd.db"
        SqliteStore(path).close()
        assert probe.sqlite_trouble(path) is None and _store_trouble(path) is None

        class Full:
            f_bavail, f_frsize = 3, 4096  # 12 kB free: less than one event with its deliveries

        monkeypatch.setattr("statusd.outbox.probe.os.statvfs", lambda _: Full())
        command, daemon = probe.sqlite_trouble(path), _store_trouble(path)
        assert command is not None and "full" in command
        assert daemon is not None and "full" in daemon
