"""web.hub in statusd.yaml: the nchan publisher's URL with {channel}, refused with its line otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.test_config import GOOD, load, problems

pytestmark = pytest.mark.unit


class TestHubConfig:
    """A publisher URL with `{channel}` once is taken as it is; anything else names line and field."""

    def test_loads(self, tmp_path: Path) -> None:
        config = load(tmp_path, GOOD + "web: {hub: 'http://127.0.0.1:8081/pub/{channel}'}\n")
        assert config.web.hub == "http://127.0.0.1:8081/pub/{channel}"

    def test_off_by_default(self, tmp_path: Path) -> None:
        assert load(tmp_path, GOOD).web.hub is None

    @pytest.mark.parametrize(("value", "expected"), [
        ("'http://127.0.0.1:8081/pub/all'", "web.hub: should hold {channel} once"),
        ("'http://127.0.0.1:8081/pub/{channel}/{channel}'", "web.hub: should hold {channel} once"),
        ("'http://127.0.0.1:8081/pub/{site}'", "web.hub: should hold {channel} once"),
        ("'127.0.0.1:8081/pub/{channel}'", "web.hub: should be an http:// or https:// URL"),
        ("'https://hub.example.org/pub/{channel}'", "is the sample value"),
        ("[a]", "web.hub: should be"),
    ])
    def test_mistakes(self, tmp_path: Path, value: str, expected: str) -> None:
        found = problems(tmp_path, GOOD + f"web:\n  hub: {value}\n")
        assert len(found) == 1 and expected in found[0], found
        assert "statusd.yaml:11: " in found[0], found  # the line of `hub:`
