"""Run the real daemon as a separate process, as systemd would, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    """`statusd run` in a subprocess, with its own config, state directory and port."""

    def __init__(self, config: Path, state_dir: Path, env: dict[str, str] | None = None,
                 umask: int | None = None) -> None:
        self.config = config
        self.state_dir = state_dir
        self.port = free_port()
        self.ops_port = free_port()  # the operator's listener: /readyz and /metrics
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.umask = umask  # as systemd's UMask= would set it
        self.log = config.parent / "daemon.log"
        self.out = config.parent / "daemon.out"

    def start(self, timeout: float = 15.0) -> Daemon:
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
