"""A real Mosquitto broker on 127.0.0.1, on a free port, with its own config, for MQTT tests.

`make test` installs the broker (tests/install-mosquitto.sh). Use the
`mosquitto` fixture (import it into a test module); `restart()` stops and
starts the broker on the same port, as when a broker is upgraded.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)
    if found is None:
        raise RuntimeError("mosquitto is not installed; run tests/install-mosquitto.sh (make test does)")
    return found


class Mosquitto:
    """One broker process listening on 127.0.0.1:port."""

    def __init__(self, directory: Path) -> None:
        self.port = _unused_port()
        self.config = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker; on a first start, on another port if the chosen one was taken meanwhile.

        Mosquitto cannot bind port 0 and report it (its `listener 0` is a unix socket), so
        the port is chosen ahead; a broker that cannot bind exits, and another port is tried.
        """
        for _ in range(5):
            if self._launch(timeout):
                return self
            if self.restarted:
                break
            self.port = _unused_port()
        raise RuntimeError(f"mosquitto could not listen:\n{self.log.read_text(errors='replace')}")

    restarted = False

    def _launch(self, timeout: float) -> bool:
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n", encoding="utf-8")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
                continue
            # Something listens; it is our broker only if the broker is still running.
            time.sleep(0.05)
            return self.proc.poll() is None
        raise RuntimeError(f"mosquitto did not listen within {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        """Stop and start on the same port: clients under test reconnect there."""
        self.stop()
        self.restarted = True
        self.start()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running broker, stopped after the test."""
    broker = Mosquitto(tmp_path).start()
    try:
        yield broker
    finally:
        broker.stop()


def _unused_port() -> int:
    """A port nothing listens on now; the broker may still lose it, and `start` then tries another."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
