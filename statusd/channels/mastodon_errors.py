"""What a Mastodon-API server's refusal means, said so an operator knows what to do.

Servers differ (docs/platforms.md): a bad token is a 401 with JSON on Mastodon and a 400
with an HTML page on another server; "too long" is a 422 or a 400 in each server's words;
Mastodon.py drops a body that is not JSON, so the channel keeps a snippet of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mastodon import MastodonAPIError

from statusd.channels import http
from statusd.channels.base import ChannelError, PermanentError, TransientError
from statusd.channels.mastodon_servers import too_long

# "Invalid Bearer token", "The access token is invalid", "token expired": a token problem
# whatever the status code.
_BAD_TOKEN = re.compile(r"(invalid|expired|revoked|unknown|bad)\b.{0,20}\btoken|token\b.{0,30}"
                        r"\b(invalid|expired|revoked)", re.IGNORECASE)
SCOPES = "read:accounts and write:statuses"


@dataclass(frozen=True)
class Context:
    """What the channel knows around a failed call."""

    host: str
    token: str
    token_where: str  # where the operator sets the token (never the token)
    page: str  # a sanitised snippet of a body that was not JSON, or ""
    reset_wait: float | None  # seconds until the rate limit resets, if the server said


class TooLong(PermanentError):
    """The server refused the status as too long; `limit` is the one it named (0: none)."""

    def __init__(self, reason: str, limit: int = 0) -> None:
        super().__init__(reason)
        self.limit = limit


def classify(err: MastodonAPIError, context: Context) -> ChannelError:
    """The ChannelError a Mastodon.py API error means, with the token blanked out."""
    host = context.host
    if len(err.args) < 4 or not isinstance(err.args[1], int):
        # A 2xx answer that is not JSON (a proxy's page): the post may or may not exist.
        return TransientError(f"{host} answered something that is not Mastodon's API: "
                              f"{context.page or 'no body'}")
    code, detail = err.args[1], _detail(err, context)
    said = http.redact(f"{host} answered HTTP {code}: {detail}", [context.token])
    if code == 401 or (code in (400, 403) and _BAD_TOKEN.search(detail)):
        return PermanentError(f"{said}; the access token is invalid or revoked: create a new one "
                              f"(Preferences > Development, scopes {SCOPES}) and set it in "
                              f"{context.token_where}")
    limit = too_long(code, detail)
    if limit is not None:
        return TooLong(f"{said}; the status is longer than {host} takes", limit=limit)
    if code == 403:
        return PermanentError(f"{said}; the access token lacks a scope: create one with {SCOPES}")
    if code == 404:
        return PermanentError(f"{said}; the status (or the one replied to) does not exist, "
                              f"or {host} is not a Mastodon server")
    if code == 429:
        return TransientError(said, retry_after=context.reset_wait)
    if code == 408 or code >= 500:
        return TransientError(said)
    return PermanentError(said)


def _detail(err: MastodonAPIError, context: Context) -> str:
    """What the answer said: its JSON `error`, else the status's reason and the page's text."""
    if err.args[3]:
        return http.snippet(str(err.args[3]), [context.token])
    reason, page = str(err.args[2] or "").strip(), context.page
    said = set(page.lower().split()) - set(f"{err.args[1]} {reason}".lower().split())
    if len(said) <= 1:  # a proxy's page repeating the status ("502 Bad Gateway nginx")
        page = ""
    if reason and page:
        return f"{reason} (the page says: {page})"
    return reason or page or "no body"
