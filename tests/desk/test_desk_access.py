"""Desk staff in the statusd group flip statuses without root; others are refused clearly."""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ALERTS, BASE, CONSOLE, REPO
from tests.support.daemon import Daemon

pytestmark = pytest.mark.e2e


@dataclass
class Install:
    """A layout made by the shipped sysusers and tmpfiles files, under a private root and group name."""

    root: Path
    config: Path
    state: Path
    group: str
    desk: str
    stranger: str

    @property
    def status(self) -> Path:
        return self.config.parent / "status" / "status.yaml"


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


def _shipped(name: str, root: Path, group: str) -> str:
    """A shipped systemd file with its paths moved under `root` and its user and group renamed."""
    text = (REPO / "systemd" / name).read_text(encoding="utf-8")
    text = text.replace("/etc/statusd", f"{root}/etc/statusd").replace("/var/lib/statusd", f"{root}/var")
    return re.sub(r"(?m)^(\S+\s+\S+\s+\S+\s+)(\S+)(\s+)(\S+)", lambda m: _rename(m, group), text) \
        if name.endswith("tmpfiles") else re.sub(r"(?m)^u statusd ", f"u {group} ", text)


def _rename(found: re.Match[str], group: str) -> str:
    names = [group if n == "statusd" else n for n in (found.group(2), found.group(4))]
    return f"{found.group(1)}{names[0]}{found.group(3)}{names[1]}"


@pytest.fixture
def install() -> Iterator[Install]:
    tag = uuid.uuid4().hex[:6]
    group, desk, stranger = f"statusd-{tag}", f"desk-{tag}", f"other-{tag}"
    root = Path(f"/tmp/statusd-desk-{tag}")
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    sysusers, tmpfiles = root / "sysusers.conf", root / "tmpfiles.conf"
    sysusers.write_text(_shipped("statusd.sysusers", root, group), encoding="utf-8")
    tmpfiles.write_text(_shipped("statusd.tmpfiles", root, group), encoding="utf-8")
    try:
        _run("systemd-sysusers", str(sysusers))
        # Desk staff join the group as the README says: usermod -aG.
        _run("useradd", "--system", "--no-create-home", desk)
        _run("usermod", "-aG", group, desk)
        _run("useradd", "--system", "--no-create-home", stranger)
        _run("systemd-tmpfiles", "--create", str(tmpfiles))
        etc = root / "etc" / "statusd"
        config = etc / "statusd.yaml"
        text = BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h") + "status_file: status/status.yaml\n"
        config.write_text(text, encoding="utf-8")
        config.chmod(0o644)
        (etc / "status" / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
        _run("systemd-tmpfiles", "--create", str(tmpfiles))  # as the README: again, for the modes
        yield Install(root, config, root / "var", group, desk, stranger)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for user in (desk, stranger, group):
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
            # Made by the running daemon (handed over the status socket), written by the desk person.
            made = [json.loads(line) for line in daemon.logs().splitlines() if '"status_set_made"' in line]
            assert [m["uid"] for m in made] == [pwd.getpwnam(install.desk).pw_uid], daemon.logs()[-2000:]
            assert pwd.getpwuid(os.stat(install.status).st_uid).pw_name == install.desk
            assert os.stat(install.status).st_gid == grp.getgrnam(install.group).gr_gid
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
        assert "level: open" in install.status.read_text()


def _shell_as(user: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/usr/sbin/runuser", "-u", user, "--", "/bin/sh", "-c", script],
                          capture_output=True, text=True, cwd="/", timeout=60)


class TestDeskStaysDesk:
    """After installing with the shipped files, the group changes status.yaml and nothing else."""

    def test_desk_cannot_touch_the_config(self, install: Install) -> None:
        etc, config = install.config.parent, install.config
        attempts = {
            "write statusd.yaml": f"echo 'public_url: http://evil.example' >> {config}",
            "replace statusd.yaml": f"cp {config} {etc}/x && mv -f {etc}/x {config}",
            "create in /etc/statusd": f"touch {etc}/statusd.yaml.new",
            "chmod statusd.yaml": f"chmod 666 {config}",
            "move the status directory": f"mv {etc}/status {etc}/gone",
        }
        before = config.read_bytes()
        for what, script in attempts.items():
            done = _shell_as(install.desk, script)
            assert done.returncode != 0, f"a desk member could {what}"
        assert config.read_bytes() == before
        assert not (etc / "statusd.yaml.new").exists() and install.status.parent.is_dir()
        info = os.stat(etc)
        assert info.st_uid == 0 and not info.st_mode & 0o022, oct(info.st_mode)
        assert os.stat(config).st_uid == 0 and not os.stat(config).st_mode & 0o022
        assert _shell_as(install.desk, f"echo '# desk' >> {install.status}").returncode == 0

    def test_desk_cannot_manage_accounts(self, install: Install) -> None:
        """The accounts live in the store the group writes: `statusd user` still refuses a desk member."""
        for command in (("user", "list"), ("user", "edit", "annexe-desk", "--role", "admin"),
                        ("user", "add", "me-too", "--role", "admin")):
            refused = as_user(install.desk, install, *command)
            assert refused.returncode == 2, (command, refused.stdout, refused.stderr)
            assert "needs the right to change" in refused.stderr and "Traceback" not in refused.stderr

    def test_daemon_refuses_a_config_the_group_could_write(self, install: Install) -> None:
        os.chown(install.config, 0, grp.getgrnam(install.group).gr_gid)
        install.config.chmod(0o664)
        result = subprocess.run(
            [sys.executable, "-m", "statusd", "--config", str(install.config), "--state-dir", str(install.state),
             "run", "--port", "0", "--ops-port", "0"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 78, result.stderr
        assert f"{install.config}: is writable by group {install.group} (mode 0664)" in result.stderr
        assert "Traceback" not in result.stderr

    def test_reload_refuses_it_and_keeps_running(self, install: Install) -> None:
        daemon = Daemon(install.config, install.state, umask=0o007).start()
        try:
            install.config.parent.chmod(0o775)
            os.chown(install.config.parent, 0, grp.getgrnam(install.group).gr_gid)
            assert daemon.proc is not None
            daemon.proc.send_signal(signal.SIGHUP)
            _wait(lambda: "config_reload_failed" in daemon.logs())
            assert f"{install.config.parent}: is writable by group {install.group}" in daemon.logs()
            assert "config_reloaded" not in daemon.logs() and daemon.proc.poll() is None
        finally:
            daemon.kill()


def _wait(done: object, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("not within the time allowed")
