"""Running under systemd: the unit file passes systemd's own checks, and the daemon speaks notify."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, WriteConfig
from tests.support.daemon import Daemon

pytestmark = pytest.mark.e2e

UNIT = REPO / "systemd" / "statusd.service"


def unit_for_here(tmp_path: Path) -> Path:
    """The shipped unit, with ExecStart pointing at this checkout's statusd."""
    statusd = Path(sys.executable).with_name("statusd")
    text = UNIT.read_text().replace("/usr/bin/statusd", str(statusd))
    path = tmp_path / "statusd.service"
    path.write_text(text)
    return path


class TestUnitFile:
    """systemd-analyze accepts the unit and rates its hardening OK or better."""

    def test_verify(self, tmp_path: Path) -> None:
        result = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(unit_for_here(tmp_path))],
            capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr

    def test_security_rating(self, tmp_path: Path) -> None:
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", str(unit_for_here(tmp_path))],
            capture_output=True, text=True, timeout=60,
        )
        match = re.search(r"Overall exposure level for statusd.service: ([\d.]+) (\w+)", result.stdout)
        assert match, result.stdout[-2000:] + result.stderr
        assert match.group(2) in ("OK", "SAFE"), match.group(0)

    def test_essentials(self) -> None:
        text = UNIT.read_text()
        for line in ("Type=notify", "RestartPreventExitStatus=78", "Restart=on-failure", "WatchdogSec=",
                     "StateDirectory=statusd", "ConfigurationDirectory=statusd", "LoadCredential=",
                     "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
                     "RestrictAddressFamilies=", "SystemCallFilter=@system-service", "CapabilityBoundingSet=\n",
                     "ExecReload="):
            assert line in text, line


@pytest.fixture
def notify_socket(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    yield path, sock
    sock.close()


def messages(sock: socket.socket, seconds: float) -> list[str]:
    found: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return found


class TestNotify:
    """READY only once serving, watchdog pings from the loop, STOPPING on SIGTERM."""

    def test_ready_watchdog_stopping(self, write_config: WriteConfig, tmp_path: Path, notify_socket) -> None:  # type: ignore[no-untyped-def]
        path, sock = notify_socket
        env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}
        daemon = Daemon(write_config(), tmp_path / "state", env=env).start()
        try:
            seen = messages(sock, 1.0)
            assert seen[0] == "READY=1"
            assert seen.count("WATCHDOG=1") >= 3
        finally:
            assert daemon.terminate() == 0
        assert "STOPPING=1" in messages(sock, 0.5)

    def test_config_error_exits_78_without_ready(self, tmp_path: Path, notify_socket) -> None:  # type: ignore[no-untyped-def]
        path, sock = notify_socket
        config = tmp_path / "statusd.yaml"
        config.write_text("sites: {}\nchannels: {}\nbogus: 1\n")
        result = subprocess.run(
            [sys.executable, "-m", "statusd", "--config", str(config), "run"],
            capture_output=True, text=True, timeout=60, env={"NOTIFY_SOCKET": str(path), "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 78
        assert "bogus: unknown key" in result.stderr
        assert "Traceback" not in result.stderr
        assert messages(sock, 0.3) == []

