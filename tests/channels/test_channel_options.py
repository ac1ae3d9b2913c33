"""Channel options: each type's Options dataclass, filled and checked at load from its type hints."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from statusd import loading
from statusd.channels import CHANNELS
from statusd.channels.mastodon import Mastodon
from statusd.channels.options import XOptions
from statusd.config.options import CaFile, Duration, HostPort, PathSegment, Url, parse_options
from statusd.config.reader import Problems, Section
from statusd.config.types import Secret
from statusd.errors import ConfigError

pytestmark = pytest.mark.unit

HEAD = """\
public_url: http://127.0.0.1:8080
languages: [fr]
sites:
  main: {name: {fr: Centrale}, timezone: Europe/Paris}
channels:
"""
# Each channel sits on line 6 of the file.
CHANNEL_LINE = 6


def problems(tmp_path: Path, channel: str) -> list[str]:
    path = tmp_path / "statusd.yaml"
    path.write_text(HEAD + "  " + channel + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    return [str(p).removeprefix(f"{path}:") for p in caught.value.problems]


class TestEveryOptionCheckedAtLoad:
    """A wrong option of any channel type is named by line and field when the file is loaded."""

    TOKEN = "{env: STATUSD_OPTIONS_TEST_TOKEN}"

    @pytest.mark.parametrize(
        ("channel", "field", "words"),
        [
            ("toot: {type: mastodon, instance: 'https://social.bib.fr', token: T, visibility: everyone}",
             "visibility", "should be one of public, unlisted, private, direct, got 'everyone'"),
            ("toot: {type: mastodon, instance: 'ftp://social.bib.fr', token: T}",
             "instance", "should be an http:// or https:// URL"),
            ("toot: {type: mastodon, instance: 'https://social.example.com', token: T}",
             "instance", "is the sample value"),
            ("toot: {type: mastodon, instance: 'https://social.bib.fr', token: T, timeout: soon}",
             "timeout", "should be a duration such as 30s"),
            ("x: {type: x, consumer_key: T, consumer_secret: T, access_token: T, access_token_secret: T,"
             " connect_to: '127.0.0.1'}", "connect_to", "should be HOST:PORT such as 127.0.0.1:8443"),
            ("x: {type: x, consumer_key: T, consumer_secret: T, access_token: T, access_token_secret: T,"
             " ca_file: /nonexistent/ca.pem}", "ca_file", "cannot be read as a PEM CA bundle"),
            ("fb: {type: facebook, page_id: 'my page/../feed', token: T}",
             "page_id", "should be an id of letters, digits"),
            ("fb: {type: facebook, page_id: '..', token: T}", "page_id", "should be an id of letters, digits"),
            ("sky: {type: bluesky, handle: [a], app_password: T}", "handle", "should be a non-empty text"),
            ("c: {type: console, max_chars: -1}", "max_chars", "should be a whole number of at least 0"),
            ("hook: {type: webhook, url: 'http://127.0.0.1:9/h', token: T}", "token", "unknown key"),
            ("hook: {type: webhook, url: 'http://127.0.0.1:9/h'}", "secret", "is required"),
            ("hook: {type: webhook, url: 'http://127.0.0.1:9/h', secret: hunter2}",
             "secret", "secrets are never written in statusd.yaml"),
        ],
    )
    def test_named_by_line_and_field(self, tmp_path: Path, channel: str, field: str, words: str) -> None:
        name = channel.partition(":")[0]
        found = problems(tmp_path, channel.replace(" T", " " + self.TOKEN))
        assert any(p.startswith(f"{CHANNEL_LINE}: channels.{name}.{field}: ") and words in p for p in found), found

    def test_every_registered_type_declares_frozen_options(self) -> None:
        for kind, cls in CHANNELS.items():
            assert cls.kind == kind
            assert cls.Options.__dataclass_params__.frozen, kind  # type: ignore[attr-defined]


class TestFilledValues:
    """The loaded options are the typed values the channel reads, defaults included."""

    def test_mastodon(self, tmp_path: Path) -> None:
        path = tmp_path / "statusd.yaml"
        path.write_text(HEAD + "  toot: {type: mastodon, instance: 'https://social.bib.fr',"
                        " token: {env: STATUSD_OPTIONS_UNSET}, timeout: 4s}\n", encoding="utf-8")
        config = loading.load(path)
        assert "toot" in config.inactive  # the token is not set, the options are still checked
        assert Mastodon.Options.__dataclass_fields__["visibility"].default == "public"

    def test_x_types(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("STATUSD_OPTIONS_TEST_TOKEN", "k3y-real")
        token = "{env: STATUSD_OPTIONS_TEST_TOKEN}"
        path = tmp_path / "statusd.yaml"
        path.write_text(HEAD + f"  x: {{type: x, consumer_key: {token}, consumer_secret: {token},"
                        f" access_token: {token}, access_token_secret: {token}, connect_to: '127.0.0.1:8443',"
                        " timeout: 2m}\n", encoding="utf-8")
        options: XOptions = loading.load(path).channels["x"].options
        assert isinstance(options.connect_to, HostPort) and options.connect_to == "127.0.0.1:8443"
        assert isinstance(options.timeout, Duration) and options.timeout == 120.0
        assert options.ca_file is None
        assert options.access_token == Secret("env", "STATUSD_OPTIONS_TEST_TOKEN")


@dataclass(frozen=True)
class Sample:
    """Every kind of hint the generic parser reads."""

    url: Url
    key: Secret
    mode: Literal["a", "b"] = "a"
    wait: Duration | None = None
    count: int = 1
    flag: bool = False
    note: str | None = None
    ca: CaFile | None = None
    page: PathSegment | None = None


class TestGenericParser:
    """One parser fills any frozen dataclass from its type hints, every problem collected."""

    def parse(self, node: dict[str, object]) -> tuple[Sample | None, list[str]]:
        problems = Problems("f.yaml")
        sample, _ = parse_options(Section(node, "s", problems), Sample)
        return sample, [f"{p.field}: {p.text}" for p in problems.found]

    def test_filled(self) -> None:
        sample, found = self.parse({"url": "https://bib.fr", "key": {"file": "/k"}, "mode": "b", "wait": "5m",
                                    "count": 3, "flag": True, "note": "n", "page": 12345})
        assert found == []
        assert sample == Sample(Url("https://bib.fr"), Secret("file", "/k"), "b", Duration(300.0), 3, True, "n",
                                None, PathSegment("12345"))

    def test_all_problems_together(self) -> None:
        sample, found = self.parse({"mode": "c", "flag": "yes", "count": "3"})
        assert sample is None
        assert found == [
            "s.url: is required",
            "s.key: is required",
            "s.mode: should be one of a, b, got 'c'",
            "s.count: should be a whole number of at least 0, got '3'",
            "s.flag: should be true or false, got 'yes'",
        ]


class TestSampleSecretsRefused:
    """The daemon refuses a documentation sample secret exactly as `statusd check` does."""

    def test_a_feed_token_too(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Feeds read secrets through the same parser, so a sample feed token is refused the same way."""
        monkeypatch.setenv("STATUSD_OPTIONS_FEED", "ChangeMe")
        path = tmp_path / "statusd.yaml"
        path.write_text(HEAD + "  c: {type: console}\nfeeds:\n  counters: {type: http, token: {env: STATUSD_OPTIONS_FEED}}\n",
                        encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            loading.load(path)
        assert [str(p) for p in caught.value.problems] == [
            f"{path}:{CHANNEL_LINE + 2}: feeds.counters.token: environment variable STATUSD_OPTIONS_FEED"
            " holds a sample value; set the real secret"]

    @pytest.mark.e2e
    def test_run_and_check_report_the_same_problem(self, tmp_path: Path) -> None:
        path = tmp_path / "statusd.yaml"
        path.write_text(HEAD + "  hook: {type: webhook, url: 'http://127.0.0.1:9/h',"
                        " secret: {env: STATUSD_OPTIONS_SAMPLE}}\n", encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "STATUSD_OPTIONS_SAMPLE": "changeme", "STATUSD_STATE_DIR": str(tmp_path)}
        said = {}
        for command in ("run", "check"):
            done = subprocess.run([sys.executable, "-m", "statusd", "--config", str(path), command],
                                  capture_output=True, text=True, env=env, timeout=60, check=False)
            said[command] = (done.returncode, done.stdout + done.stderr)
        wanted = (f"{path}:{CHANNEL_LINE}: channels.hook.secret: environment variable STATUSD_OPTIONS_SAMPLE"
                  " holds a sample value; set the real secret")
        assert said["run"][0] == 78 and wanted in said["run"][1]
        assert said["check"][0] != 0 and wanted in said["check"][1]
