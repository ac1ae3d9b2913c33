"""Mastodon channel: statuses posted with Mastodon.py, whose blocking calls run in a thread."""

from __future__ import annotations

import asyncio
import html
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import requests
import structlog
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
from mastodon._url_regex import url_regex  # Mastodon.py's port of the server's URL pattern

from statusd.channels.base import ChannelError, PermanentError, Reply, Sent, TransientError
from statusd.compose.message import Message
from statusd.config.options import Duration, Url
from statusd.config.types import ChannelConfig, DeliveryConfig, Secret

log = structlog.get_logger()

DEFAULT_MAX_CHARS = 500  # stock Mastodon, until the instance says otherwise
URL_LENGTH = 23  # every URL Mastodon recognises counts this much, whatever its length
LOOKBACK = 40  # the most statuses Mastodon returns in one page
VISIBILITIES = ("public", "unlisted", "private", "direct")
# What Mastodon.py's pattern may miss but the server may still count as 23 (a TLD
# newer than the pattern): one candidate per scheme, trailing punctuation left out.
_URL_LIKE = re.compile(r"https?://(?:(?!https?://)\S)+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\"»…*"
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_PARAGRAPH = re.compile(r"</p>\s*<p[^>]*>", re.IGNORECASE)
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def measure(text: str) -> int:
    """Length as Mastodon counts it, never less: code points (Mastodon counts grapheme
    clusters, which are never more), every URL 23."""
    total, last = 0, 0
    for match in url_regex.finditer(text):
        total += _unlinked_length(text[last:match.start(3)]) + URL_LENGTH
        last = match.end(3)
    return total + _unlinked_length(text[last:])


def _unlinked_length(text: str) -> int:
    # A URL the pattern missed still counts at least 23 in case the server links it.
    short = (URL_LENGTH - len(m.group().rstrip(_TRAILING)) for m in _URL_LIKE.finditer(text))
    return len(text) + sum(max(0, gap) for gap in short)


def plain_text(content: str) -> str:
    """A status's `content` (HTML) back as the text that was posted."""
    text = _BREAK.sub("\n", _PARAGRAPH.sub("\n\n", content))
    return html.unescape(_TAG.sub("", text))


def _same_text(a: str, b: str) -> bool:
    def norm(text: str) -> str:
        return " ".join(unicodedata.normalize("NFC", text).split())

    return norm(a) == norm(b)


class Mastodon:
    """Posts statuses to one account on a Mastodon instance (or a server with its API)."""

    kind: ClassVar[str] = "mastodon"
    # Mastodon keeps an Idempotency-Key about an hour; past that, find() looks the post up.
    honours_idempotency: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options:
        """The instance, the account's token, who sees the posts, and an optional timeout."""

        instance: Url
        token: Secret
        visibility: Literal["public", "unlisted", "private", "direct"] = "public"
        timeout: Duration | None = None

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        self.name = config.name
        self.language = config.language
        self.max_chars: int | None = DEFAULT_MAX_CHARS
        options: Mastodon.Options = config.options
        instance: str = options.instance.rstrip("/")
        self._host = urlsplit(instance).netloc or instance
        self._token_where = options.token.describe()
        self._token = options.token.read() or ""
        self._visibility: str = options.visibility
        self._timeout: float = options.timeout or delivery.timeout
        self._account_id: str | None = None
        # No request is made here: Mastodon.py only checks the version when asked to.
        self._client = Client(
            access_token=self._token, api_base_url=instance, version_check_mode="none",
            ratelimit_method="throw", request_timeout=self._timeout, user_agent="statusd",
        )

    def measure(self, text: str) -> int:
        return measure(text)

    async def open(self) -> None:
        """Read the instance's character limit; 500 if it does not say."""
        self._check_visibility()
        instance = await self._call(_none_if_missing(self._client.instance_v2))
        limit = _max_characters(instance)
        self.max_chars = limit or DEFAULT_MAX_CHARS
        log.info("mastodon_limit", channel=self.name, max_chars=self.max_chars,
                 announced=limit is not None)

    async def whoami(self) -> str:
        account = await self._call(self._client.account_verify_credentials)
        self._account_id = str(account["id"])
        acct = str(account.get("acct") or account.get("username") or self._account_id)
        handle = f"@{acct}" if "@" in acct else f"@{acct}@{self._host}"
        name = account.get("display_name")
        return f"{handle} ({name})" if name else handle

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        self._check_visibility()
        status = await self._call(
            self._client.status_post,
            message.text,
            in_reply_to_id=reply_to.parent if reply_to else None,
            visibility=self._visibility,
            language=message.language or self.language,
            idempotency_key=idempotency_key,
        )
        return Sent(remote_id=str(status["id"]), url=status.get("url"))

    async def delete(self, remote_id: str) -> None:
        deleted = await self._call(_none_if_missing(self._client.status_delete), remote_id)
        if deleted is None:
            log.info("mastodon_delete_missing", channel=self.name, remote_id=remote_id)

    async def find(
        self, message: Message, *, idempotency_key: str, since: datetime | None = None,
        reply_to: Reply | None = None, exclude: frozenset[str] = frozenset(),
    ) -> Sent | None:
        """The newest of the account's last 40 statuses with this text (made at or after
        `since`, if given), or None.

        Mastodon does not show the Idempotency-Key, so the text is all there is to match.
        """
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # Mastodon's times are UTC
        account_id = self._account_id or await self._whoami_id()
        statuses = await self._call(
            self._client.account_statuses, account_id, exclude_reblogs=True, limit=LOOKBACK
        )
        for status in statuses:  # newest first
            if since is not None and _created(status) < since:
                break
            if _same_text(plain_text(str(status.get("content") or "")), message.text):
                return Sent(remote_id=str(status["id"]), url=status.get("url"))
        return None

    async def close(self) -> None:
        await asyncio.to_thread(self._client.session.close)

    # -- internals ---------------------------------------------------------------------------

    async def _whoami_id(self) -> str:
        await self.whoami()
        assert self._account_id is not None
        return self._account_id

    def _check_visibility(self) -> None:
        if self._visibility not in VISIBILITIES:
            raise PermanentError(
                f"channel {self.name}: visibility {self._visibility!r} is not one of "
                f"{', '.join(VISIBILITIES)}; fix it in statusd.yaml"
            )

    async def _call(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._blocking, call, *args, **kwargs)

    def _blocking(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Runs in a thread: the call, its failure raised as a TransientError or PermanentError."""
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
            raise self._classified(err) from err
        except MastodonError as err:
            raise self._error(PermanentError, f"Mastodon.py refused the call: {err}") from err

    def _reset_wait(self) -> float | None:
        # Mastodon.py parses X-RateLimit-Reset (an ISO time) into epoch seconds on our clock.
        reset = self._client.ratelimit_reset
        return None if reset is None else max(0.0, float(reset) - time.time())

    def _network_reason(self, err: MastodonNetworkError) -> str:
        cause = err.__context__  # Mastodon.py wraps the requests error without `from`
        if isinstance(cause, requests.Timeout):
            return f"no answer from {self._host} within {self._timeout:g} s"
        found = _ERRNO.search(str(cause))
        return f"cannot reach {self._host}: {found.group(1) if found else type(cause).__name__}"

    def _classified(self, err: MastodonAPIError) -> ChannelError:
        if len(err.args) < 4 or not isinstance(err.args[1], int):
            # A 2xx answer that is not JSON (a proxy's page): the post may or may not exist.
            return self._error(TransientError, f"{self._host} answered something that is not "
                                               f"Mastodon's API: {str(err)[:200]}")
        code, detail = err.args[1], err.args[3] or err.args[2]
        said = f"{self._host} answered HTTP {code}: {detail}"
        if code == 401:
            return self._error(PermanentError, f"{said}; the access token is invalid or revoked: "
                               f"create a new one (Preferences > Development, scopes read:accounts "
                               f"and write:statuses) and set it in {self._token_where}")
        if code == 403:
            return self._error(PermanentError, f"{said}; the access token lacks a scope: create "
                               f"one with read:accounts and write:statuses")
        if code == 404:
            return self._error(PermanentError, f"{said}; the status (or the one replied to) "
                               f"does not exist, or {self._host} is not a Mastodon server")
        if code == 429:
            return self._error(TransientError, said, retry_after=self._reset_wait())
        if code == 408 or code >= 500:
            return self._error(TransientError, said)
        return self._error(PermanentError, said)

    def _error(self, kind: type[ChannelError], reason: str, **extra: Any) -> ChannelError:
        """The error with the token blanked out, should any answer have echoed it."""
        if len(self._token) >= 8:  # a shorter one would blank parts of ordinary words
            reason = reason.replace(self._token, "[token]")
        return kind(reason, **extra)


def _none_if_missing(call: Callable[..., Any]) -> Callable[..., Any]:
    """`call`, answering None instead of raising on 404 (gone already, or no such endpoint)."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except MastodonNotFoundError:
            return None

    return wrapped


def _max_characters(instance: Mapping[str, Any] | None) -> int | None:
    try:
        value = instance["configuration"]["statuses"]["max_characters"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def _created(status: Mapping[str, Any]) -> datetime:
    value = status.get("created_at")
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
