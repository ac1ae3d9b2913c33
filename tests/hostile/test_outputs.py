"""Whatever a stored message holds, every public document stays valid for its readers.

Old store rows (and anything that slipped past a door) may hold control
characters and lone surrogates: the outputs clean them, so the Atom feed and
CAP stay well-formed XML, an iCalendar line is never split by a bare CR (no
injected VEVENT), status.json always encodes, and terminals see escapes.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd.channels.console import Console
from statusd.compose.message import Message
from statusd.config.load import Config
from statusd.config.types import ChannelConfig, DeliveryConfig
from statusd.model import Target
from statusd.safetext import clean, problem, terminal
from statusd.web.state import WebState
from tests.hostile.outputs import events_in, parse_all
from tests.web.test_web_support import NOW, entry, event

pytestmark = pytest.mark.unit

HOSTILE = [
    "bell\x07 and escape \x1b]0;owned\x07 title",
    "clear \x1b[2J\x1b[H screen",
    "nul \x00 byte",
    "vertical \x0b tab and form \x0c feed",
    "bare\rCR\rBEGIN:VEVENT\rSUMMARY:injected\rEND:VEVENT",
    "crlf\r\nBEGIN:VEVENT\r\nSUMMARY:injected\r\nEND:VEVENT",
    "lone \ud800 surrogate",
    "pair of escapes \ud83d\ude00 as two",
    "C1 \x85 next line and \x9b CSI",
    "non-characters \ufffe\uffff",
    "]]> <![CDATA[ & < > \" '",
    "DEL \x7f",
]
ANY_TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=200)


def _stored(config: Config, text: str) -> WebState:
    """A state whose status and history both hold `text`, as old store rows could."""
    state = WebState(config)
    message = {"fr": text, "en": text, "sv": text}
    until = NOW + timedelta(hours=3)
    wanted = {Target("main"): entry("closed", message, until=until)}
    history = [event("main", "closed", "open", NOW, message)]
    state.update(wanted, {}, history, NOW + timedelta(minutes=1))
    return state


class TestStoredControlsAndSurrogates:
    """A table of hostile messages: every document still parses, and no raw control survives in it."""

    @pytest.mark.parametrize("text", HOSTILE)
    def test_every_document_parses(self, config: Config, text: str) -> None:
        state = _stored(config, text)
        parsed = parse_all(state)
        for lang in config.languages:
            # One closure, one VEVENT: a CR in the message injected none.
            assert len(events_in(parsed[f"closures.{lang}"])) == 1
        assert state.alerts, "the closure made a CAP alert"
        for doc in state.docs.values():
            assert not any(c in doc.body for c in (b"\x1b", b"\x00", b"\x07", b"\x0b", b"\x0c"))

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=ANY_TEXT)
    def test_any_text_at_all(self, config: Config, text: str) -> None:
        parse_all(_stored(config, text or "x"))

    def test_status_json_keeps_the_rest_of_the_text(self, config: Config) -> None:
        body = json.loads(_stored(config, "Fermé \x1b[2J ce soir").docs["status.json"].body)
        assert body["sites"]["main"]["message"]["fr"] == "Fermé \ufffd[2J ce soir"


class TestTerminals:
    """The console channel and commands show escape sequences as text, never send them raw."""

    async def test_console_channel(self, config: Config) -> None:
        out = io.StringIO()
        console = Console(ChannelConfig("console", "console", "fr", None, None, Console.Options(), {}), DeliveryConfig(), out=out)
        text = "Fermé\x1b]0;pwned\x07\x1b[2J \ud800 ok\nligne 2"
        message = Message(text=text, language="fr", link=None, event_id="e1", kind="status_changed",
                          target="main", level="closed")
        await console.send(message, idempotency_key="k" * 20, reply_to=None)
        printed = out.getvalue()
        assert "\x1b" not in printed and "\x07" not in printed and "\ud800" not in printed
        assert "\\x1b]0;pwned\\x07" in printed and "ligne 2" in printed

    @given(text=ANY_TEXT)
    def test_terminal_text_never_holds_a_control(self, text: str) -> None:
        shown = terminal(text)
        assert problem(shown) is None
        shown.encode("utf-8")


class TestDoors:
    """`problem` names the first bad character and where it is; `clean` is what outputs use."""

    @pytest.mark.parametrize(("text", "expected"), [
        ("ok\ttab\nnewline", None),
        ("esc\x1b", "holds a control character (U+001B) at character 4; remove it"),
        ("x \ud800", "holds a lone surrogate (U+D800) at character 3; remove it"),
        ("cr\r", "holds a control character (U+000D) at character 3; remove it"),
        ("c1\x85", "holds a control character (U+0085) at character 3; remove it"),
    ])
    def test_problem(self, text: str, expected: str | None) -> None:
        assert problem(text) == expected

    def test_one_line_refuses_newlines(self) -> None:
        assert problem("a\nb", newlines=False) is not None and problem("a\nb") is None

    @given(text=ANY_TEXT)
    def test_clean_is_always_acceptable(self, text: str) -> None:
        assert problem(clean(text)) is None
        assert clean(clean(text)) == clean(text)
