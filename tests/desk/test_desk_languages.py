"""Every channel in its own language, honestly: fallback chains, the preview saying so, `require:`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from statusd import loading as config_module
from statusd.commands import main
from statusd.compose.composer import Composer
from statusd.config.load import Config
from statusd.errors import ConfigError
from statusd.events import Event, EventKind
from statusd.model import Level, Target
from tests.conftest import WriteConfig

pytestmark = pytest.mark.unit

CHANNELS = """  sv_own: {type: console, language: sv}
  sv_en: {type: console, language: sv, fallback: [en, fr]}
  en: {type: console, language: en}
  fr: {type: console, language: fr}"""


def _event(message: dict[str, str]) -> Event:
    return Event(EventKind.STATUS_CHANGED, Target("main"), Level.CLOSED, Level.OPEN, message,
                 datetime(2031, 3, 4, 9, 0, tzinfo=UTC), "desk", "r1")


def _text(config: Config, channel: str, message: dict[str, str]) -> tuple[str, str]:
    posted = Composer(config).render(_event(message), config.channels[channel], None, len)
    return posted.language, posted.text


class TestFallback:
    """A channel without text in its language posts wholly in the first language of its chain that has some."""

    def test_no_swedish_frame_around_french_text(self, write_config: WriteConfig) -> None:
        config = config_module.load(write_config(CHANNELS))
        message = {"fr": "Fermé : dégât des eaux.", "en": "Closed: water damage."}
        assert _text(config, "sv_own", message) == _text(config, "fr", message)  # the config's order: fr first
        assert _text(config, "sv_en", message) == _text(config, "en", message)   # its own chain: en first
        assert "Centralbiblioteket" not in _text(config, "sv_en", message)[1]

    def test_its_own_language_when_there_is_text_in_it(self, write_config: WriteConfig) -> None:
        config = config_module.load(write_config(CHANNELS))
        language, text = _text(config, "sv_en", {"sv": "Stängt.", "en": "Closed."})
        assert language == "sv" and "Stängt." in text

    def test_no_message_at_all_keeps_the_channel_s_language(self, write_config: WriteConfig) -> None:
        config = config_module.load(write_config(CHANNELS))
        assert _text(config, "sv_en", {})[0] == "sv"

    def test_an_unknown_fallback_language_is_a_config_error(self, write_config: WriteConfig) -> None:
        with pytest.raises(ConfigError, match="fallback"):
            config_module.load(write_config("  sv: {type: console, language: sv, fallback: [de]}"))

    def test_preview_says_which_channels_fall_back(self, write_config: WriteConfig, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
        path = write_config(CHANNELS)
        code = main(["--config", str(path), "--state-dir", str(tmp_path / "state"), "preview", "main", "closed",
                     "-m", "en:Closed: water damage."])
        out = capsys.readouterr().out
        assert code == 0
        assert "── sv_en (console, sv) status_changed — no sv text: falls back to en" in out
        assert "── fr (console, fr) status_changed — no fr text: falls back to en" in out
        assert "── en (console, en) status_changed\n" in out


class TestRequire:
    """`require:` refuses an update lacking a language, except for exempt levels."""

    @pytest.fixture
    def path(self, write_config: WriteConfig) -> Path:
        path = write_config()
        path.write_text(path.read_text() + "require: [fr, en]\nrequire_except: [emergency]\n", encoding="utf-8")
        return path

    def _set(self, path: Path, tmp_path: Path, *args: str) -> int:
        return main(["--config", str(path), "--state-dir", str(tmp_path / "state"), "set", *args])

    def test_a_missing_language_is_refused(self, path: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
        before = (tmp_path / "status.yaml").read_text()
        assert self._set(path, tmp_path, "main", "closed", "-m", "fr:Fermé.") == 2
        assert capsys.readouterr().err == (
            "statusd: this update has no text in en, which statusd.yaml requires (fr, en; emergency exempt); "
            "add -m en:…\n")
        assert (tmp_path / "status.yaml").read_text() == before

    def test_emergencies_and_plain_reopenings_pass(self, path: Path, tmp_path: Path) -> None:
        assert self._set(path, tmp_path, "main", "emergency", "-m", "fr:Évacuation.") == 0
        assert self._set(path, tmp_path, "main", "open") == 0
        assert self._set(path, tmp_path, "main", "closed", "-m", "fr:Fermé.", "-m", "en:Closed.") == 0

    def test_a_bad_require_is_a_config_error(self, write_config: WriteConfig) -> None:
        path = write_config()
        path.write_text(path.read_text() + "require: [de]\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="require"):
            config_module.load(path)
