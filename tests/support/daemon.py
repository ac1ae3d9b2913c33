"""Run the real daemon as a separate process, as systemd would, for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


class Daemon:
    """`statusd run` in a subprocess, with its own config, state directory and port."""

    def __init__(self, config: Path, state_dir: Path, env: dict[str, str] | None = None,
                 umask: int | None = None) -> None:
        self.config = config
        self.state_dir = state_dir
        # 0 until the first start: the daemon binds port 0 itself and logs the port it got
        # (no bind-close-reuse race). A restart asks for that same port again, as the
        # pages and banners under test still point there.
        self.port = 0
        self.ops_port = 0  # the operator's listener (/readyz, /metrics), learnt the same way
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.umask = umask  # as systemd's UMask= would set it
        self.log = config.parent / "daemon.log"
        self.out = config.parent / "daemon.out"

    def start(self, timeout: float = 15.0) -> Daemon:
        seen = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log, self.out.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "statusd", "--config", str(self.config), "--state-dir",
                 str(self.state_dir), "run", "--port", str(self.port), "--ops-port", str(self.ops_port)],
                stdout=out, stderr=log, cwd=self.config.parent, env=self.env,
                preexec_fn=None if self.umask is None else partial(os.umask, self.umask),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()}")
            if not (self.port and self.ops_port):
                self.port, self.ops_port = _started_ports(self.log, seen) or (self.port, self.ops_port)
            if not (self.port and self.ops_port):
                time.sleep(0.05)
                continue
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"daemon did not answer within {timeout} s:\n{self.log.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash or power-cut of the process."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a `statusd` command against this daemon's files, as desk staff would."""
        result = subprocess.run(
            [sys.executable, "-m", "statusd", "--config", str(self.config), "--state-dir",
             str(self.state_dir), *args],
            capture_output=True, text=True, env=self.env, cwd=self.config.parent, timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"statusd {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result


def _started_ports(log: Path, offset: int) -> tuple[int, int] | None:
    """The public and operator ports in the `daemon_started` line written after `offset`, if any yet."""
    with log.open("rb") as handle:
        handle.seek(offset)
        for line in handle.read().decode("utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == "daemon_started":
                return int(entry["port"]), int(entry["ops_port"])
    return None
