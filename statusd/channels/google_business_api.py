"""Requests to Google's APIs with an OAuth access token made from the refresh token, kept in memory only.

The access token (about an hour) is refreshed a minute before it expires, and once more
when an API answers 401 UNAUTHENTICATED (revoked early, or our clock is off). Neither
the refresh token nor an access token ever appears in an error or a log.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from statusd.channels import google_business_errors as errors
from statusd.channels import http
from statusd.channels.base import ChannelError, TransientError

log = structlog.get_logger()

TOKEN_URL = "https://oauth2.googleapis.com/token"
# Refreshed this long before Google's `expires_in` runs out.
EARLY = 60.0
# The most of an answer that is read: Google's are a few kB; a hostile or broken one may not stop.
MAX_ANSWER = 1 << 20
# An access token's lifetime is believed up to a day (Google's are an hour).
LONGEST = 86400.0


class GoogleApi:
    """One OAuth client's requests: JSON in and out, the bearer token added and refreshed."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession], seconds: float, *, token_url: str,
                 client_id: str, client_secret: str, refresh_token: str, source: str, channel: str) -> None:
        self._session = session
        self._seconds = seconds
        self._token_url = token_url
        self._grant = {"grant_type": "refresh_token", "client_id": client_id, "client_secret": client_secret,
                       "refresh_token": refresh_token}
        self._secrets = (client_secret, refresh_token)
        self._source = source
        self._channel = channel
        self._access: str | None = None
        self._expires = 0.0

    async def call(self, method: str, url: str, action: str, *, params: Mapping[str, str] | None = None,
                   body: Any = None) -> dict[str, Any]:
        """The JSON object Google answered; a ChannelError for anything else."""
        for attempt in (1, 2):
            token = await self._token()
            status, headers, text = await self._request(method, url, token, params, body)
            try:
                return errors.answer(status, headers, text, action)
            except errors.Unauthenticated as err:
                self._access = None  # a refreshed token gets one more try
                if attempt == 2:
                    raise _scrubbed(err, (*self._secrets, token)) from None
            except ChannelError as err:  # its text quotes Google's, parsed: a secret in JSON escapes shows here
                raise _scrubbed(err, (*self._secrets, token)) from None
        raise AssertionError("unreachable")

    async def _request(self, method: str, url: str, token: str, params: Mapping[str, str] | None,
                       body: Any) -> tuple[int, Mapping[str, str], str]:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.mapped(_host(url), self._seconds):
            async with self._session().request(method, url, params=params, json=body, headers=headers) as answer:
                return answer.status, answer.headers, await _text(answer)

    async def _token(self) -> str:
        if self._access is not None and time.monotonic() < self._expires:
            return self._access
        async with http.mapped(_host(self._token_url), self._seconds):
            async with self._session().post(self._token_url, data=self._grant) as answer:
                status, text = answer.status, await _text(answer)
        body = http.parsed(text)
        token = body.get("access_token") if isinstance(body, dict) else None
        if status != 200 or not isinstance(token, str) or not token:
            error = errors.token_error(status, http.redact(text, self._secrets), self._source)
            if status == 200:
                error = TransientError("the OAuth token endpoint answered no access_token")
            raise _scrubbed(error, self._secrets)
        lifetime = body.get("expires_in") if isinstance(body, dict) else None
        seconds = float(lifetime) if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) else 3600.0
        seconds = min(seconds, LONGEST) if math.isfinite(seconds) else 3600.0  # JSON may say Infinity or NaN
        self._access, self._expires = token, time.monotonic() + max(0.0, seconds - EARLY)
        log.info("google_token_refreshed", channel=self._channel, expires_in=round(seconds))
        return token


def _scrubbed(err: ChannelError, secrets: tuple[str, ...]) -> ChannelError:
    """`err` with every secret blanked out of its sentence (its kind and retry_after kept)."""
    err.args = tuple(http.redact(arg, secrets) if isinstance(arg, str) else arg for arg in err.args)
    return err


async def _text(answer: aiohttp.ClientResponse) -> str:
    """At most MAX_ANSWER bytes of the body, as text (a longer one is cut, and then is no JSON)."""
    raw = (await http.read_at_most(answer.content, MAX_ANSWER))[:MAX_ANSWER]
    return raw.decode("utf-8", errors="replace")  # what Google speaks; a hostile charset is not believed


def _host(url: str) -> str:
    return urlsplit(url).hostname or "Google"
