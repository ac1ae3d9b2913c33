"""Whatever a browser or an attacker sends to the subscribe API, the answer is 201 or 400 with one sentence."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statusd.channels.webpush_store import store_file
from statusd.web.follow_checks import Invalid, endpoint_of, parse_subscription
from tests.conftest import BASE, CONSOLE, REPO
from tests.push.api import call, follow_server
from tests.push.conftest import push_channels
from tests.push.test_follow_api import keys, request

# Any text, lone surrogates included (JSON can carry them as \\ud800 escapes).
TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=300)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=20)
FIELDS = ("endpoint", "keys", "site", "kinds", "language", "expirationTime")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from statusd.channels.webpush_keys import generate

    root = tmp_path_factory.mktemp("follow")
    key = root / "vapid.pem"
    key.write_text(generate()[0], encoding="ascii")
    config = root / "statusd.yaml"
    config.write_text(BASE.format(alerts=REPO / "alerts", channels=CONSOLE + "\n" + push_channels(key),
                                  deadline="1h"), encoding="utf-8")
    with follow_server(config, root / "state") as url:
        yield url, root / "state"


def sentence(answer: dict[str, Any]) -> bool:
    error = answer.get("error", "")
    return isinstance(error, str) and 0 < len(error) < 400 and "\n" not in error and "Traceback" not in error


@pytest.mark.unit
class TestChecks:
    """The checks alone: any value either becomes a Subscription or raises Invalid, nothing else."""

    @given(st.dictionaries(st.sampled_from(FIELDS) | TEXT, JSON, max_size=8))
    def test_any_object(self, data: dict[str, Any]) -> None:
        try:
            parse_subscription(data, {"main": None}, ("fr",), loopback=False)
        except Invalid as err:
            assert "\n" not in str(err)

    @given(TEXT)
    def test_any_endpoint(self, text: str) -> None:
        try:
            kept = endpoint_of(text, loopback=False)
        except Invalid:
            return
        assert kept.startswith("https://") and kept.isascii() and len(kept) <= 1024


@pytest.mark.e2e
class TestOverHttp:
    """Through the server: arbitrary fields, surrogates and sizes never give a 5xx or store junk."""

    @settings(max_examples=150)
    @given(field=st.sampled_from(FIELDS), value=JSON)
    def test_one_field_anything(self, api: tuple[str, Path], field: str, value: Any) -> None:
        status, answer, _ = call(f"{api[0]}/push/subscribe", request(**{field: value}))
        assert status in (201, 400)
        assert status == 201 or sentence(answer)

    @settings(max_examples=60)
    @given(st.binary(max_size=6000))
    def test_any_bytes(self, api: tuple[str, Path], body: bytes) -> None:
        status, answer, _ = call(f"{api[0]}/push/subscribe", body)
        assert status == 400 and sentence(answer)

    @settings(max_examples=40)
    @given(size=st.integers(0, 5000), char=st.sampled_from(["a", "\ud800", "é", "\U0001f525", "%"]))
    def test_sizes(self, api: tuple[str, Path], size: int, char: str) -> None:
        body = json.dumps(request(endpoint="https://push.example/" + char * size)).encode()
        status, answer, _ = call(f"{api[0]}/push/subscribe", body)
        assert status in (201, 400) and (status == 201 or sentence(answer))

    @settings(max_examples=80)
    @given(st.dictionaries(st.sampled_from(["endpoint", "site"]) | TEXT, JSON, max_size=3))
    def test_unsubscribe_anything(self, api: tuple[str, Path], data: dict[str, Any]) -> None:
        status, answer, _ = call(f"{api[0]}/push/unsubscribe", data)
        assert status in (200, 400)
        assert status == 200 or sentence(answer)

    def test_only_well_formed_rows_are_kept(self, api: tuple[str, Path]) -> None:
        call(f"{api[0]}/push/subscribe", request(keys=keys()))
        db = sqlite3.connect(store_file(api[1]))
        try:
            stored = db.execute("SELECT endpoint, site, kinds, language FROM subscriptions").fetchall()
        finally:
            db.close()
        assert stored
        for endpoint, site, kinds, language in stored:
            assert endpoint.startswith("https://") and endpoint.isascii()
            assert (site, kinds in ("status", "all"), language in ("fr", "en")) == ("main", True, True)
