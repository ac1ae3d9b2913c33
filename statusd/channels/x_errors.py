"""What a failed X request means: tweepy's HTTP errors and transport failures as ChannelErrors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aiohttp
import tweepy  # type: ignore[import-untyped]

from statusd.channels import http
from statusd.channels.base import ChannelError, DuplicateError, PermanentError, TransientError

# ValueError: a success answer whose body is not JSON (the post may exist: find() will tell).
FAILURES = (tweepy.HTTPException, asyncio.TimeoutError, aiohttp.ClientError, OSError, ValueError)


def classify(err: BaseException, where: str, timeout: float) -> ChannelError:
    if isinstance(err, tweepy.HTTPException):
        return _http_error(err)
    return http.transport_error(err, where, timeout) or TransientError(
        f"{where} answered something that is not JSON")


def _http_error(err: tweepy.HTTPException) -> ChannelError:
    status = err.response.status
    detail = http.snippet(str(err))
    if isinstance(err, tweepy.TooManyRequests):
        wait = rate_limit_wait(err.response.headers)
        return TransientError(f"X rate limit: {detail}", retry_after=wait)
    if status >= 500 or status == 408:
        return TransientError(f"X is failing: {detail}")
    if status == 401:
        return PermanentError(
            f"X refused the keys ({detail}); check consumer_key, consumer_secret, access_token "
            "and access_token_secret, or generate new ones in the developer portal")
    if status == 403 and "duplicate" in detail.lower():
        return DuplicateError(f"duplicate: X already has this text from this account ({detail})")
    if status == 403:
        return PermanentError(
            f"X forbade it ({detail}); the app needs Read and Write permissions (then generate a "
            "new access token) and an access level that allows reading its own posts; if it has "
            "them, X refused this text")
    return PermanentError(f"X refused the post: {detail}")


def rate_limit_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds until X takes posts again: the window's reset, or a spent daily cap's, if later."""
    now = time.time() if now is None else now
    resets = [_epoch(headers.get("x-rate-limit-reset"))]
    for scope in ("user", "app"):
        if (headers.get(f"x-{scope}-limit-24hour-remaining") or "").strip() == "0":
            resets.append(_epoch(headers.get(f"x-{scope}-limit-24hour-reset")))
    known = [reset for reset in resets if reset is not None]
    return max(0.0, max(known) - now) if known else None


def _epoch(value: str | None) -> float | None:
    value = (value or "").strip()
    return float(value) if value.isascii() and value.isdigit() and len(value) <= 12 else None
