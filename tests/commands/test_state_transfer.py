"""`statusd migrate`, `export-state` and `import-state`: a library's state moved SQLite → PostgreSQL →
SQLite loses nothing; the PostgreSQL store is refused until migrated; its password is only referenced."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from statusd.commands import main
from statusd.commands.state import tables
from statusd.compose.message import Message
from statusd.errors import ConfigError
from statusd.events import Event, EventKind
from statusd.loading import load
from statusd.model import Announced, Level, Target
from statusd.outbox.dialect import POSTGRES
from statusd.outbox.schema import STEPS, VERSION
from statusd.outbox.sqlite import SqliteStore
from statusd.outbox.store import Planned
from tests.conftest import WriteConfig
from tests.support.postgres import PASSWORD, PostgresServer

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
ENV = "STATUSD_TEST_STORE_PASSWORD"


def pg_config(write_config: WriteConfig, server: PostgresServer, database: str, status: str | None = None) -> Path:
    path = write_config(status=status) if status is not None else write_config()
    address = server.dsn(database, password=False)
    with path.open("a", encoding="utf-8") as out:
        out.write(f"store: {address}\nstore_password: {{env: {ENV}}}\nstore_timeout: 3s\n")
    return path


def run(config: Path, state: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", str(config), "--state-dir", str(state), *args])
    out, err = capsys.readouterr()
    return code, out, err


def fill(state: Path) -> None:
    """A single node's history: updates on two channels, one sent, one taken back, one with the rest of
    its deliveries still to record (a crash between the two writes), a pause, a desk user."""
    store = SqliteStore(state / "statusd.db")
    for rev, (target, level) in enumerate([("main", Level.CLOSED), ("annexe", Level.LIMITED), ("main", Level.OPEN)]):
        ev = Event(EventKind.STATUS_CHANGED, Target.parse(target), level, Level.OPEN, {"fr": f"m{rev}"},
                   NOW, "alice", f"r{rev}")
        message = Message(f"{target} {level.value}", "fr", None, ev.id, ev.kind.value, target, level.value)
        said = {target: Announced(level.value, f"r{rev}", NOW.isoformat(), ev.id, 1_790_000_000.0 + rev)}
        store.record([(ev, [Planned("console", message), Planned("hook", message, delay=60.0)])], said,
                     deadline=3600.0, now=1_790_000_000.0 + rev * 10.5, unfinished=[ev.id] if rev == 1 else [])
    first = store.next_due("console")
    assert first is not None
    store.mark_sending(first.id)
    store.mark_sent(first.id, "remote-1", "https://example.org/1")
    newest = store.latest_event(["status_changed"])
    assert newest is not None
    store.retract(newest.event.id, "bob", newest.previous, restore_target=True)
    store.pause("hook", time.time() + 3600.0, "HTTP 429: slow down")
    store.close()


class TestRoundTrip:
    """SQLite → PostgreSQL → SQLite: the same rows, the same `statusd history`, the same status.yaml."""

    def test_nothing_is_lost(self, write_config: WriteConfig, tmp_path: Path, postgres_server: PostgresServer,
                             postgres_database: str, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(ENV, PASSWORD)
        single = write_config()
        first, second = tmp_path / "state-a", tmp_path / "state-b"
        fill(first)
        assert run(single, first, "user", "add", "annexe-desk", "--name", "Annexe", "--sites", "annexe",
                   capsys=capsys)[0] == 0
        history = run(single, first, "history", "-n", "50", "--tz", "UTC", capsys=capsys)[1]
        status = (tmp_path / "status.yaml").read_text(encoding="utf-8")
        code, out, err = run(single, first, "export-state", str(tmp_path / "a.jsonl"), capsys=capsys)
        assert code == 0, err
        assert "3 events, " in out and (tmp_path / "a.jsonl").stat().st_mode & 0o077 == 0

        cluster_dir = tmp_path / "cluster"
        cluster_dir.mkdir()
        cluster = pg_config(lambda **kw: _config_in(write_config, cluster_dir), postgres_server,
                            postgres_database)
        code, out, err = run(cluster, tmp_path / "unused", "import-state", str(tmp_path / "a.jsonl"), capsys=capsys)
        assert code == 0, err
        assert "its tables created first" in out
        assert run(cluster, tmp_path / "unused", "history", "-n", "50", "--tz", "UTC", capsys=capsys)[1] == history
        assert run(cluster, tmp_path / "unused", "export-state", str(tmp_path / "b.jsonl"), capsys=capsys)[0] == 0

        (tmp_path / "status.yaml").unlink()
        code, out, err = run(single, second, "import-state", str(tmp_path / "b.jsonl"), capsys=capsys)
        assert code == 0, err
        assert run(single, second, "history", "-n", "50", "--tz", "UTC", capsys=capsys)[1] == history
        assert (tmp_path / "status.yaml").read_text(encoding="utf-8") == status
        before, after = dump_all(first / "statusd.db"), dump_all(second / "statusd.db")
        assert after == before
        assert [table for table in tables() if not before[table]] == ["desk_tokens", "desk_failures"]

    def test_a_store_that_holds_state_is_not_overwritten(
            self, write_config: WriteConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        config = write_config()
        fill(tmp_path / "state")
        assert run(config, tmp_path / "state", "export-state", str(tmp_path / "x.jsonl"), capsys=capsys)[0] == 0
        code, _, err = run(config, tmp_path / "state", "import-state", str(tmp_path / "x.jsonl"), capsys=capsys)
        assert code == 2
        assert "already holds" in err and "--replace" in err
        code, _, err = run(config, tmp_path / "state", "import-state", "--replace", str(tmp_path / "x.jsonl"),
                           capsys=capsys)
        assert code == 0, err

    def test_a_damaged_file_is_refused_with_its_line(
            self, write_config: WriteConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        config = write_config()
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"format": "statusd-state", "version": 1}\n{"table": "events", "row"\n', encoding="utf-8")
        code, _, err = run(config, tmp_path / "state", "import-state", str(bad), capsys=capsys)
        assert (code, err.strip()) == (2, f"statusd: {bad}:2: is not a JSON object; the file is not an "
                                          "export-state file, or damaged")


class TestMigrate:
    """The daemon refuses an unmigrated PostgreSQL store; `statusd migrate` makes it, and says what it did."""

    def test_migrate_then_nothing_to_do(self, write_config: WriteConfig, tmp_path: Path,
                                        postgres_server: PostgresServer, postgres_database: str,
                                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(ENV, PASSWORD)
        config = pg_config(write_config, postgres_server, postgres_database)
        code, _, err = run(config, tmp_path / "state", "history", capsys=capsys)
        assert code == 2 and "has no statusd tables" in err and "run `statusd migrate` first" in err
        assert PASSWORD not in err
        out = run(config, tmp_path / "state", "migrate", capsys=capsys)[1]
        assert out.strip() == (f"the store postgresql://statusd@127.0.0.1:{postgres_server.port}/"
                               f"{postgres_database}: created its tables (schema version {VERSION}).")
        assert "nothing to do" in run(config, tmp_path / "state", "migrate", capsys=capsys)[1]

    def test_a_version_1_database_is_upgraded_by_migrate(
            self, write_config: WriteConfig, tmp_path: Path, postgres_server: PostgresServer,
            postgres_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        """The indexes a post's checks need (schema step 2) come with `statusd migrate`; until then the
        daemon's commands refuse the database, saying so."""
        monkeypatch.setenv(ENV, PASSWORD)
        with psycopg.connect(postgres_server.dsn(postgres_database), autocommit=True) as db:
            STEPS[1](POSTGRES, db.execute)
            db.execute("INSERT INTO schema_version (version) VALUES (1)")
        config = pg_config(write_config, postgres_server, postgres_database)
        code, _, err = run(config, tmp_path / "state", "history", capsys=capsys)
        assert code == 2 and "holds schema version 1" in err and "run `statusd migrate` first" in err
        out = run(config, tmp_path / "state", "migrate", capsys=capsys)[1]
        assert out.strip().endswith(f"upgraded from schema version 1 to {VERSION}.")
        with psycopg.connect(postgres_server.dsn(postgres_database)) as db:
            names = {row[0] for row in db.execute("SELECT indexname FROM pg_indexes WHERE tablename IN "
                                                  "('events', 'deliveries')")}
        assert {"deliveries_sent", "events_target_created"} <= names
        assert run(config, tmp_path / "state", "history", capsys=capsys)[0] == 0

    def test_the_daemon_refuses_an_unmigrated_database(
            self, write_config: WriteConfig, tmp_path: Path, postgres_server: PostgresServer,
            postgres_database: str) -> None:
        config = pg_config(write_config, postgres_server, postgres_database)
        done = subprocess.run([sys.executable, "-m", "statusd", "--config", str(config), "--state-dir",
                               str(tmp_path / "state"), "run", "--port", "0", "--ops-port", "0"],
                              capture_output=True, text=True, timeout=60, check=False,
                              env={"PATH": "/usr/bin:/bin", ENV: PASSWORD})
        assert done.returncode == 2
        assert done.stderr.strip().endswith("run `statusd migrate` first")
        assert PASSWORD not in done.stderr + done.stdout


