"""Nothing echoed raw: known secrets, credential-looking values and URL paths never reach a log or an error."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import structlog
from hypothesis import example, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd import errors, logs
from statusd.channels.base import PermanentError, TransientError
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
        """Both ways give what replacing every form, the longest first, gives: text around kept as it was."""
        text = "".join(parts)
        expected = text
        for form in errors._FORMS:
            expected = expected.replace(form, REDACTED)
        assert errors._without_known(text) == expected
