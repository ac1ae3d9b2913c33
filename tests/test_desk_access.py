"""Desk staff in the statusd group flip statuses without root; others are refused clearly."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ALERTS, BASE, CONSOLE, REPO
from tests.daemon import Daemon

pytestmark = pytest.mark.e2e


@dataclass
class Install:
    """A layout like the tmpfiles file makes: /etc/statusd and /var/lib/statusd, group-writable."""

    root: Path
    config: Path
    state: Path
    group: str
    desk: str
    stranger: str


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


@pytest.fixture
def install() -> Iterator[Install]:
    tag = uuid.uuid4().hex[:6]
    group, desk, stranger = f"statusd-{tag}", f"desk-{tag}", f"other-{tag}"
    root = Path(f"/tmp/statusd-desk-{tag}")
    _run("groupadd", "--system", group)
    _run("useradd", "--system", "--no-create-home", "--gid", group, desk)
    _run("useradd", "--system", "--no-create-home", stranger)
    try:
        etc, state = root / "etc", root / "var"
        etc.mkdir(parents=True)
        state.mkdir()
        root.chmod(0o755)
        gid = grp.getgrnam(group).gr_gid
        for directory, mode in ((etc, 0o2775), (state, 0o2770)):
            os.chown(directory, 0, gid)
            directory.chmod(mode)
        config = etc / "statusd.yaml"
        config.write_text(BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h"), encoding="utf-8")
        status = etc / "status.yaml"
        status.write_text("main:\n  level: open\n", encoding="utf-8")
        os.chown(status, 0, gid)
        status.chmod(0o664)
        yield Install(root, config, state, group, desk, stranger)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for user in (desk, stranger):
            subprocess.run(["userdel", user], capture_output=True, timeout=60)
        subprocess.run(["groupdel", group], capture_output=True, timeout=60)


# The test venv's interpreter lives under /root, which other users cannot enter;
# they run the system's Python 3.11 on the same installed packages instead.
SYSTEM_PYTHON = "/usr/bin/python3.11"
SITE_PACKAGES = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))


def as_user(user: str, install: Install, *args: str) -> subprocess.CompletedProcess[str]:
    """`statusd ARGS` run by `user`, with the environment a desk profile would set."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": f"{REPO}:{SITE_PACKAGES}",
           "STATUSD_CONFIG": str(install.config), "STATUSD_STATE_DIR": str(install.state)}
    return subprocess.run(
        ["/usr/sbin/runuser", "-u", user, "--", SYSTEM_PYTHON, "-m", "statusd", *args],
        capture_output=True, text=True, env=env, cwd="/", timeout=60,
    )


class TestDeskGroup:
    """A member of the group sets, shows and undoes; a stranger gets one clear sentence."""

    def test_set_show_undo_without_root(self, install: Install) -> None:
        daemon = Daemon(install.config, install.state, umask=0o007).start()
        try:
            done = as_user(install.desk, install, "set", "main", "closed", "-m", "fr:Fermé pour inventaire.")
            assert done.returncode == 0, done.stderr
            assert pwd.getpwuid(os.stat(install.config.parent / "status.yaml").st_uid).pw_name == install.desk
            assert os.stat(install.config.parent / "status.yaml").st_gid == grp.getgrnam(install.group).gr_gid
            _wait(lambda: "Fermé pour inventaire" in daemon.out.read_text())
            show = as_user(install.desk, install, "show")
            assert show.returncode == 0 and "closed" in show.stdout, show.stderr
            _wait(lambda: "event_recorded" in daemon.logs())
            undo = as_user(install.desk, install, "undo")
            assert undo.returncode == 0 and "back to open" in undo.stdout, undo.stderr
        finally:
            daemon.kill()

    def test_a_stranger_is_refused_in_one_sentence(self, install: Install) -> None:
        daemon = Daemon(install.config, install.state, umask=0o007).start()
        daemon.kill()
        for command in (("set", "main", "closed", "-m", "fr:x"), ("show",), ("undo",)):
            refused = as_user(install.stranger, install, *command)
            assert refused.returncode != 0, command
            assert "Traceback" not in refused.stderr, refused.stderr
            assert "ermission" in refused.stderr or "statusd group" in refused.stderr, refused.stderr
        assert "level: open" in (install.config.parent / "status.yaml").read_text()


def _wait(done: object, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("not within the time allowed")
