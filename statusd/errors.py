"""Errors that reach a person: each names the file, the line and the field."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, located so a person can find and fix it."""

    file: str
    line: int | None
    field: str
    text: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.text}"


class ConfigError(Exception):
    """Every problem found in a file, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UserError(Exception):
    """A command that cannot be carried out, with one sentence saying why."""


class StoreError(Exception):
    """The PostgreSQL store could not answer (cut, timed out, refused): what sqlite3.Error is for SQLite.

    Its text is one sentence fit for a log or /readyz: no password, no row content.
    """


# -- redaction -------------------------------------------------------------------------------
# Secrets are known by value once read (`remember_secret`), and by shape otherwise: what
# follows an Authorization header, "Bearer", or a parameter or field named like a credential.

_KNOWN: set[str] = set()
REDACTED = "[redacted]"
# Shorter values are too likely to be ordinary words to replace everywhere.
_MIN_KNOWN = 8
_CREDENTIAL = r"(?:access[_-]?token|refresh[_-]?token|id[_-]?token|api[_-]?key|apikey|token|secret|password|passwd|pwd|signature|sig|session|client[_-]?secret|app[_-]?password|auth)"  # noqa: E501 (one alternation)


# Compiled at the first redaction, not at import: `statusd set` imports this module and never redacts.
@functools.cache
def _patterns() -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
    return [
        # Authorization: Basic abc / Proxy-Authorization: Bearer abc / Cookie: a=b
        (re.compile(r"(?i)\b((?:proxy-)?authorization|cookie|set-cookie|x-api-key|x-auth-token)(\s*[:=]\s*|['\"]\s*:\s*['\"]|,\s*['\"])[^\r\n'\"]*"),
         lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}"),
        (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=\-:%]{6,}"), lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}"),
        # Basic credentials are base64: mixed case or digits, unlike the words "basic information".
        (re.compile(r"\b([Bb]asic|BASIC)(\s+)(?=\S*(?:[0-9+/=]|[a-z]\S*[A-Z]|[A-Z]\S*[a-z]))[A-Za-z0-9+/=]{8,}"),
         lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}"),
        # access_token=abc&… in a URL or a form; "access_token": "abc" in JSON; token: abc in YAML.
        (re.compile(rf"(?i)(\b{_CREDENTIAL}\b)(=|%3D)[^&\s'\"<>]+"), lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}"),
        (re.compile(rf"(?i)([\"']?\b{_CREDENTIAL}\b[\"']?\s*:\s*[\"'])[^\"']*"), lambda m: f"{m.group(1)}{REDACTED}"),
    ]


# A URL's path and query may hold a token (Slack, Discord, a webhook's secret path): keep the host.
@functools.cache
def _url() -> re.Pattern[str]:
    return re.compile(r"(?i)\b((?:https?|wss?)://[^/\s'\"<>?#]+)[/?#][^\s'\"<>]*")


def remember_secret(value: str | None) -> None:
    """Note a secret's value, so that `redact` removes it wherever it shows up."""
    if value and len(value) >= _MIN_KNOWN:
        import base64

        raw = value.encode("utf-8", "surrogatepass")
        # Its base64 too: a bare token in a Basic header or a JWT-like echo.
        _KNOWN.update({value, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")})


def redact(text: str) -> str:
    """`text` without any known secret, credential-looking value or URL path (host kept)."""
    if not text:
        return text
    for secret in _KNOWN:
        if secret in text or quote(secret, safe="") in text or quote_plus(secret) in text:
            text = text.replace(secret, REDACTED).replace(quote(secret, safe=""), REDACTED)
            text = text.replace(quote_plus(secret), REDACTED)
    for pattern, replace in _patterns():
        text = pattern.sub(replace, text)
    return _url().sub(lambda m: f"{m.group(1)}/…", text)
