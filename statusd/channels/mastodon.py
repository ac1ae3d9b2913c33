"""Mastodon channel: statuses posted with Mastodon.py, whose blocking calls run in a thread."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import structlog

from statusd import textfit
from statusd.channels.base import ChannelError, PermanentError, Reply, Sent
from statusd.channels.mastodon_calls import Calls, none_if_missing
from statusd.channels.mastodon_errors import TooLong
from statusd.channels.mastodon_servers import (
    DEFAULT_MAX_CHARS,
    URL_LENGTH,
    Instance,
    comparable,
    comparable_content,
    instance_from,
    measure,
    plain_text,
)
from statusd.channels.options import MastodonOptions
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig

log = structlog.get_logger()

__all__ = ["DEFAULT_MAX_CHARS", "URL_LENGTH", "Mastodon", "measure", "plain_text"]

LOOKBACK = 40  # the most statuses Mastodon returns in one page
VISIBILITIES = ("public", "unlisted", "private", "direct")


class Mastodon:
    """Posts statuses to one account on a Mastodon instance (or a server with its API)."""

    kind: ClassVar[str] = "mastodon"
    Options = MastodonOptions  # what its section in statusd.yaml holds (statusd.channels.options)

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        self.name = config.name
        self.language = config.language
        self.max_chars: int | None = DEFAULT_MAX_CHARS
        options: MastodonOptions = config.options
        instance: str = options.instance.rstrip("/")
        self._host = urlsplit(instance).netloc or instance
        self._visibility: str = options.visibility
        self._account_id: str | None = None
        self._call = Calls(instance, self._host, options.token.read() or "", options.token.describe(),
                           options.timeout or delivery.timeout)
        self._client = self._call.client
        # Until the instance says what it is, it is not trusted with Idempotency-Key and
        # URLs count their raw length where that is more (docs/platforms.md).
        self.server = Instance()
        self._raw_urls = True

    @property
    def honours_idempotency(self) -> bool:
        """Whether a repeated Idempotency-Key is recognised: only on stock Mastodon, which
        keeps a key about an hour (past that, and on other servers, find() looks first)."""
        return self.server.stock

    def measure(self, text: str) -> int:
        return measure(text, self.server.url_length, raw_urls=self._raw_urls,
                       graphemes=not self._raw_urls)

    async def open(self) -> None:
        """Learn the server: its limits and kind, from /api/v2/instance or else /api/v1/instance."""
        self._check_visibility()
        await self._learn()

    def describe_limit(self) -> str:
        """Which limit is used and where it came from, for `statusd preview`."""
        if self.server.read:
            urls = "at their raw length" if self._raw_urls else f"as {self.server.url_length}"
            return (f"{self.max_chars} characters, read from {self._host}{self.server.endpoint} "
                    f"(URLs count {urls})")
        return f"{self.max_chars} characters, a default: {self._host} did not say its limit"

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
        """Post the status; refused as too long, shortened by what the server says and sent once more."""
        self._check_visibility()
        if not self.server.endpoint:
            await self._learn(quiet=True)
        try:
            return await self._post(message.text, message, idempotency_key, reply_to)
        except TooLong as refusal:
            shorter = self._refit(message, refusal.limit)
            if shorter is None:
                raise
            log.info("mastodon_refit", channel=self.name, limit=self.max_chars,
                     before=len(message.text), after=len(shorter))
            # A fresh key: the refusal made nothing, and the first key stays the first text's.
            return await self._post(shorter, message, f"{idempotency_key}.fit", reply_to)

    async def delete(self, remote_id: str) -> None:
        deleted = await self._call(none_if_missing(self._client.status_delete), remote_id)
        if deleted is None:
            log.info("mastodon_delete_missing", channel=self.name, remote_id=remote_id)

    async def find(
        self, message: Message, *, idempotency_key: str, since: datetime | None = None,
        reply_to: Reply | None = None, exclude: frozenset[str] = frozenset(),
    ) -> Sent | None:
        """The newest of the account's last 40 statuses that is this message, or None.

        Servers show no Idempotency-Key, so a status is this message when it answers
        the same post (or none), was made at or after `since` (to the second: some
        servers keep no finer time), is not another delivery's (`exclude`), and its
        text matches once both are reduced to what servers keep (HTML, entities,
        spacing, shortened links). The shortened text a refusal led to counts too.
        """
        earliest = _second(since)
        parent = reply_to.parent if reply_to else None
        wanted = {comparable(message.text)}
        shorter = self._shortened(message)  # what a refusal as too long would have sent
        if shorter is not None:
            wanted.add(comparable(shorter))
        account_id = self._account_id or await self._whoami_id()
        statuses = await self._call(
            self._client.account_statuses, account_id, exclude_reblogs=True, limit=LOOKBACK
        )
        for status in statuses:  # newest first
            if earliest is not None and _created(status) < earliest:
                break
            if str(status["id"]) in exclude or _parent(status) != parent:
                continue
            if comparable_content(str(status.get("content") or "")) in wanted:
                return Sent(remote_id=str(status["id"]), url=status.get("url"))
        return None

    async def close(self) -> None:
        await self._call.close()

    # -- internals ---------------------------------------------------------------------------

    async def _learn(self, *, quiet: bool = False) -> None:
        """Read the instance: v2, then v1 where v2 is missing (404); the defaults if neither says."""
        try:
            found = instance_from(await self._call(none_if_missing(self._client.instance_v2)),
                                  "/api/v2/instance")
            if found is None or not found.read:  # v2 missing, or silent on the limit
                older = instance_from(await self._call(none_if_missing(self._client.instance_v1)),
                                      "/api/v1/instance")
                found = older if found is None or (older is not None and older.read) else found
        except ChannelError:
            if quiet:
                return  # the send that follows says what is wrong
            raise
        self.server = found or Instance(endpoint="none")
        self._raw_urls = not self.server.stock
        self.max_chars = self.server.max_chars or DEFAULT_MAX_CHARS
        log.info("mastodon_limit", channel=self.name, max_chars=self.max_chars,
                 announced=self.server.read, endpoint=self.server.endpoint or "none",
                 version=self.server.version, idempotency=self.server.stock,
                 urls="raw" if self._raw_urls else self.server.url_length)

    async def _post(self, text: str, message: Message, key: str, reply_to: Reply | None) -> Sent:
        status = await self._call(
            self._client.status_post,
            text,
            in_reply_to_id=reply_to.parent if reply_to else None,
            visibility=self._visibility,
            language=message.language or self.language,
            idempotency_key=key,
        )
        return Sent(remote_id=str(status["id"]), url=status.get("url"))

    def _refit(self, message: Message, limit: int) -> str | None:
        """Learn from a refusal as too long, and the message shortened to what the server
        will take; None when it cannot be made shorter.

        From then on URLs count their raw length (the servers that refuse what
        Mastodon's rule lets through count them so) and the named limit is the limit.
        """
        if limit > 0:
            self.max_chars = limit
        self._raw_urls = True
        return self._shortened(message)

    def _shortened(self, message: Message) -> str | None:
        """The message as a refusal as too long makes it now (the same on every retry)."""
        allowed = self.max_chars or DEFAULT_MAX_CHARS

        def raw(text: str) -> int:
            return measure(text, self.server.url_length, raw_urls=True)

        counted = raw(message.text)
        # Over what the server allows by the difference, or else a tenth shorter.
        target = allowed if counted > allowed else counted - max(1, counted // 10)
        body, link = message.text, message.link
        if link and body.endswith(textfit.SEPARATOR + link):
            body = body[: -len(textfit.SEPARATOR + link)]
        elif body == link:
            return None
        else:
            link = None  # the text does not end with the site link: it is cut as it is
        shorter = textfit.fit(body, link, target, raw)
        return shorter if shorter and shorter != message.text else None

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


def _second(since: datetime | None) -> datetime | None:
    if since is None:
        return None
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # Mastodon's times are UTC
    return since.replace(microsecond=0)


def _parent(status: Mapping[str, Any]) -> str | None:
    parent = status.get("in_reply_to_id")
    return None if parent is None else str(parent)


def _created(status: Mapping[str, Any]) -> datetime:
    value = status.get("created_at")
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
