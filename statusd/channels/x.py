"""X (Twitter) channel: posts through tweepy's AsyncClient, OAuth 1.0a user context.

tweepy always calls https://api.twitter.com. The `connect_to` option ("HOST:PORT",
like curl's --connect-to) makes our own aiohttp session open its TCP connections
there instead, while TLS is still checked against api.twitter.com: the request,
its signature and the certificate check are exactly what production does. Tests
(and sites behind a TLS-inspecting egress proxy) add `ca_file`, the CA bundle
trusted instead of the system's.
"""

from __future__ import annotations

import logging
import socket
import ssl
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from tweepy.asynchronous import AsyncClient  # type: ignore[import-untyped]

from statusd.channels import http
from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.options import XOptions
from statusd.channels.x_errors import FAILURES, classify, rate_limit_wait
from statusd.channels.x_text import INVALID, comparable, weighted_length
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig

__all__ = ["X", "comparable", "rate_limit_wait", "snowflake_time", "weighted_length"]

API_HOSTS = frozenset({"api.twitter.com", "api.x.com"})
MAX_CHARS = 280
FIND_LIMIT = 20
STATUS_URL = "https://x.com/i/web/status/{id}"  # needs no user name, so no extra API call
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657  # X's ids: milliseconds since this, shifted left 22 bits
SNOWFLAKE_SLACK = 2.0  # seconds: X's clock and ours may differ a little
# tweepy logs each request's headers, OAuth Authorization included, at DEBUG.
logging.getLogger("tweepy").setLevel(logging.INFO)


class X(http.HttpChannel):
    """Posts to one X account with OAuth 1.0a user-context keys."""

    kind: ClassVar[str] = "x"
    # X has no idempotency key: after a crash, find() looks the post up instead.
    honours_idempotency: ClassVar[bool] = False
    # X answers 403 "duplicate content" to a text the account already posted.
    refuses_repeats: ClassVar[bool] = True

    Options = XOptions  # what its section in statusd.yaml holds (statusd.channels.options)

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        super().__init__(config, delivery, max_chars=MAX_CHARS)
        options: XOptions = config.options
        keys = {"consumer_key": options.consumer_key.read() or "",
                "consumer_secret": options.consumer_secret.read() or "",
                "access_token": options.access_token.read() or "",
                "access_token_secret": options.access_token_secret.read() or ""}
        self._client = AsyncClient(**keys, return_type=dict, wait_on_rate_limit=False)
        self._user_id = _user_id_from_token(keys["access_token"])
        self._connect_to: str = options.connect_to or ""
        self._ca_file: str = options.ca_file or ""

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
        text = unicodedata.normalize("NFC", message.text).translate(INVALID)
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
        await super().close()
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
        except FAILURES as err:
            raise classify(err, self._where(), self._seconds) from err
        return answer if isinstance(answer, dict) else {}

    def _ensure_session(self) -> None:
        self._client.session = self._http_session()

    def _new_session(self) -> aiohttp.ClientSession:
        return _session(self._connect_to, self._ca_file, self._seconds)

    def _where(self) -> str:
        return "api.twitter.com" + (f" (via {self._connect_to})" if self._connect_to else "")



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
