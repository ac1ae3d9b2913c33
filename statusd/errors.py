"""Errors that reach a person: each names the file, the line and the field."""

from __future__ import annotations

import contextlib
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
# Every known secret as a text may carry it (as is, percent-encoded, form-encoded), longest
# first, and the same by their first _MIN_KNOWN characters: worked out once per secret, not
# once per string redacted (with 128 channels' secrets that was 2 ms a string, on the loop).
_FORMS: tuple[str, ...] = ()
_HEADS: dict[str, tuple[str, ...]] = {}
# Whether a replacement can spell a known form: one holds REDACTED's first or last character, or is within it.
_RESPELLS = False
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

        # Its base64 too: a bare token in a Basic header or a JWT-like echo.
        _KNOWN.add(value)
        for raw in _bytes(value):
            _KNOWN.update({base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")})
        _index_known()


def _bytes(value: str) -> set[bytes]:
    """What a client may send for `value`: its UTF-8, and for a value that is not (a byte that is not
    UTF-8 in an environment variable, which os.environ keeps as a lone surrogate) the bytes it was
    read from, or the surrogate in UTF-8's form. `quote()` of such a value raised (it encodes strictly):
    `statusd check` and the daemon stopped with a traceback when the secret was read."""
    found = {value.encode("utf-8", "surrogatepass")}
    with contextlib.suppress(UnicodeEncodeError):
        found.add(value.encode("utf-8", "surrogateescape"))
    return found


def _spellings(known: str) -> set[str]:
    """`known` as is, percent-encoded and form-encoded, from each of its `_bytes`."""
    found = {known}
    for raw in _bytes(known):
        found.update({quote(raw, safe=""), quote_plus(raw)})
    return found


def _index_known() -> None:
    global _FORMS, _HEADS, _RESPELLS
    forms = {form for known in _KNOWN for form in _spellings(known)}
    _FORMS = tuple(sorted(forms, key=lambda form: (-len(form), form)))
    heads: dict[str, list[str]] = {}
    for form in _FORMS:
        heads.setdefault(form[:_MIN_KNOWN], []).append(form)
    _HEADS = {head: tuple(found) for head, found in heads.items()}
    _RESPELLS = any(REDACTED[0] in form or REDACTED[-1] in form or form in REDACTED for form in _FORMS)


def _without_known(text: str) -> str:
    """`text` with each place a known secret's form covers replaced; overlapping places as one.

    Replacing form after form, the longest first, cut the second of two overlapping secrets
    and left the rest of it (8 characters or more) in the text.
    """
    places = sorted(_places(text))
    if not places:
        return text
    kept: list[str] = []
    done = 0
    start, end = places[0]
    for begin, stop in places[1:]:
        if begin < end:
            end = max(end, stop)
            continue
        kept += (text[done:start], REDACTED)
        done, start, end = end, begin, stop
    kept += (text[done:start], REDACTED, text[end:])
    return "".join(kept)


def _places(text: str) -> set[tuple[int, int]]:
    """Where each known form shows in `text`: (start, end) of every occurrence."""
    forms = _FORMS
    if len(text) < len(forms):
        # Fewer places in the text than forms to look for: look up each place's first characters.
        width = _MIN_KNOWN
        return {(i, i + len(form)) for i in range(len(text) - width + 1)
                for form in _HEADS.get(text[i:i + width], ()) if text.startswith(form, i)}
    found = set()
    for form in forms:
        at = text.find(form)
        while at >= 0:
            found.add((at, at + len(form)))
            at = text.find(form, at + 1)
    return found


def redact(text: str) -> str:
    """`text` without any known secret, credential-looking value or URL path (host kept)."""
    if not text:
        return text
    if _FORMS and len(text) >= _MIN_KNOWN:
        found = _without_known(text)
        # Once more where something was replaced and a secret holds REDACTED's text: the
        # replacement with what is beside it may spell that secret.
        text = _without_known(found) if _RESPELLS and found != text else found
    for pattern, replace in _patterns():
        text = pattern.sub(replace, text)
    return _url().sub(lambda m: f"{m.group(1)}/…", text)
