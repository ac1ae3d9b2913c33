"""X (Twitter) channel: posts through tweepy's AsyncClient, OAuth 1.0a user context.

tweepy always calls https://api.twitter.com. The `connect_to` option ("HOST:PORT",
like curl's --connect-to) makes our own aiohttp session open its TCP connections
there instead, while TLS is still checked against api.twitter.com: the request,
its signature and the certificate check are exactly what production does. Tests
(and sites behind a TLS-inspecting egress proxy) add `ca_file`, the CA bundle
trusted instead of the system's.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import socket
import ssl
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
import tweepy  # type: ignore[import-untyped]
from aiohttp.abc import AbstractResolver, ResolveResult
from tweepy.asynchronous import AsyncClient  # type: ignore[import-untyped]

from statusd.channels import http
from statusd.channels.base import (
    ChannelError,
    DuplicateError,
    PermanentError,
    Reply,
    Sent,
    TransientError,
)
from statusd.compose.message import Message
from statusd.config.options import CaFile, Duration, HostPort
from statusd.config.types import ChannelConfig, DeliveryConfig, Secret

API_HOSTS = frozenset({"api.twitter.com", "api.x.com"})
MAX_CHARS = 280
URL_WEIGHT = 23
FIND_LIMIT = 20
STATUS_URL = "https://x.com/i/web/status/{id}"  # needs no user name, so no extra API call
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657  # X's ids: milliseconds since this, shifted left 22 bits
SNOWFLAKE_SLACK = 2.0  # seconds: X's clock and ours may differ a little
# X refuses posts holding these (twitter-text's invalid characters); they are never visible.
_INVALID = dict.fromkeys(map(ord, "\ufffe\ufeff\uffff"))
# tweepy logs each request's headers, OAuth Authorization included, at DEBUG.
logging.getLogger("tweepy").setLevel(logging.INFO)

# -- X's weighted length (twitter-text config v3) --------------------------------------------

_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
# A bare domain never swallows the scheme of a URL glued to it ("0.https://...").
_URL = re.compile(
    r"(?P<scheme>https?://)?"
    rf"(?P<host>(?:{_LABEL}\.)+(?P<tld>[^\W\d_]{{2,}}+)(?!://)|(?(scheme)[\w.-]+|(?!)))"
    r"(?::\d{1,5})?(?:[/?#][!-~]*)?",
    re.IGNORECASE,
)
_URL_BEFORE = re.compile(r"[\w@.\-/:#$]")
_TRAILING = ".,;:!?'\")]}>"
# Code points an emoji starts with: roughly Unicode's Extended_Pictographic (no data file needed).
_PICTO = re.compile(
    "[\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u2388\u23cf"
    "\u23e9-\u23f3\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u27bf"
    "\u2934\u2935\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001faff]"
)
# twemoji matches FE0F after these separately (2 more); after astral pictographs we assume so too.
_FE0F_APART = re.compile("[\u23e9-\u23ec\u23f0\u23f3\u267e\u26ce\u2705\u2728\u274c\u274e"
                         "\u2753-\u2755\u2795-\u2797\u27b0\u27bf\U00010000-\U0010ffff]")
_MOD = "(?:[\U0001f3fb-\U0001f3ff]|\ufe0f)"
_EMOJI = re.compile(
    "[#*0-9]\ufe0f?\u20e3"                                       # keycaps
    "|[\u00a9\u00ae\u2122]\ufe0f"                                 # ©️ ®️ ™️ (bare: text)
    "|[\U0001f1e6-\U0001f1ff]{2}"                                 # flags
    "|\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f"               # subdivision flags
    f"|(?P<seq>{_PICTO.pattern}{_MOD}?(?:\u200d{_PICTO.pattern}{_MOD}?)+)"  # ZWJ sequences
    f"|(?P<one>{_PICTO.pattern})(?P<mod>{_MOD})?"
)


def weighted_length(text: str) -> int:
    """Length as X counts it: see twitter-text's config v3 (weights 1 and 2, URLs 23).

    Where this approximation cannot tell what X recognises, it counts the larger of
    the two readings, so a text it accepts is never refused as too long.
    """
    text = unicodedata.normalize("NFC", text)
    total, position = 0, 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        after_word = match.start() > 0 and _URL_BEFORE.match(text[match.start() - 1])
        if not url or (after_word and not match["scheme"]):
            continue  # "info@bib.fr" holds no link on X
        total += _chars_weight(text[position : match.start()])
        # With a scheme and a real-looking domain it is always a link on X; for anything
        # else (bare domains, IP addresses, glued to a word) X may or may not make it one.
        sure = bool(match["scheme"] and match["tld"]) and not after_word
        total += URL_WEIGHT if sure else max(URL_WEIGHT, _chars_weight(url))
        position = match.start() + len(url)
    return total + _chars_weight(text[position:])


def _chars_weight(text: str) -> int:
    total, position = 0, 0
    for match in _EMOJI.finditer(text):
        total += _plain_weight(text[position : match.start()]) + _emoji_weight(match)
        position = match.end()
    return total + _plain_weight(text[position:])


def _emoji_weight(match: re.Match[str]) -> int:
    if match["one"] and match["mod"] == "\ufe0f" and _FE0F_APART.match(match["one"]):
        return 4
    return 2


def _plain_weight(text: str) -> int:
    return sum(1 if any(lo <= ord(c) <= hi for lo, hi in _LIGHT) else 2 for c in text)


# -- the channel -------------------------------------------------------------------------------


class X:
    """Posts to one X account with OAuth 1.0a user-context keys."""

    kind: ClassVar[str] = "x"
    # X has no idempotency key: after a crash, find() looks the post up instead.
    honours_idempotency: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Options:
        """The app's and the account's OAuth 1.0a keys; where to connect and whom to trust (tests, proxies)."""

        consumer_key: Secret
        consumer_secret: Secret
        access_token: Secret
        access_token_secret: Secret
        timeout: Duration | None = None
        connect_to: HostPort | None = None
        ca_file: CaFile | None = None

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        self.name = config.name
        self.language = config.language
        self.max_chars: int | None = MAX_CHARS
        options: X.Options = config.options
        keys = {"consumer_key": options.consumer_key.read() or "",
                "consumer_secret": options.consumer_secret.read() or "",
                "access_token": options.access_token.read() or "",
                "access_token_secret": options.access_token_secret.read() or ""}
        self._client = AsyncClient(**keys, return_type=dict, wait_on_rate_limit=False)
        self._user_id = _user_id_from_token(keys["access_token"])
        self._timeout = float(options.timeout or delivery.timeout)
        self._connect_to: str = options.connect_to or ""
        self._ca_file: str = options.ca_file or ""
        self._session: aiohttp.ClientSession | None = None

    def measure(self, text: str) -> int:
        return weighted_length(text)

    async def open(self) -> None:
        self._ensure_session()

    async def whoami(self) -> str:
        data = (await self._call(self._client.get_me, user_auth=True)).get("data") or {}
        if not data.get("id") or not data.get("username"):
            raise TransientError("X did not say which account these keys belong to: "
                                 f"{http.snippet(str(data))}")
        self._user_id = str(data["id"])
        return f"@{data['username']} ({data.get('name', '')})"

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        text = unicodedata.normalize("NFC", message.text).translate(_INVALID)
        answer = await self._call(self._client.create_tweet, text=text, user_auth=True,
                                  in_reply_to_tweet_id=reply_to.parent if reply_to else None)
        tweet_id = str((answer.get("data") or {}).get("id") or "")
        if not tweet_id:
            raise TransientError(f"X answered without a post id: {http.snippet(str(answer))}")
        return Sent(remote_id=tweet_id, url=STATUS_URL.format(id=tweet_id))

    async def delete(self, remote_id: str) -> None:
        await self._call(self._client.delete_tweet, remote_id, user_auth=True)

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        """The account's newest post with this text, made at or after `since`, not in `exclude`.

        X's recent timeline is short and t.co rewrites links. `since` is not asked
        of the API (start_time needs a wider token scope on some plans): a post's
        id is a snowflake that carries its creation time, which is compared instead.
        """
        user_id = self._user_id or await self._me()
        answer = await self._call(self._client.get_users_tweets, user_id,
                                  max_results=FIND_LIMIT, user_auth=True)
        wanted = comparable(message.text)
        earliest = None if since is None else since.timestamp() - SNOWFLAKE_SLACK
        for tweet in answer.get("data") or []:
            tweet_id = str(tweet.get("id") or "")
            made = snowflake_time(tweet_id)
            if tweet_id in exclude or (earliest is not None and made is not None and made < earliest):
                continue
            if comparable(str(tweet.get("text", ""))) == wanted:
                return Sent(remote_id=tweet_id, url=STATUS_URL.format(id=tweet_id))
        return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._client.session = None

    async def _me(self) -> str:
        await self.whoami()
        assert self._user_id is not None  # whoami sets it or raises
        return self._user_id

    async def _call(
        self, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """One tweepy request on our session; every failure becomes a ChannelError."""
        self._ensure_session()
        try:
            answer = await method(*args, **kwargs)
        except _FAILURES as err:
            raise _classify(err, self._where(), self._timeout) from err
        return answer if isinstance(answer, dict) else {}

    def _ensure_session(self) -> None:
        if self._session is None:
            self._session = _session(self._connect_to, self._ca_file, self._timeout)
            self._client.session = self._session

    def _where(self) -> str:
        return "api.twitter.com" + (f" (via {self._connect_to})" if self._connect_to else "")


def comparable(text: str) -> str:
    """A post's text reduced to what survives X's rewriting: URLs (t.co), escapes, spacing."""
    text = unicodedata.normalize("NFC", html.unescape(text)).translate(_INVALID)
    return " ".join(_URL.sub(" ", text).split())


def snowflake_time(tweet_id: str) -> float | None:
    """When a post was made (epoch seconds), from its snowflake id; None for another id."""
    if not tweet_id.isascii() or not tweet_id.isdigit() or len(tweet_id) > 20:
        return None
    return ((int(tweet_id) >> 22) + SNOWFLAKE_EPOCH_MS) / 1000.0


def _user_id_from_token(token: str) -> str | None:
    # OAuth 1.0a access tokens start with the account's numeric id: "12345-abc...".
    head, dash, _ = token.partition("-")
    return head if dash and head.isdigit() else None


# -- the session: connect_to and the CA ----------------------------------------------------


class _ConnectTo(AbstractResolver):
    """Resolves X's API host names to connect_to's host and port; other names as usual."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._default = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.lower().rstrip(".") not in API_HOSTS:
            return await self._default.resolve(host, port, family)
        found = await self._default.resolve(self._host, self._port, family)
        # Keep the asked-for name: TLS checks the certificate against it, like curl does.
        return [{**entry, "hostname": host} for entry in found]

    async def close(self) -> None:
        await self._default.close()


