"""Mastodon.py's blocking calls, run in a thread; each failure raised as a ChannelError.

Mastodon.py drops an answer's body when it is an error or not JSON, and those bodies say
what went wrong, so the session keeps a snippet of each (per thread) for the error.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from mastodon import (
    Mastodon as Client,
)
from mastodon import (
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
)

from statusd.channels import http
from statusd.channels.base import ChannelError, PermanentError, TransientError
from statusd.channels.mastodon_errors import Context, classify


class Calls:
    """One account's Mastodon.py client; `await calls(method, ...)` runs a call off the loop."""

    def __init__(self, instance: str, host: str, token: str, token_where: str, timeout: float) -> None:
        self._host, self._token, self._token_where, self._timeout = host, token, token_where, timeout
        self._answers = threading.local()
        session = requests.Session()
        session.hooks["response"].append(self._keep_answer)
        # No request is made here: Mastodon.py only checks the version when asked to.
        self.client = Client(
            access_token=token, api_base_url=instance, version_check_mode="none",
            ratelimit_method="throw", request_timeout=timeout, user_agent="statusd",
            session=session,
        )

    async def __call__(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._blocking, call, *args, **kwargs)

    async def close(self) -> None:
        await asyncio.to_thread(self.client.session.close)

    def _keep_answer(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        json_body = "json" in response.headers.get("Content-Type", "")
        keep = not response.ok or not json_body
        self._answers.body = http.snippet(response.text, [self._token]) if keep else ""

    def _answered(self) -> str:
        return str(getattr(self._answers, "body", "") or "")

    def _blocking(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Runs in a thread: the call, its failure raised as a TransientError or PermanentError."""
        self._answers.body = ""
        try:
            return call(*args, **kwargs)
        except MastodonRatelimitError as err:
            # Read now, in this thread: the next request overwrites ratelimit_reset.
            wait = self._reset_wait()
            when = "" if wait is None else f"; it resets in {wait:.0f} s"
            what = "HTTP 429, rate limit reached" if "Hit rate limit" in str(err) else str(err)
            raise self._error(TransientError, f"{self._host} answered {what}{when}",
                              retry_after=wait) from err
        except MastodonNetworkError as err:
            raise self._error(TransientError, self._network_reason(err)) from err
        except MastodonAPIError as err:
            raise classify(err, Context(self._host, self._token, self._token_where,
                                        self._answered(), self._reset_wait())) from err
        except MastodonError as err:
            raise self._error(PermanentError, f"Mastodon.py refused the call: {err}") from err

    def _reset_wait(self) -> float | None:
        # Mastodon.py parses X-RateLimit-Reset (an ISO time) into epoch seconds on our clock.
        reset = self.client.ratelimit_reset
        return None if reset is None else max(0.0, float(reset) - time.time())

    def _network_reason(self, err: MastodonNetworkError) -> str:
        cause = err.__context__  # Mastodon.py wraps the requests error without `from`
        if isinstance(cause, requests.Timeout):
            return http.no_answer(self._host, self._timeout)
        return http.unreachable(self._host, cause if cause is not None else err)

    def _error(self, kind: type[ChannelError], reason: str, **extra: Any) -> ChannelError:
        """The error with the token blanked out, should any answer have echoed it."""
        return kind(http.redact(reason, [self._token]), **extra)


def none_if_missing(call: Callable[..., Any]) -> Callable[..., Any]:
    """`call`, answering None instead of raising on 404 (gone already, or no such endpoint)."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except MastodonNotFoundError:
            return None

    return wrapped
