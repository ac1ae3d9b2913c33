"""Raw HTTP requests to a running daemon, and a picture of all the state a request could change."""

from __future__ import annotations

import http.client
import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Answer:
    """What the daemon answered: status, headers (lower-cased names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        head = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.status}\n{head}\n\n{self.body.decode('utf-8', errors='replace')}"


def send(port: int, method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes | None = None, timeout: float = 10.0) -> Answer:
    """One request on its own connection; an event stream's body is not waited for."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        got = {k.lower(): v for k, v in response.getheaders()}
        streaming = "text/event-stream" in got.get("content-type", "")
        return Answer(response.status, got, b"" if streaming else response.read())
    finally:
        conn.close()


@dataclass(frozen=True)
class Picture:
    """Everything an unauthenticated request must leave alone."""

    etag: str
    status_json: bytes
    status_yaml: bytes
    events: int
    deliveries: int
    readings: tuple[str, ...]


def picture(port: int, ops_port: int, status_file: Path, store: Path) -> Picture:
    answer = send(port, "GET", "/status.json")
    assert answer.status == 200, answer.text
    metrics = send(ops_port, "GET", "/metrics").body.decode()
    readings = tuple(line for line in metrics.splitlines() if line.startswith("statusd_readings_total"))
    events, deliveries = count_rows(store)
    return Picture(answer.headers.get("etag", ""), answer.body, status_file.read_bytes(), events,
                   deliveries, readings)


def count_rows(store: Path) -> tuple[int, int]:
    """(events, deliveries) in the store, read without taking a write lock."""
    if not store.exists():
        return 0, 0
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    try:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        deliveries = db.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        return int(events), int(deliveries)
    finally:
        db.close()


def delivery_rows(store: Path) -> list[tuple[str, str, str | None, str | None]]:
    """(channel, state, last_error, message) of every post (a deletion queued by an undo while a
    post was still in doubt is "sent" with nothing to delete: it is no post of that channel)."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT channel, state, last_error, message FROM deliveries WHERE action = 'post' ORDER BY id")
        return [(str(a), str(b), c, d) for a, b, c, d in rows]
    finally:
        db.close()
