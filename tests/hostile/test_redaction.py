"""Nothing echoed raw: known secrets, credential-looking values and URL paths never reach a log or an error."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import structlog
from hypothesis import example, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd import errors, logs
from statusd.channels.base import PermanentError, TransientError
from statusd.config.types import Secret as Secret_
from statusd.errors import REDACTED, redact, remember_secret
from tests.security.leaks import Scanner, Secret, make_secret

pytestmark = pytest.mark.unit

KNOWN = make_secret("known")
remember_secret(KNOWN.value)

SHAPES = [
    ("Authorization: Bearer abc.DEF-123_xyz", "Authorization: [redacted]"),
    ("proxy-authorization=Basic dXNlcjpwYXNzd29yZA==", "proxy-authorization=[redacted]"),
    ("sent Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "sent Bearer [redacted]"),
    ("got Basic dXNlcjpwYXNz", "got Basic [redacted]"),
    ("POST /feed?access_token=EAAB123&fields=id", "POST /feed?access_token=[redacted]&fields=id"),
    ('{"access_token": "EAABxyz", "id": 3}', '{"access_token": "[redacted]", "id": 3}'),
    ("form app_password=abcd-efgh-ijkl-mnop", "form app_password=[redacted]"),
    ("Too many redirects: https://hooks.slack.com/services/T0/B0/XYZ",
     "Too many redirects: https://hooks.slack.com/…"),
    ("wss://stream.example.org/api/v1/streaming?token=abc", "wss://stream.example.org/…"),
]
KEPT = ["token expired", "basic information", "bearer token missing", "Basic auth failed",
        "http://127.0.0.1:8080", "the page token may not post", "HTTP 401 from mastodon.example"]


class TestRedact:
    """Known values go wherever they show; unknown ones by shape; ordinary words stay."""

    @pytest.mark.parametrize(("text", "expected"), SHAPES)
    def test_by_shape(self, text: str, expected: str) -> None:
        assert redact(text) == expected

    @pytest.mark.parametrize("text", KEPT)
    def test_ordinary_text_is_kept(self, text: str) -> None:
        assert redact(text) == text

    @pytest.mark.parametrize("form", ["raw", "url-encoded", "form-encoded"])
    def test_known_secret_in_any_encoding(self, form: str) -> None:
        spelled = KNOWN.forms()[form]
        assert REDACTED in redact(f"Graph said: Cannot parse {spelled} here")
        scanner = Scanner([KNOWN])
        scanner.scan("redacted", redact(f"error: {spelled}"))
        assert scanner.findings == [], scanner.report()

    def test_platform_echo_in_a_channel_error(self) -> None:
        """A Facebook error that echoes the request: the stored and logged reason holds no token."""
        body = json.dumps({"error": {"message": f"Invalid OAuth access token: {KNOWN.value}",
                                     "fbtrace_id": "x", "request": f"access_token={KNOWN.value}"}})
        for error in (PermanentError(f"Facebook refused: {body}"), TransientError(body, retry_after=3)):
            assert KNOWN.value not in str(error) and KNOWN.fragment not in str(error)


class TestLogPipeline:
    """Every structlog event and every standard-library record leaves through the redaction."""

    @pytest.fixture(autouse=True)
    def reset(self) -> Any:
        yield
        structlog.reset_defaults()
        logging.getLogger().handlers = []

    def _lines(self, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    def test_structlog_event(self, capsys: pytest.CaptureFixture[str]) -> None:
        logs.configure(json=True)  # here: pytest swaps stderr between setup and the test
        structlog.get_logger().warning("delivery_failed", reason=f"echo {KNOWN.value}", token="plain",
                                       problems=[f"Authorization: Bearer {KNOWN.value}"], text="\x1b[2J")
        (line,) = self._lines(capsys)
        assert KNOWN.fragment not in json.dumps(line)
        assert line["token"] == REDACTED and line["text"] == "\\x1b[2J"

    def test_aiohttp_error_logger(self, capsys: pytest.CaptureFixture[str]) -> None:
        logs.configure(json=True)  # here: pytest swaps stderr between setup and the test
        try:
            raise ValueError(f"Invalid header value char: b'Authorization: Bearer {KNOWN.value}\\x01'")
        except ValueError:
            logging.getLogger("aiohttp.server").exception("Error handling request from 127.0.0.1")
        logging.getLogger("aiohttp.access").warning('127.0.0.1 "GET /x?access_token=%s" 400', "abcdef123")
        lines = self._lines(capsys)
        assert [line["event"] for line in lines] == ["http_server_error", "http_access"]
        assert KNOWN.fragment not in json.dumps(lines) and "abcdef123" not in json.dumps(lines)

    def test_a_surrogate_in_an_event_is_shown_not_fatal(self, capsys: pytest.CaptureFixture[str]) -> None:
        logs.configure(json=True)  # here: pytest swaps stderr between setup and the test
        structlog.get_logger().warning("reading_rejected", sensor="s\ud800")
        (line,) = self._lines(capsys)
        assert line["sensor"] == "s\\ud800"

    def test_capture_logs_sees_the_redacted_event_too(self) -> None:
        with capture_logs(processors=[logs.redact_event]) as seen:
            structlog.get_logger().info("x", reason=f"Bearer {KNOWN.value}")
        assert KNOWN.value not in str(seen)


class TestKnownForms:
    """A known secret's base64 spellings are known too."""

    @pytest.mark.parametrize("form", ["base64", "base64url"])
    def test_base64(self, form: str) -> None:
        spelled = KNOWN.forms()[form]
        assert spelled not in redact(f"echoed {spelled} back")


