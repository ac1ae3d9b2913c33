"""statusd.yaml: checked once at load, every problem reported with its line and field."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from statusd import loading
from statusd.config import load as config_module
from statusd.errors import ConfigError

pytestmark = pytest.mark.unit

GOOD = """\
public_url: http://127.0.0.1:8080
languages: [fr, en]
sites:
  main:
    name: {fr: Centrale, en: Central}
    timezone: Europe/Paris
    hours: {mo-fr: "09:00-20:00", sa: "10:00-12:30, 14:00-18:00", su: closed}
channels:
  console: {type: console, language: en}
"""


def load(tmp_path: Path, text: str) -> config_module.Config:
    path = tmp_path / "statusd.yaml"
    path.write_text(text, encoding="utf-8")
    return loading.load(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return [str(p) for p in caught.value.problems]


class TestGoodConfig:
    """A correct file loads into frozen values with sensible defaults."""

    def test_loads(self, tmp_path: Path) -> None:
        config = load(tmp_path, GOOD)
        assert config.languages == ("fr", "en")
        assert config.sites["main"].url == "http://127.0.0.1:8080/#main"
        assert config.status_file == tmp_path / "status.yaml"
        assert config.delivery.deadline == 6 * 3600

    def test_opening_hours(self, tmp_path: Path) -> None:
        hours = load(tmp_path, GOOD).sites["main"].hours
        assert hours[0] == ((time(9), time(20)),)
        assert hours[5] == ((time(10), time(12, 30)), (time(14), time(18)))
        assert hours[6] == ()

    def test_frozen(self, tmp_path: Path) -> None:
        config = load(tmp_path, GOOD)
        with pytest.raises(AttributeError):
            config.port = 1  # type: ignore[misc]


MISTAKES = [
    ("unknown top-level key", GOOD + "chanels: {}\n", "statusd.yaml:10: chanels: unknown key"),
    ("typo in a site key", GOOD.replace("    timezone:", "    timezon:"), "statusd.yaml:6: sites.main.timezon: unknown key"),
    ("unknown time zone", GOOD.replace("Europe/Paris", "Paris"), "sites.main.timezone: unknown time zone 'Paris'"),
    ("unknown channel type", GOOD.replace("type: console", "type: pager"), "channels.console.type: unknown channel type 'pager'"),
    ("language not configured", GOOD.replace("language: en", "language: de"), "channels.console.language: 'de' is not one of"),
    ("secret written in the file", GOOD + "  hook: {type: webhook, url: 'http://127.0.0.1:9/h', secret: hunter2}\n", "secrets are never written in statusd.yaml"),
    ("sample URL left in", GOOD.replace("http://127.0.0.1:8080", "https://status.example.org"), "is the sample value"),
    ("bad duration", GOOD + "delivery: {deadline: soon}\n", "delivery.deadline: should be a duration"),
    ("bad hours", GOOD.replace('sa: "10:00-12:30, 14:00-18:00"', 'sa: "10-18"'), "sites.main.hours.sa: should be"),
    ("bad weekday", GOOD.replace("su: closed", "sun: closed"), "sites.main.hours.sun: should be a day"),
    ("zone without capacity", GOOD.replace("    hours:", "    zones: {floor1: {name: Étage}}\n    hours:"), "sites.main.zones.floor1.capacity: is required"),
    ("unknown hold kind", GOOD + "delivery: {hold: {desk: 20s}}\n", "delivery.hold.desk: unknown key"),
    ("no channels", GOOD.split("channels:")[0], "channels: at least one channel is required"),
    ("webhook without url", GOOD + "  hook: {type: webhook, secret: {env: X}}\n", "channels.hook.url: is required"),
    ("site id with capitals", GOOD.replace("  main:", "  Main:"), "sites.Main: should be lower-case"),
]


class TestMistakes:
    """What people get wrong is reported with the file, line and field, all at once."""

    @pytest.mark.parametrize(("case", "text", "expected"), MISTAKES, ids=[m[0] for m in MISTAKES])
    def test_reported(self, tmp_path: Path, case: str, text: str, expected: str) -> None:
        found = problems(tmp_path, text)
        assert any(expected in p for p in found), found

    def test_all_problems_together(self, tmp_path: Path) -> None:
        text = GOOD.replace("Europe/Paris", "Mars/Olympus").replace("type: console", "type: fax") + "extra: 1\n"
        assert len(problems(tmp_path, text)) == 3

    def test_empty_file(self, tmp_path: Path) -> None:
        assert any("the file is empty" in p for p in problems(tmp_path, ""))

    def test_yaml_syntax_error_has_line_and_column(self, tmp_path: Path) -> None:
        found = problems(tmp_path, "sites: [main\nchannels: {}\n")
        assert found and found[0].startswith(f"{tmp_path / 'statusd.yaml'}:2:")


class TestSecrets:
    """Secrets come from the environment or files, and a channel without its secret stays off."""

    HOOK = GOOD + "  hook: {type: webhook, url: 'http://127.0.0.1:9/h', secret: {env: TEST_HOOK_SECRET_CFG}}\n"

    def test_unset_secret_leaves_the_channel_off(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("TEST_HOOK_SECRET_CFG", raising=False)
        config = load(tmp_path, self.HOOK)
        assert "hook" not in config.channels
        assert "TEST_HOOK_SECRET_CFG" in config.inactive["hook"]

    def test_set_secret_switches_it_on(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TEST_HOOK_SECRET_CFG", "s3cret-value")
        config = load(tmp_path, self.HOOK)
        assert config.channels["hook"].secrets["secret"].read() == "s3cret-value"
        assert "s3cret-value" not in repr(config)

    def test_credential_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "hook").write_text("from-systemd\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
        config = load(tmp_path, self.HOOK.replace("{env: TEST_HOOK_SECRET_CFG}", "{credential: hook}"))
        assert config.channels["hook"].secrets["secret"].read() == "from-systemd"

    def test_a_credential_file_that_is_not_text_leaves_the_channel_off(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Bytes that are not UTF-8 (a key file copied by mistake): the channel is off, named by its file."""
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "hook").write_bytes(b"\xff\xfe\x00binary-key\x80")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
        config = load(tmp_path, self.HOOK.replace("{env: TEST_HOOK_SECRET_CFG}", "{credential: hook}"))
        assert "hook" not in config.channels
        assert config.inactive["hook"] == "off until credential hook is set"

    def test_sample_secret_value_is_flagged(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TEST_HOOK_SECRET_CFG", "changeme")
        assert problems(tmp_path, self.HOOK) == [
            f"{tmp_path / 'statusd.yaml'}:10: channels.hook.secret: environment variable TEST_HOOK_SECRET_CFG"
            " holds a sample value; set the real secret"
        ]


class TestShipped:
    """The shipped statusd.yaml loads as it is."""

    def test_shipped_config_loads(self) -> None:
        repo = Path(__file__).resolve().parent.parent.parent
        config = loading.load(repo / "statusd.yaml")
        assert {"main", "annexe"} <= set(config.sites)
        assert config.sites["main"].zones and config.sites["main"].queues
        assert {c.language for c in config.channels.values()} == {"fr", "en", "sv"}


class TestFullExample:
    """examples/statusd.full.yaml loads, with every channel off until its secret is set."""

    def test_loads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
        repo = Path(__file__).resolve().parent.parent.parent
        config = loading.load(repo / "examples" / "statusd.full.yaml")
        assert set(config.channels) == {"console"}
        assert set(config.inactive) == {"mastodon-fr", "x-en", "facebook-fr", "bluesky-en", "telegram-fr",
                                        "matrix-en", "google-main", "staff-mail", "push-fr", "push-en", "signage"}
        assert config.delivery.hold == {"staff": 20.0, "emergency": 0.0}
        assert set(config.feeds.feeds) == {"counters", "fire-panel", "broker", "axis"}
