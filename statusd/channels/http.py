"""What the HTTP channels share: one aiohttp session shape, one way a failed request is told.

Every channel that speaks HTTP itself (webhook, Facebook, X through tweepy's aiohttp
session, Bluesky) turns a timeout or a connection failure into the same TransientError
sentence, and quotes at most a short, tag-free, secret-free snippet of an answer's body.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from statusd.channels.base import TransientError
from statusd.config.types import ChannelConfig, DeliveryConfig

SNIPPET = 200  # the most of an answer's body an error ever quotes
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]*>", re.DOTALL | re.IGNORECASE)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
# Plain ASCII decimals only: float() would also take "inf", "1e999" and "¹".
_NUMBER = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,6})?")
# A bearer-like run: long enough that blanking it never eats an ordinary word.
_SHORTEST_SECRET = 8


def session(timeout: float, *, connector: aiohttp.BaseConnector | None = None,
            response_class: type[aiohttp.ClientResponse] | None = None) -> aiohttp.ClientSession:
    """A session whose every request ends within `timeout` seconds, identifying as statusd."""
    extra: dict[str, Any] = {"response_class": response_class} if response_class else {}
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        headers={"User-Agent": "statusd"},
        **extra,
    )


class HttpChannel:
    """What every channel that speaks HTTP itself starts from: its name, language and limit,
    the one timeout its requests keep to, and one session opened at first use and closed with it."""

    max_chars: int | None

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig, *, max_chars: int | None) -> None:
        self.name = config.name
        self.language = config.language
        self.max_chars = max_chars
        # The channel's own `timeout` option, else the delivery section's.
        self._seconds = float(config.options.timeout or delivery.timeout)
        self._http: aiohttp.ClientSession | None = None

    def _http_session(self) -> aiohttp.ClientSession:
        """The channel's session, opened at the first request."""
        if self._http is None:
            self._http = self._new_session()
        return self._http

    def _new_session(self) -> aiohttp.ClientSession:
        return session(self._seconds)

    async def close(self) -> None:
        """Release the session's connections; a later request opens a new one."""
        if self._http is not None:
            await self._http.close()
            self._http = None


async def read_at_most(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The body, or its first `limit` + 1 bytes when it is longer (one read() gives only what has arrived)."""
    raw = b""
    while len(raw) <= limit:
        part = await stream.read(limit + 1 - len(raw))
        if not part:
            break
        raw += part
    return raw


def no_answer(where: str, timeout: float) -> str:
    """The sentence for a request that got no answer in time."""
    return f"no answer from {where} within {timeout:g} s"


def unreachable(where: str, err: BaseException) -> str:
    """The sentence for a connection that failed, naming the cause without the request's URL."""
    found = _ERRNO.search(str(err))
    if found:
        return f"cannot reach {where}: {found.group(1).strip().rstrip(' (')}"
    if isinstance(err, aiohttp.InvalidURL):
        return f"cannot reach {where}: the address is not a valid URL"
    # ClientConnectorError and friends name the host and port, never the path or query.
    detail = str(err) if isinstance(err, aiohttp.ClientConnectorError) else ""
    return f"cannot reach {where}: {type(err).__name__}{f': {detail}' if detail else ''}"


def transport_error(err: BaseException, where: str, timeout: float) -> TransientError | None:
    """The TransientError a timeout or connection failure means; None for anything else."""
    if isinstance(err, asyncio.TimeoutError | TimeoutError):
        return TransientError(no_answer(where, timeout))
    if isinstance(err, aiohttp.ClientError | OSError):
        return TransientError(unreachable(where, err))
    return None


@asynccontextmanager
async def mapped(where: str, seconds: float) -> AsyncIterator[None]:
    """Run a request: a timeout or connection failure leaves as TransientError, `from` it."""
    try:
        yield
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        error = transport_error(err, where, seconds)
        assert error is not None  # every caught type maps
        raise error from err


def parsed(text: str, empty: Any = None) -> Any:
    """The JSON value an answer's body holds: `empty` for no body, None for one that is not JSON."""
    if not text:
        return empty
    try:
        return json.loads(text)
    except ValueError:
        return None


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or X-RateLimit-Reset (epoch)."""
    now = time.time() if now is None else now
    value = (headers.get("Retry-After") or "").strip()
    if _NUMBER.fullmatch(value):
        return max(0.0, float(value))
    if value:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError, IndexError):
            pass
    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if _NUMBER.fullmatch(reset):
        return max(0.0, float(reset) - now)
    return None


def snippet(text: str, secrets: Iterable[str] = ()) -> str:
    """At most SNIPPET characters of an answer's body: tags out, spacing folded, secrets blanked."""
    plain = " ".join(_TAGS.sub(" ", text[: SNIPPET * 20]).split())
    return redact(plain, secrets)[:SNIPPET]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret long enough to be one replaced by "[secret]"."""
    for secret in secrets:
        if len(secret) >= _SHORTEST_SECRET:
            text = text.replace(secret, "[secret]")
    return text
