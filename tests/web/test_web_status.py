"""status.json: its documented schema, caching, CORS, and what it says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from statusd.model import Target
from statusd.web.doc import matches
from tests.web.test_web_support import FLOOD, NOW, Served, announced, entry, event, later
from tests.web.test_web_support import served as served_fixture

pytestmark = pytest.mark.e2e

served = served_fixture

SCHEMA = json.loads((Path(__file__).parent.parent.parent / "statusd/web/status.schema.json").read_text())
TYPES: dict[str, type] = {"object": dict, "array": list, "string": str, "null": type(None), "integer": int}


def check(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """A small structural check of the JSON Schema keywords status.schema.json uses."""
    if "$ref" in schema:
        return check(value, SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]], path)
    errors: list[str] = []
    for sub in schema.get("allOf", []):
        errors += check(value, sub, path)
    if "oneOf" in schema and sum(not check(value, sub, path) for sub in schema["oneOf"]) != 1:
        errors.append(f"{path}: matches not exactly one of oneOf")
    kinds = schema.get("type")
    if kinds and not isinstance(value, tuple(TYPES[k] for k in ([kinds] if isinstance(kinds, str) else kinds))):
        return [*errors, f"{path}: {value!r} is not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        errors += [f"{path}: missing {key}" for key in schema.get("required", []) if key not in value]
        props = schema.get("properties", {})
        for key, item in value.items():
            extra = schema.get("additionalProperties", True)
            if key in props:
                errors += check(item, props[key], f"{path}.{key}")
            elif extra is False and not schema.get("allOf"):
                errors.append(f"{path}: unexpected {key}")
            elif isinstance(extra, dict):
                errors += check(item, extra, f"{path}.{key}")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{path}: too many items")
        errors += [e for i, item in enumerate(value) for e in check(item, schema.get("items", {}), f"{path}[{i}]")]
    return errors


def busy_state(served: Served) -> None:
    wanted = {
        Target("main"): entry("closed", FLOOD, until=later(600)),
        Target("main", "wifi"): entry("limited", {"en": "Slow"}),
        Target("annexe"): entry("closed", {"en": "Works"}, starts=later(60 * 24), until=later(60 * 48)),
    }
    history = [event("main", "closed", "open", later(1), FLOOD), event("main/wifi", "limited", "open", NOW)]
    served.state.update(wanted, {**announced("main", "closed", later(1)), **announced("main/wifi", "limited", NOW)},
                        history, later(2))


class TestSchema:
    """status.json follows status.schema.json, quiet and busy alike."""

    @pytest.mark.parametrize("busy", [False, True])
    async def test_matches_schema(self, served: Served, busy: bool) -> None:
        if busy:
            busy_state(served)
        async with served.session.get(f"{served.url}/status.json") as response:
            data = await response.json()
        assert check(data, SCHEMA) == []

    def test_checker_catches_a_wrong_level(self) -> None:
        bad = {"generated_at": "x", "url": "u", "languages": ["en"], "updates": [],
               "sites": {"a": {"level": "shut"}}}
        assert any("shut" in error for error in check(bad, SCHEMA))

    async def test_updated_at_and_updates(self, served: Served) -> None:
        busy_state(served)
        data = json.loads(served.state.status.body)
        assert data["sites"]["main"]["updated_at"] == later(1).isoformat()
        assert data["sites"]["annexe"]["updated_at"] is None
        assert [u["target"] for u in data["updates"]] == ["main", "main/wifi"]
        assert data["updates"][0]["message"] == FLOOD
        assert data["sites"]["annexe"]["planned"]["level"] == "closed"


class TestCaching:
    """ETag and If-None-Match give 304; the body is made once per change."""

    async def test_304_on_matching_etag(self, served: Served) -> None:
        async with served.session.get(f"{served.url}/status.json") as first:
            etag = first.headers["ETag"]
            assert "max-age" in first.headers["Cache-Control"]
        for header in (etag, f'W/{etag}', f'"other", {etag}', "*"):
            async with served.session.get(f"{served.url}/status.json", headers={"If-None-Match": header}) as again:
                assert again.status == 304, header
                assert await again.read() == b""

    async def test_200_after_a_change(self, served: Served) -> None:
        etag = served.state.status.etag
        busy_state(served)
        async with served.session.get(f"{served.url}/status.json", headers={"If-None-Match": etag}) as response:
            assert response.status == 200
            assert response.headers["ETag"] != etag

    async def test_prepared_headers_stay_as_made(self, served: Served) -> None:
        """Headers made once per change are copied for each answer: no answer's own headers leak into the next."""
        etag, body = served.state.status.etag, served.state.status.body
        for _ in range(3):
            async with served.session.get(f"{served.url}/status.json", headers={"If-None-Match": etag}) as same:
                assert same.status == 304 and "Content-Type" not in same.headers and same.headers["ETag"] == etag
                assert same.headers["Access-Control-Allow-Origin"] == "*"
            async with served.session.get(f"{served.url}/status.json") as full:
                assert await full.read() == body
                assert full.headers["Content-Length"] == str(len(body)) and full.headers["ETag"] == etag
                assert full.headers["Content-Type"] == "application/json"

    async def test_serialised_once_per_change(self, served: Served) -> None:
        body = served.state.status.body
        served.state.update({}, {}, [], later(30))
        assert served.state.status.body is body

    @pytest.mark.parametrize(("header", "expected"), [
        (None, False), ('"a"', False), ('"b"', True), ('W/"b"', True), ('"a", "b"', True), ("*", True),
    ])
    def test_matches(self, header: str | None, expected: bool) -> None:
        assert matches(header, '"b"') is expected


