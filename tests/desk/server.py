"""A running daemon with desk accounts, for the desk API and remote command tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import ALERTS, BASE, CONSOLE
from tests.support.daemon import Daemon

PASSWORD = "correct horse battery staple"
# name → (display name, role, sites)
PEOPLE = {
    "annexe-desk": ("Annexe desk", "desk", "annexe"),
    "main-desk": ("Main desk", "desk", "main"),
    "main-lead": ("Main lead", "lead", "main"),
    "boss": ("The boss", "admin", ""),
}


@dataclass
class DeskServer:
    """The daemon, and a personal token per account."""

    daemon: Daemon
    root: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.daemon.url

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                return answer.status, _json(answer.read())
        except urllib.error.HTTPError as err:
            return err.code, _json(err.read())

    def state(self) -> tuple[bytes, list[Any]]:
        """Everything a request could change: status.yaml and every table but the login counts."""
        import sqlite3

        db = sqlite3.connect(f"file:{self.daemon.state_dir / 'statusd.db'}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                               " AND name NOT IN ('desk_failures', 'sqlite_sequence')"
                                               " ORDER BY name")]
            rows = [(t, db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()) for t in tables]
        finally:
            db.close()
        return (self.root / "status.yaml").read_bytes(), rows


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {"raw": raw.decode(errors="replace")}  # a page, not the API
    return value if isinstance(value, dict) else {"raw": value}


def start(root: Path, extra: str = "") -> DeskServer:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "statusd.yaml"
    config.write_text(BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h") + extra, encoding="utf-8")
    (root / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
    daemon = Daemon(config, root / "state").start()
    server = DeskServer(daemon, root)
    for name, (display, role, sites) in PEOPLE.items():
        args = ["user", "add", name, "--name", display, "--role", role] + (["--sites", sites] if sites else [])
        link = daemon.cli(*args).stdout.strip().splitlines()[-1]
        code = link.rsplit("/", 1)[1]
        status, _ = server.call("POST", "/api/v1/enrol", {"code": code, "password": PASSWORD})
        assert status == 200
        status, answer = server.call("POST", "/api/v1/login", {"account": name, "password": PASSWORD})
        assert status == 200, answer
        server.tokens[name] = answer["token"]
    return server
