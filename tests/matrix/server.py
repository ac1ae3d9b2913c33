"""A real Synapse homeserver on 127.0.0.1 (SQLite), for tests/test_matrix_synapse.py.

    with running_synapse(data_dir) as synapse:
        bot = synapse.register("bot")           # Account(user_id, access_token, device_id)
        room = synapse.create_room(bot, "biblio")
        synapse.kill(); synapse.start()         # SIGKILL, then the same server again (same database)

install.sh runs first (it returns at once when the install is current). Synapse runs from its own
venv (tests/matrix/.venv); accounts are made with the shared-secret registration API, as
`register_new_matrix_user` does. Rate limits are lifted so tests are not throttled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
PYTHON = HERE / ".venv" / "bin" / "python"
START_TIMEOUT = 40.0
SHARED_SECRET = "shared-secret-for-tests-only-0123456789"
SERVER_NAME = "localhost"
_UNLIMITED = "{per_second: 10000, burst_count: 10000}"


def _config(port: int, data: Path) -> str:
    """homeserver.yaml: loopback only, SQLite, no federation, no rate limits, shared-secret registration."""
    return f"""\
server_name: "{SERVER_NAME}"
public_baseurl: "http://127.0.0.1:{port}/"
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources: [{{names: [client], compress: false}}]
database:
  name: sqlite3
  args: {{database: "{data}/homeserver.db"}}
media_store_path: "{data}/media"
signing_key_path: "{data}/signing.key"
registration_shared_secret: "{SHARED_SECRET}"
macaroon_secret_key: "macaroon-secret-for-tests-0123456789"
form_secret: "form-secret-for-tests-0123456789"
report_stats: false
enable_metrics: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
rc_message: {_UNLIMITED}
rc_registration: {_UNLIMITED}
rc_room_creation: {_UNLIMITED}
rc_joins: {{local: {_UNLIMITED}, remote: {_UNLIMITED}}}
rc_login: {{address: {_UNLIMITED}, account: {_UNLIMITED}, failed_attempts: {_UNLIMITED}}}
"""


class SynapseUnavailable(RuntimeError):
    """Synapse could not be installed or started; the message says why."""


@dataclass(frozen=True)
class Account:
    """A user on the homeserver, logged in on one device."""

    user_id: str
    access_token: str
    device_id: str


class Synapse:
    """One Synapse process over one data directory; stop, kill and start it again at will."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        (data / "homeserver.yaml").write_text(_config(self.port, data), encoding="utf-8")

    def start(self) -> float:
        """Start and wait until the client API answers; the seconds it took."""
        started = time.monotonic()
        if not (self.data / "signing.key").exists():
            self._synapse("--generate-keys").wait(timeout=60)
        self._log = (self.data / "synapse.log").open("ab")
        self._process = self._synapse()
        while time.monotonic() - started < START_TIMEOUT:
            if self._process.poll() is not None:
                break
            try:
                self.call("GET", "/_matrix/client/versions")
                return time.monotonic() - started
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        tail = (self.data / "synapse.log").read_bytes()[-4000:].decode(errors="replace")
        self.stop()
        raise SynapseUnavailable(f"Synapse did not answer within {START_TIMEOUT:g} s:\n{tail}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash or an OOM kill."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()
        self._process = None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        """One request with the standard library (so the check does not share statusd's client)."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def register(self, username: str) -> Account:
        """A new user, by the shared-secret registration API (what register_new_matrix_user does)."""
        nonce = self.call("GET", "/_synapse/admin/v1/register")["nonce"]
        password = f"password-of-{username}"
        mac = hmac.new(SHARED_SECRET.encode(), b"\x00".join(
            [nonce.encode(), username.encode(), password.encode(), b"notadmin"]), hashlib.sha1).hexdigest()
        made = self.call("POST", "/_synapse/admin/v1/register",
                         {"nonce": nonce, "username": username, "password": password, "admin": False, "mac": mac})
        return Account(made["user_id"], made["access_token"], made["device_id"])

    def create_room(self, owner: Account, alias: str) -> str:
        """A public room with alias #alias:localhost; its room id."""
        made = self.call("POST", "/_matrix/client/v3/createRoom",
                         {"room_alias_name": alias, "preset": "public_chat", "name": alias}, owner.access_token)
        room_id: str = made["room_id"]
        return room_id

    def messages(self, reader: Account, room_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The room's m.room.message events as `reader` sees them, oldest first."""
        room = quote(room_id, safe="")
        filter_ = quote(json.dumps({"types": ["m.room.message"]}))
        data = self.call("GET", f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit={limit}&filter={filter_}",
                         token=reader.access_token)
        return list(reversed(data["chunk"]))

    def _synapse(self, *more: str) -> subprocess.Popen[bytes]:
        config = str(self.data / "homeserver.yaml")
        return subprocess.Popen([str(PYTHON), "-m", "synapse.app.homeserver", "-c", config, *more],
                                cwd=self.data, stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT)


def install() -> None:
    """Run install.sh; SynapseUnavailable with its output if it fails."""
    done = subprocess.run(["bash", str(HERE / "install.sh")], capture_output=True, text=True,
                          timeout=1800, check=False)
    if done.returncode != 0:
        raise SynapseUnavailable(f"tests/matrix/install.sh failed ({done.returncode}):\n"
                                 f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


@contextmanager
def running_synapse(data: Path) -> Iterator[Synapse]:
    """A started Synapse over `data`, stopped on exit."""
    install()
    synapse = Synapse(data)
    synapse.start()
    try:
        yield synapse
    finally:
        synapse.stop()


def _free_port() -> int:
    # Synapse takes its port from the config file: pick a free one and hand it over.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
