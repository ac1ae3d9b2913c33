"""`statusd set` ends without the interpreter's teardown, and loses nothing by it.

The command leaves with os._exit once it has said it is done with everything
(commands/shared.py): what it printed, on a terminal or a pipe, and what it
wrote are all there, its exit status is its own, and a command run by the desk
API inside the daemon never makes the daemon leave that way.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from statusd import commands
from statusd.commands import shared
from tests.config.test_scoped import GOOD, REPO, write

pytestmark = pytest.mark.unit

MESSAGE = "Fermé : dégât des eaux " + "é" * 1900  # near the 2,000 allowed, 3.8 kB of UTF-8


def run_set(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "statusd", "--config", str(tmp_path / "statusd.yaml"),
                           "--state-dir", str(tmp_path / "state"), "set", *args],
                          capture_output=True, timeout=60, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}, check=False)


class TestLeavesWithEverythingSaid:
    def test_written_and_said_through_a_pipe(self, tmp_path: Path) -> None:
        write(tmp_path, GOOD)
        done = run_set(tmp_path, "main", "closed", "-m", f"fr:{MESSAGE}", "-m", "en:Closed: water damage")
        assert done.returncode == 0, done.stderr
        out = done.stdout.decode()
        assert out.endswith("the daemon announces it on its 2 configured channel(s).\n"), out
        status = (tmp_path / "status.yaml").read_text(encoding="utf-8")
        assert MESSAGE in status and "level: closed" in status

    def test_a_store_that_cannot_record_is_said_on_stderr_with_its_status(self, tmp_path: Path) -> None:
        write(tmp_path, GOOD)
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "statusd.db").write_bytes(b"not a database, " * 512)
        done = run_set(tmp_path, "main", "limited")
        assert done.returncode == 74, done.stderr
        err = done.stderr.decode()
        assert "main: limited is written to" in err and "nothing is announced until it can" in err
        assert err.endswith("(the daemon tries again by itself)\n"), err

    def test_a_refusal_exits_the_usual_way(self, tmp_path: Path) -> None:
        write(tmp_path, GOOD)
        done = run_set(tmp_path, "main", "ajar")
        assert done.returncode == 2 and b"unknown level 'ajar'" in done.stderr


class TestOnlyTheProcessOwnCommand:
    def test_the_command_line_sets_it(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(shared, "done_with_everything", False)
        write(tmp_path, GOOD)
        code = commands.main(["--config", str(tmp_path / "statusd.yaml"), "--state-dir", str(tmp_path / "state"),
                              "set", "main", "open"])
        assert code == 0 and shared.done_with_everything

    def test_the_desk_api_path_does_not(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The desk API calls dispatch with its own arguments: the daemon's process is never told it may leave."""
        monkeypatch.setattr(shared, "done_with_everything", False)
        write(tmp_path, GOOD)
        args = commands.parser("set").parse_args(["--config", str(tmp_path / "statusd.yaml"), "--state-dir",
                                                  str(tmp_path / "state"), "set", "main", "open"])
        assert isinstance(args, argparse.Namespace)
        assert shared.dispatch(args) == 0
        assert not shared.done_with_everything