class TestCors:
    """Any origin may read the public documents; preflight is answered."""

    @pytest.mark.parametrize("path", ["/status.json", "/events", "/feed.atom", "/cap.xml"])
    async def test_preflight(self, served: Served, path: str) -> None:
        headers = {"Origin": "http://other.test", "Access-Control-Request-Method": "GET",
                   "Access-Control-Request-Headers": "last-event-id"}
        async with served.session.options(f"{served.url}{path}", headers=headers) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert "GET" in response.headers["Access-Control-Allow-Methods"]
            assert "Last-Event-ID" in response.headers["Access-Control-Allow-Headers"]

    async def test_get_has_cors(self, served: Served) -> None:
        async with served.session.get(f"{served.url}/status.json", headers={"Origin": "http://x.test"}) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert "ETag" in response.headers["Access-Control-Expose-Headers"]


class TestStatic:
    """banner.js and static files are served for embedding anywhere, with a long cache."""

    async def test_banner_headers(self, served: Served, tmp_path: Path) -> None:
        (tmp_path / "banner.js").write_text("/* banner */\n")
        served.state.static.directory = tmp_path
        async with served.session.get(f"{served.url}/banner.js") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/javascript")
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
            assert "max-age=86400" in response.headers["Cache-Control"]
            etag = response.headers["ETag"]
        async with served.session.get(f"{served.url}/static/banner.js", headers={"If-None-Match": etag}) as again:
            assert again.status == 304

    @pytest.mark.parametrize("name", ["..%2Fserver.py", ".hidden.js", "server.py", "nope.css"])
    async def test_refuses_other_files(self, served: Served, name: str) -> None:
        async with served.session.get(f"{served.url}/static/{name}") as response:
            assert response.status == 404

    async def test_page_css(self, served: Served) -> None:
        async with served.session.get(f"{served.url}/static/page.css") as response:
            assert response.status == 200
            assert "prefers-reduced-motion" in await response.text()

    async def test_healthz(self, served: Served) -> None:
        async with served.session.get(f"{served.url}/healthz") as response:
            assert await response.json() == {"status": "ok"}