class _TolerantResponse(aiohttp.ClientResponse):
    """An error answer whose body is not JSON (a proxy's HTML page) still reads as an error.

    tweepy parses every error body as JSON; without this an HTML 502 would surface as
    a decoding error instead of tweepy's TwitterServerError.
    """

    async def json(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().json(*args, **kwargs)
        except (aiohttp.ContentTypeError, ValueError):
            if self.status < 300:
                raise
            return {"detail": http.snippet(await self.text(errors="replace"))}


def _session(connect_to: str, ca_file: str, timeout: float) -> aiohttp.ClientSession:
    resolver = _ConnectTo(*_host_port(connect_to)) if connect_to else None
    connector = aiohttp.TCPConnector(resolver=resolver, ssl=_tls(ca_file))
    return http.session(timeout, connector=connector, response_class=_TolerantResponse)


def _host_port(connect_to: str) -> tuple[str, int]:
    host, _, port = connect_to.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PermanentError(
            f"connect_to should be HOST:PORT such as 127.0.0.1:8443, got {connect_to!r}")
    return host, int(port)


def _tls(ca_file: str) -> ssl.SSLContext | bool:
    if not ca_file:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as err:
        raise PermanentError(
            f"ca_file {ca_file!r} cannot be read as a PEM CA bundle: {err}") from err


# -- errors --------------------------------------------------------------------------------------


# ValueError: a success answer whose body is not JSON (the post may exist: find() will tell).
_FAILURES = (tweepy.HTTPException, asyncio.TimeoutError, aiohttp.ClientError, OSError, ValueError)


def _classify(err: BaseException, where: str, timeout: float) -> ChannelError:
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