class TestConfig:
    """`store:` is a postgresql:// address without a password; the password is referenced."""

    @pytest.mark.parametrize(("lines", "expected"), [
        ("store: mysql://db/statusd", "store: should be a postgresql://USER@HOST[:PORT]/DATABASE address"),
        ("store: postgresql://statusd:hunter2-secret@db/statusd", "store: holds a password; secrets are never"),
        ("store: postgresql://statusd@db/statusd\nstore_password: hunter2-secret",
         "store_password: secrets are never written in statusd.yaml"),
        ("store_password: {env: X}", "store_password: is only used with store: postgresql://"),
    ])
    def test_refused_with_one_located_sentence(self, write_config: WriteConfig, lines: str, expected: str) -> None:
        path = write_config()
        with path.open("a", encoding="utf-8") as out:
            out.write(lines + "\n")
        with pytest.raises(ConfigError) as caught:
            load(path)
        assert len(caught.value.problems) == 1
        problem = str(caught.value.problems[0])
        assert problem.startswith(f"{path}:") and expected in problem
        assert "hunter2" not in problem

    def test_absent_means_the_sqlite_file(self, write_config: WriteConfig) -> None:
        assert load(write_config()).store.dsn is None


def _config_in(write_config: WriteConfig, directory: Path) -> Path:
    """write_config's statusd.yaml, in `directory`, with its status file there too."""
    text = write_config(status=None).read_text(encoding="utf-8")
    target = directory / "statusd.yaml"
    target.write_text(f"status_file: {directory}/status.yaml\n{text}", encoding="utf-8")
    return target


def dump_all(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table an export carries, read straight from a SQLite file."""
    db = sqlite3.connect(path)
    try:
        return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in tables()}
    finally:
        db.close()
