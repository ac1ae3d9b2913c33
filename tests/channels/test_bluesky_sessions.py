"""A daemon in a restart loop logs in to Bluesky once, not once per start."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import WriteConfig
from tests.support.daemon import REPO, Daemon
from tests.support.fakes.common import standalone

pytestmark = pytest.mark.e2e

HANDLE = "library.bib.test"
PASSWORD = "abcd-efgh-ijkl-mnop"
STARTS = 40


def stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_fake/control", timeout=5) as answer:
        data: dict[str, int] = json.loads(answer.read())
    return data


def control(url: str, change: dict[str, object]) -> None:
    request = urllib.request.Request(f"{url}/_fake/control", data=json.dumps(change).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def ready(daemon: Daemon) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{daemon.ops_url}/readyz", timeout=2).read()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the daemon was not ready within 15 s:\n{daemon.logs()[-2000:]}")


def start_on_a_busy_port(daemon: Daemon) -> int:
    """`statusd run` on a port someone else holds: it must exit, having logged in nowhere."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "statusd", "--config", str(daemon.config), "--state-dir",
             str(daemon.state_dir), "run", "--port", str(port)],
            capture_output=True, env=daemon.env, cwd=REPO, timeout=60, check=False)
    return done.returncode


class TestRestartLoop:
    """40 starts (half of them failing on a busy port) make at most one createSession."""

    def test_forty_starts_one_login(self, write_config: WriteConfig, tmp_path: Path) -> None:
        with standalone("bluesky", "--handle", HANDLE, "--password", PASSWORD) as printed:
            url = printed[0]
            channels = (f"  sky: {{type: bluesky, language: fr, service: '{url}', handle: {HANDLE},"
                        " app_password: {env: SKY_PASSWORD}, timeout: 2s}")
            daemon = Daemon(write_config(channels), tmp_path / "state", env={"SKY_PASSWORD": PASSWORD})
            codes = []
            for start in range(STARTS):
                if start % 2:
                    codes.append(start_on_a_busy_port(daemon))
                    continue
                daemon.start()
                ready(daemon)  # the channels are open (logged in) only once it is ready
                if start == STARTS // 2:
                    control(url, {"expire": "access"})  # the kept token runs out meanwhile
                codes.append(daemon.terminate())
            counts = stats(url)
        assert codes[::2] == [0] * (STARTS // 2) and 0 not in codes[1::2]
        assert counts["session_creates"] == 1
        assert counts["refreshes"] == 1
        kept = tmp_path / "state" / "sessions" / "bluesky-sky.json"
        assert kept.stat().st_mode & 0o777 == 0o600
        assert PASSWORD not in kept.read_text() and PASSWORD not in daemon.logs()


class TestCheckLive:
    """`statusd check --live` reuses the daemon's kept login instead of making its own."""

    def test_three_checks_one_login(self, write_config: WriteConfig, tmp_path: Path) -> None:
        with standalone("bluesky", "--handle", HANDLE, "--password", PASSWORD) as printed:
            url = printed[0]
            channels = (f"  sky: {{type: bluesky, language: fr, service: '{url}', handle: {HANDLE},"
                        " app_password: {env: SKY_PASSWORD}, timeout: 2s}")
            daemon = Daemon(write_config(channels), tmp_path / "state", env={"SKY_PASSWORD": PASSWORD})
            outputs = [daemon.cli("check", "--live").stdout for _ in range(3)]
            counts = stats(url)
        assert all(f"posts as @{HANDLE}" in out for out in outputs), outputs
        assert counts["session_creates"] == 1