# A library with many channels: 128 secrets known.
# One of the shortest a secret can be (8 characters), whose raw form fills one index key exactly.
MANY = [make_secret(f"many-{i}") for i in range(127)] + [Secret("short", "SECRET-Z", None)]
for _secret in MANY:
    remember_secret(_secret.value)
# Every spelling redact knows (a fragment of a secret is the scanner's, for a partial leak).
_SPELLINGS = [(s.name, form, spelled) for s in [KNOWN, *MANY] for form, spelled in s.forms().items()
              if form != "fragment"]


class TestManySecrets:
    """Known secrets are looked up by their first characters in a short text and searched for in a long
    one: each way, no form of any of them survives, wherever it sits, and text without them is kept."""

    @settings(max_examples=300, deadline=None)
    @given(before=st.text(max_size=2000), after=st.text(max_size=2000),
           which=st.lists(st.sampled_from(_SPELLINGS), min_size=1, max_size=4))
    @example(before="", after="", which=[("short", "raw", "SECRET-Z")])  # a form that ends the text
    @example(before="x" * 2000, after="", which=[("short", "raw", "SECRET-Z")])
    def test_no_form_survives(self, before: str, after: str, which: list[tuple[str, str, str]]) -> None:
        out = redact(before + " ".join(spelled for _, _, spelled in which) + after)
        assert [(name, form) for name, form, spelled in _SPELLINGS if spelled in out] == []

    @settings(max_examples=300, deadline=None)
    @given(parts=st.lists(st.one_of(st.text(max_size=300), st.sampled_from([s for _, _, s in _SPELLINGS])),
                          max_size=12))
    @example(parts=["a", "SECRET-Z"])
    def test_lookup_and_search_agree(self, parts: list[str]) -> None:
        """Both ways replace every place any form covers (overlapping places as one): text around kept."""
        text = "".join(parts)
        assert errors._without_known(text) == covered(text)


def covered(text: str) -> str:
    """`text` with every occurrence of every known form replaced, overlapping occurrences as one (the
    reference: each form looked for at each position)."""
    places = sorted((i, i + len(form)) for form in errors._FORMS for i in range(len(text)) if text.startswith(form, i))
    out: list[str] = []
    done, first, last = 0, 0, -1
    for start, end in places:
        if start < last:  # within or overlapping the place before: widen it
            last = max(last, end)
            continue
        if last >= 0:
            out += [text[done:first], REDACTED]
            done = last
        first, last = start, end
    if last >= 0:
        out += [text[done:first], REDACTED]
        done = last
    return "".join(out) + text[done:]


def pieces(value: str, width: int = 8) -> set[str]:
    return {value[i:i + width] for i in range(len(value) - width + 1)}


def padding(way: str) -> str:
    """Before a text, so that it is one the index looks up (fewer characters than forms), or one searched."""
    return "" if way == "short" else "x" * (len(errors._FORMS) + 10)


OVERLAP_A = "OVERLAP-" + uuid.uuid4().hex
OVERLAP_B = OVERLAP_A[-10:] + "-" + uuid.uuid4().hex  # starts with A's last 10 characters
HOLDS_REDACTED = "acted]" + uuid.uuid4().hex  # a secret that holds the end of REDACTED's text
BEFORE_IT = "BEFORE-" + uuid.uuid4().hex + "-"
NOT_UTF8 = "p\udce4ss-" + uuid.uuid4().hex  # b"p\xe4ss-..." from an environment variable, as os.environ has it
for _value in (OVERLAP_A, OVERLAP_B, HOLDS_REDACTED, BEFORE_IT):
    remember_secret(_value)


class TestAwkwardSecrets:
    """Secrets that overlap in a text, that hold REDACTED's text, or that are not UTF-8: none of them,
    nor any 8 characters of them, survives, in a short text or a long one."""

    @pytest.mark.parametrize("way", ["short", "long"])
    def test_overlapping_secrets(self, way: str) -> None:
        """The second of two overlapping secrets was cut by the first and the rest of it kept."""
        out = redact(padding(way) + " " + OVERLAP_A + OVERLAP_B[10:] + " end")
        assert [piece for piece in pieces(OVERLAP_A) | pieces(OVERLAP_B) if piece in out] == []
        assert out == padding(way) + " " + REDACTED + " end"

    @pytest.mark.parametrize("way", ["short", "long"])
    def test_a_replacement_that_spells_a_secret(self, way: str) -> None:
        """A secret replaced just before the rest of one that holds "acted]": that one is replaced too."""
        out = redact(padding(way) + " " + BEFORE_IT + HOLDS_REDACTED[len("acted]"):])
        assert HOLDS_REDACTED not in out and BEFORE_IT not in out

    @pytest.mark.parametrize("way", ["short", "long"])
    def test_a_value_that_is_not_utf8(self, way: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Read from the environment, it is remembered (it once raised, and `statusd check` stopped with
        a traceback), and every spelling of it goes: its own bytes percent-encoded too."""
        monkeypatch.setenv("STATUSD_TEST_NOT_UTF8", NOT_UTF8)
        assert Secret_(source="env", ref="STATUSD_TEST_NOT_UTF8").read() == NOT_UTF8
        raw = NOT_UTF8.encode("utf-8", "surrogateescape")
        for spelled in (NOT_UTF8, quote(raw, safe=""), quote_plus(raw), base64.b64encode(raw).decode()):
            out = redact(padding(way) + f" token {spelled} end")
            assert spelled not in out and out.endswith(f" token {REDACTED} end"), spelled
        later = make_secret("after-not-utf8")
        remember_secret(later.value)  # remembered after it, and redacted too
        assert later.value not in redact(padding(way) + " " + later.value)
