"""The subscribe API: strict checks, one sentence for a bad request, and nothing kept but the subscription."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from statusd.channels.webpush_store import store_file
from tests.conftest import WriteConfig
from tests.push.api import call, follow_server
from tests.push.conftest import push_channels

pytestmark = pytest.mark.e2e


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def keys() -> dict[str, str]:
    public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"p256dh": b64(public), "auth": b64(os.urandom(16))}


def request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc:DEF-123", "expirationTime": None,
                            "keys": keys(), "site": "main", "kinds": "status", "language": "fr"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.fixture
def api(write_config: WriteConfig, vapid: tuple[Path, str], tmp_path: Path) -> Iterator[str]:
    with follow_server(write_config(channels=push_channels(vapid[0])), tmp_path / "state") as url:
        yield url


def rows(tmp_path: Path) -> list[tuple[Any, ...]]:
    if not store_file(tmp_path / "state").exists():
        return []
    db = sqlite3.connect(store_file(tmp_path / "state"))
    try:
        return db.execute("SELECT * FROM subscriptions").fetchall()
    finally:
        db.close()


class TestSubscribe:
    """A good subscription is stored with its choices and the day, and nothing else."""

    def test_stored_exactly(self, api: str, tmp_path: Path) -> None:
        body = request(kinds="all", language="en")
        status, answer, headers = call(f"{api}/push/subscribe", body)
        assert status == 201, answer
        assert "Set-Cookie" not in headers
        [(_, endpoint, p256dh, auth, site, kinds, language, created)] = rows(tmp_path)
        assert (endpoint, p256dh, auth, site, kinds, language) == (
            body["endpoint"], body["keys"]["p256dh"], body["keys"]["auth"], "main", "all", "en")
        assert len(created) == 10  # the day only: YYYY-MM-DD

    def test_the_offer(self, api: str, vapid: tuple[Path, str]) -> None:
        with urllib.request.urlopen(f"{api}/push/config.json") as response:
            offer = json.loads(response.read())
        assert offer == {"key": vapid[1], "languages": ["fr", "en"], "sites": ["main", "annexe"]}

    def test_the_service_worker_is_served_beside_the_page(self, api: str) -> None:
        with urllib.request.urlopen(f"{api}/sw.js") as response:
            assert response.headers["Content-Type"].startswith("text/javascript")
            assert b"notificationclick" in response.read()

    def test_again_changes_the_choices_not_the_count(self, api: str, tmp_path: Path) -> None:
        body = request()
        call(f"{api}/push/subscribe", body)
        call(f"{api}/push/subscribe", {**body, "kinds": "all"})
        assert [row[5] for row in rows(tmp_path)] == ["all"]

    def test_stop_one_site_then_all(self, api: str, tmp_path: Path) -> None:
        body = request()
        call(f"{api}/push/subscribe", body)
        call(f"{api}/push/subscribe", {**body, "site": "annexe"})
        status, answer, _ = call(f"{api}/push/unsubscribe", {"endpoint": body["endpoint"], "site": "main"})
        assert (status, answer) == (200, {"removed": 1})
        assert [row[4] for row in rows(tmp_path)] == ["annexe"]
        status, answer, _ = call(f"{api}/push/subscribe", {"endpoint": body["endpoint"]}, method="DELETE")
        assert (status, answer, rows(tmp_path)) == (200, {"removed": 1}, [])


class TestRefused:
    """Each bad request gets 400 and one sentence naming the field; nothing is stored."""

    @pytest.mark.parametrize(("changes", "words"), [
        ({"endpoint": "http://push.example/x"}, "endpoint should start with https://"),
        ({"endpoint": "http://127.0.0.1/x"}, "endpoint should start with https://"),
        ({"endpoint": "https://user:pw@push.example/x"}, "without a user name"),
        ({"endpoint": "https://push.example/" + "a" * 1100}, "at most 1024"),
        ({"endpoint": "https://push.example/\u00e9"}, "printable ASCII"),
        ({"endpoint": 12}, "endpoint should be"),
        ({"endpoint": ...}, "endpoint should be"),
        ({"keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh should be 65 bytes"),
        ({"keys": {"p256dh": b64(b"\x04" + b"\x01" * 64), "auth": b64(b"a" * 16)}}, "P-256 public key"),
        ({"keys": {"p256dh": keys()["p256dh"], "auth": "!!"}}, "keys.auth should be base64url"),
        ({"keys": {"p256dh": keys()["p256dh"], "auth": b64(b"x" * 8)}}, "keys.auth should be 16 bytes"),
        ({"keys": [1, 2]}, "keys should be a JSON object"),
        ({"site": "nowhere"}, "site should be one of main, annexe"),
        ({"kinds": "everything"}, "kinds should be one of status, all"),
        ({"language": "sv"}, "language should be one of fr, en"),
        ({"cookie": "x"}, "unknown field 'cookie'"),
    ])
    def test_bad_field(self, api: str, tmp_path: Path, changes: dict[str, Any], words: str) -> None:
        status, answer, _ = call(f"{api}/push/subscribe", request(**changes))
        assert status == 400
        assert words in answer["error"] and "\n" not in answer["error"]
        assert rows(tmp_path) == []

    @pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[" * 3000 + b"]" * 3000, b"x" * 5000, b"null"])
    def test_bad_body(self, api: str, body: bytes) -> None:
        status, answer, _ = call(f"{api}/push/subscribe", body)
        assert status == 400 and answer["error"]


class TestLoopback:
    """http://127.0.0.1 endpoints are taken only when a channel says loopback_endpoints: true."""

    @pytest.mark.parametrize(("loopback", "status"), [(True, 201), (False, 400)])
    def test_setting(self, write_config: WriteConfig, vapid: tuple[Path, str], tmp_path: Path,
                     loopback: bool, status: int) -> None:
        config = write_config(channels=push_channels(vapid[0], loopback=loopback))
        with follow_server(config, tmp_path / "state") as url:
            got, _, _ = call(f"{url}/push/subscribe", request(endpoint="http://127.0.0.1:9999/push/x"))
        assert got == status
