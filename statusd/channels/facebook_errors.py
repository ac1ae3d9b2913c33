"""What a Graph API answer means: its error object (or status) as TransientError or PermanentError.

Graph names its errors in `error.code`/`error_subcode` (HTTP is nearly always 400); each is
said with what an operator should do. The usage headers say how long a throttle lasts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from statusd.channels import http
from statusd.channels.base import ChannelError, DuplicateError, PermanentError, TransientError

USAGE_HEADERS = ("X-App-Usage", "X-Page-Usage", "X-Business-Use-Case-Usage")
# When throttled without an estimate in the usage headers.
DEFAULT_WAIT = 60.0

_TOKEN_STATES = {
    463: "has expired",
    460: "was invalidated because an administrator changed their password",
    458: "was revoked because the app was removed from the account",
}
_THROTTLED = frozenset({4, 17, 32, 613})
_TEMPORARY = frozenset({1, 2})
# The permission each call needs, named when Graph's message does not name one.
_NEEDS = {
    "post to the page": "pages_manage_posts",
    "delete the post": "pages_manage_posts",
    "comment on the post": "pages_manage_engagement",
    "read the page's feed": "pages_read_engagement",
    "read who the token is for": "pages_manage_posts",
}
_PERMISSION = re.compile(r"\bpages_[a-z_]+")


def answer(status: int, headers: Mapping[str, str], text: str, action: str, *,
           token_from: str = "its secret") -> dict[str, Any]:
    """The JSON object Graph answered; raise the ChannelError its error (or status) means."""
    body = http.parsed(text)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        raise classify(error, status, headers, action, token_from=token_from)
    if status >= 300:
        raise _http_error(status, headers, text)
    if not isinstance(body, dict):
        # The outcome is unknown: retrying is safe, Facebook refuses a duplicate (#506).
        raise TransientError(f"Facebook answered HTTP {status} with no JSON: {_snippet(text)}")
    return body


def classify(error: Mapping[str, Any], status: int, headers: Mapping[str, str], action: str,
             *, token_from: str = "its secret") -> ChannelError:
    """The ChannelError a Graph error object means, saying what an operator should do."""
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    full = str(error.get("message") or "no message")
    said = _snippet(full)
    where = f"(code {code}{f'/{subcode}' if subcode is not None else ''}: {said})"
    if code in (190, 104):  # 104: no token arrived at all
        state = "is missing" if code == 104 else _TOKEN_STATES.get(subcode or 0, "is not valid")
        return PermanentError(
            f"the page access token {state} {where}; renew the page token (Meta Business Suite "
            f"or the Graph API Explorer) and put it in {token_from}")
    if code == 506 or (code == 368 and "already posted" in said.lower()):
        return DuplicateError(f"duplicate: Facebook refuses to post the same text again {where}")
    if code == 368:
        return PermanentError(f"Facebook blocked the page from posting {where}; check the page's "
                              "quality notices in Meta Business Suite before trying again")
    if code in _THROTTLED:
        wait = usage_retry_after(headers) or DEFAULT_WAIT
        return TransientError(f"Facebook rate limit {where}; access returns in about {wait:g} s",
                              retry_after=wait)
    if code in _TEMPORARY:
        return TransientError(f"Facebook had a temporary problem {where}")
    if code == 10 or (code is not None and 200 <= code <= 299):
        missing = ", ".join(dict.fromkeys(_PERMISSION.findall(full))) or _NEEDS.get(
            action, "pages_manage_posts")
        return PermanentError(f"the page token may not {action}: it needs the permission "
                              f"{missing} {where}; generate a page token with it granted")
    if status >= 500 or error.get("is_transient") is True:
        return TransientError(f"Facebook could not {action} {where}")
    return PermanentError(f"Facebook refused to {action} {where}")


def usage_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds until access returns: the largest estimated_time_to_regain_access (minutes)."""
    minutes = [m for name in USAGE_HEADERS for m in _regain_minutes(http.parsed(headers.get(name) or ""))]
    longest = max(minutes, default=0.0)
    return longest * 60.0 if longest > 0 else None


def usage_share(headers: Mapping[str, str]) -> float | None:
    """The highest share (percent of the allowance) any usage header names; None if none does."""
    return max((v for name in USAGE_HEADERS for v in _shares(http.parsed(headers.get(name) or ""))), default=None)


def _regain_minutes(value: Any) -> Iterator[float]:
    """Every estimate in a usage header: a flat object, or lists of them keyed by business id."""
    if isinstance(value, list):
        for item in value:
            yield from _regain_minutes(item)
    elif isinstance(value, dict):
        estimate = _minutes(value.get("estimated_time_to_regain_access"))
        if estimate is not None:
            yield estimate
        for item in value.values():
            if isinstance(item, (list, dict)):
                yield from _regain_minutes(item)


def _shares(value: Any) -> Iterator[float]:
    """Every call_count, total_time and total_cputime (percent of the allowance) in a usage header."""
    if isinstance(value, list):
        for item in value:
            yield from _shares(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in ("call_count", "total_time", "total_cputime") and isinstance(item, (int, float)):
                yield float(item)
            elif isinstance(item, (list, dict)):
                yield from _shares(item)


def _minutes(value: Any) -> float | None:
    """A plausible estimate: a JSON number (not a boolean) above 0 and at most a day."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and 0 < value <= 24 * 60 else None


def _http_error(status: int, headers: Mapping[str, str], text: str) -> ChannelError:
    reason = f"Facebook answered HTTP {status}: {_snippet(text) or 'no body'}"
    if status in (408, 429) or status >= 500:
        wait = usage_retry_after(headers)
        return TransientError(reason, retry_after=wait or (DEFAULT_WAIT if status == 429 else None))
    return PermanentError(reason)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _snippet(text: str) -> str:
    """At most 200 characters of an answer, HTML tags taken out."""
    return http.snippet(text)
