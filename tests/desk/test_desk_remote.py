"""The remote command: from another directory and another Unix user, with only a token.

Every subcommand prints and exits as the same command run on the server for
the same state; a revoked or expired token is one sentence and exit 2.
"""

from __future__ import annotations

import os
import pwd
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.desk.server import PASSWORD, DeskServer, start

pytestmark = pytest.mark.e2e

SYSTEM_PYTHON = "/usr/bin/python3.11"


@dataclass
class Remote:
    """A desk PC: another Unix user, its own home and working directory, only the statusd source."""

    user: str
    home: Path
    server: DeskServer

    def run(self, *args: str, stdin: str | None = None, server: bool = True) -> subprocess.CompletedProcess[str]:
        # Only the repository on the path: the remote command must need no installed package.
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home), "PYTHONPATH": str(REPO),
               "PYTHONDONTWRITEBYTECODE": "1"}
        if server:
            env["STATUSD_SERVER"] = self.server.url
        return subprocess.run(
            ["/usr/sbin/runuser", "-u", self.user, "--", SYSTEM_PYTHON, "-m", "statusd", *args],
            capture_output=True, text=True, env=env, cwd=self.home, input=stdin, timeout=60)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    server = start(tmp_path_factory.mktemp("remote"))
    user = f"deskpc-{uuid.uuid4().hex[:6]}"
    home = Path(f"/tmp/{user}")
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", str(home), user],
                   check=True, capture_output=True, timeout=60)
    home.mkdir(mode=0o700)
    os.chown(home, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    desk = Remote(user, home, server)
    try:
        done = desk.run("login", server.url, "--user", "boss", "--password-stdin", stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        yield desk
    finally:
        server.daemon.kill()
        subprocess.run(["rm", "-rf", str(home)], timeout=60)
        subprocess.run(["userdel", user], capture_output=True, timeout=60)


def _same(remote: subprocess.CompletedProcess[str], local: subprocess.CompletedProcess[str]) -> None:
    assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)


def _ids(text: str) -> str:
    return re.sub(r"\[[0-9a-f]{20}\]", "[ID]", text)


class TestLogin:
    """The token is kept in ~/.config/statusd/, readable by its owner only."""

    def test_the_token_file_is_private(self, remote: Remote) -> None:
        path = remote.home / ".config" / "statusd" / "tokens.json"
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.stat().st_uid == pwd.getpwnam(remote.user).pw_uid
        assert (path.parent.stat().st_mode & 0o077) == 0


class TestSameAsLocal:
    """Each subcommand's output and exit code equal the local command's for the same state."""

    def test_set_show_history_preview(self, remote: Remote) -> None:
        daemon = remote.server.daemon
        args = ("set", "main", "closed", "-m", "fr:Fermé pour inventaire.", "-m", "en:Closed for stocktaking.")
        _same(remote.run(*args), daemon.cli(*args))
        _wait(lambda: "event_recorded" in daemon.logs())
        for command in (("show",), ("show", "-n", "2"), ("history",), ("history", "-n", "1"),
                        ("preview", "main", "open"), ("preview", "annexe", "limited", "-m", "sv:Kö")):
            _same(remote.run(*command), daemon.cli(*command, check=False))

    @pytest.mark.parametrize("command", [
        ("set", "mian", "closed"), ("set", "main", "closd"), ("set", "main", "closed"),
        ("set", "main/café", "limited"), ("set", "main", "open", "--until", "yesterday"),
        ("preview", "main", "emergency"), ("retract", "ffffffff"),
    ])
    def test_refusals_are_the_same_sentence_and_exit_code(self, remote: Remote, command: tuple[str, ...]) -> None:
        local = remote.server.daemon.cli(*command, check=False)
        assert local.returncode == 2
        _same(remote.run(*command), local)

    def test_undo_and_retract(self, remote: Remote) -> None:
        daemon = remote.server.daemon
        outputs = []
        runs: tuple[Callable[..., Any], ...] = (remote.run, lambda *a: daemon.cli(*a, check=False))
        for round, run in enumerate(runs):
            seen = daemon.cli("history").stdout.count("annexe → limited")
            # Each round its own text: the same status again after an undo has the same event id.
            done = daemon.cli("set", "annexe", "limited", "-m", f"sv:Kort kö ({round})")
            assert done.returncode == 0
            _wait(partial(_more_than, daemon, "annexe → limited", seen))
            outputs.append(run("undo"))
        assert outputs[0].returncode == outputs[1].returncode == 0, outputs
        assert _ids(outputs[0].stdout) == _ids(outputs[1].stdout)
        update = re.findall(r"\[([0-9a-f]{20})\]", outputs[0].stdout)[0]
        _same(remote.run("retract", update), daemon.cli("retract", update, check=False))


class TestRefusedTokens:
    """A revoked or expired token gets one sentence and exit 2."""

    def test_revoked(self, remote: Remote) -> None:
        daemon = remote.server.daemon
        extra = remote.run("login", remote.server.url, "--user", "annexe-desk", "--password-stdin",
                           stdin=PASSWORD + "\n")
        assert extra.returncode == 0, extra.stderr
        daemon.cli("user", "revoke", "annexe-desk")
        done = remote.run("show")
        assert done.returncode == 2 and done.stdout == "", (done.stderr, remote.server.daemon.logs()[-1500:])
        assert done.stderr == "statusd: this token was revoked; log in again with `statusd login`\n"
        back = remote.run("login", remote.server.url, "--user", "boss", "--password-stdin", stdin=PASSWORD + "\n")
        assert back.returncode == 0

    def test_expired(self, remote: Remote) -> None:
        db = sqlite3.connect(remote.server.daemon.state_dir / "statusd.db")
        try:
            with db:
                db.execute("UPDATE desk_tokens SET last_used = last_used - 31 * 86400 WHERE name = 'boss'")
        finally:
            db.close()
        done = remote.run("history")
        assert done.returncode == 2
        assert done.stderr == ("statusd: this token expired after 30 day(s) unused; log in again with "
                               "`statusd login`\n")
        back = remote.run("login", remote.server.url, "--user", "boss", "--password-stdin", stdin=PASSWORD + "\n")
        assert back.returncode == 0

    def test_logout_then_nothing(self, remote: Remote) -> None:
        assert remote.run("logout").returncode == 0
        done = remote.run("show")
        assert done.returncode == 2 and "not logged in to" in done.stderr
        back = remote.run("login", remote.server.url, "--user", "boss", "--password-stdin", stdin=PASSWORD + "\n")
        assert back.returncode == 0

    def test_without_server_the_command_stays_local(self, remote: Remote) -> None:
        # The desk PC has only the statusd source: the local path needs the daemon's packages, the remote none.
        done = remote.run("show", server=False)
        # (the first of them it imports is the YAML reader: logging is imported only when something is logged)
        assert done.returncode != 0 and "No module named 'ruamel'" in done.stderr


def _wait(done: Callable[[], bool], timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.05)
    raise AssertionError("not within the time allowed")


assert sys.version_info >= (3, 11)


def _more_than(daemon: Any, text: str, seen: int) -> bool:
    return bool(daemon.cli("history").stdout.count(text) > seen)
