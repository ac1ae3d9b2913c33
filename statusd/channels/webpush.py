"""Web Push channel: a notification to every browser that asked for one site's news, in one language.

Platform facts (RFC 8030 push protocol, RFC 8291 message encryption, RFC 8292 VAPID):
- A subscription is an endpoint URL at the browser vendor's push service (FCM for
  Chrome, Mozilla's autopush for Firefox, Apple's for Safari 16+ and iOS 16.4+
  home-screen apps) and two keys, `p256dh` and `auth`. There is no account:
  the endpoint is the only address, and a capability (kept secret, never logged).
- Each message is encrypted for its one subscription (aes128gcm); the plaintext
  may be at most 4,078 bytes, so a message is held to `max_chars` characters.
- The VAPID JWT (ES256) names the push service's origin (`aud`), expires within
  24 h and carries a contact (`sub`: mailto: or https:).
- `Topic` (≤ 32 base64url characters): a newer message with the same topic
  replaces one the push service still holds: one topic per site, so a phone that
  was offline gets "open", not "closed" then "open". `TTL` is how long the service
  may hold it; `Urgency` (very-low … high) lets a phone on battery wait:
  emergencies are `high`, status changes `normal`, seats and queues `low`.
- 201 means accepted; 404 and 410 mean the subscription is gone for good (it is
  deleted); 429 carries `Retry-After`; 413 is a payload too large.
- Nothing can be taken back once delivered and nothing can be looked up: undo
  is refused, a reply is a plain notification.

One channel per language (`language:`); every webpush channel shares the
subscriptions in the state directory's push.sqlite and the one VAPID key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import aiohttp
import structlog

from statusd.channels import http
from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.options import WebPushOptions
from statusd.channels.webpush_guard import PublicResolver
from statusd.channels.webpush_keys import Signer, load
from statusd.channels.webpush_loop import PushLoop
from statusd.channels.webpush_send import Fanout, Push
from statusd.channels.webpush_store import Subscriptions, store_file
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig

log = structlog.get_logger()

MAX_CHARS = 1000  # at 4 bytes a character in the worst case, still within 4,078 bytes with the rest
STATUS_KINDS = ("status_changed", "closure_planned", "closure_reminder")
# Seconds a push service may hold a message for a phone that is offline.
TTL = {"emergency": 12 * 3600, "status": 24 * 3600, "detail": 1800}
URGENCY = {"emergency": "high", "status": "normal", "detail": "low"}


def topic(site: str) -> str:
    """The Web Push Topic of a site: 32 base64url characters, the same for every message of the site."""
    return base64.urlsafe_b64encode(hashlib.sha256(site.encode()).digest()).decode()[:32]


def weight(message: Message) -> str:
    """emergency, status (closures, reopenings, limited) or detail (seats, queues, a service)."""
    service = message.target.partition("/")[2]
    if message.level == "emergency":
        return "emergency"
    if message.kind in STATUS_KINDS and not service:
        return "status"
    return "detail"


class WebPush(http.HttpChannel):
    """Sends each message to the subscriptions of its site in this channel's language."""

    kind: ClassVar[str] = "webpush"
    # Progress per recipient is kept in push.sqlite under the delivery's key: the same key
    # again sends only to those not yet reached.
    honours_idempotency: ClassVar[bool] = True
    Options = WebPushOptions

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        super().__init__(config, delivery, max_chars=MAX_CHARS)
        options: WebPushOptions = config.options
        self._options = options
        self._key_text = options.vapid_key.read() or ""
        self._source = options.vapid_key.describe()
        self._store: Subscriptions | None = None
        self._fanout: Fanout | None = None
        # The fan-out and its aiohttp session live in a loop of their own (webpush_loop.py).
        self._loop = PushLoop(f"webpush-{self.name}")

    def keep_sessions(self, directory: Path) -> None:
        """The daemon's state directory: where push.sqlite is (the senders call this before `open`)."""
        if self._store is None:
            self._store = Subscriptions(store_file(directory))

    def measure(self, text: str) -> int:
        return len(text)

    async def open(self) -> None:
        self._ready()

    async def whoami(self) -> str:
        signer = self._ready().signer
        return f"Web Push with VAPID key {signer.public_key[:12]}… ({signer.subject})"

    def _ready(self) -> Fanout:
        if self._fanout is not None:
            return self._fanout
        if self._store is None:
            raise PermanentError("the Web Push channel was not given the state directory")
        if not self._options.subject.startswith(("mailto:", "https://")):
            raise PermanentError(f"the VAPID subject of channel {self.name} must be a mailto: or https: "
                                 "address that push services can contact, e.g. mailto:it@library.example")
        try:
            signer = Signer(load(self._key_text), self._options.subject)
        except ValueError as err:
            raise PermanentError(f"{err}: read from {self._source}") from err
        self._fanout = Fanout(self._store, signer, self._http_session, self._options.connections,
                             loopback=self._options.loopback_endpoints)
        return self._fanout

    def _new_session(self) -> aiohttp.ClientSession:
        # A name that resolves inside (the cloud's metadata, the intranet) is unreachable, unless
        # loopback_endpoints lets a local push service be used.
        resolver = None if self._options.loopback_endpoints else PublicResolver()
        connector = aiohttp.TCPConnector(limit=self._options.connections, resolver=resolver)
        return http.session(self._seconds, connector=connector)

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        fanout = self._ready()
        assert self._store is not None
        site = message.target.partition("/")[0]
        level = weight(message)
        total = await asyncio.to_thread(self._store.start_job, idempotency_key, site, self.language,
                                        level != "detail")
        push = Push(self._payload(message, site), topic(site), TTL[level], URGENCY[level])
        outcome = await self._loop.run(fanout.run(idempotency_key, push))
        done = outcome.progress
        # Refused (400, 401, 403, 413): the request or the VAPID key is wrong for them, not worth a retry.
        report = log.warning if done.refused else log.info
        report("push_batch", channel=self.name, site=site, total=total, accepted=done.accepted,
               gone=done.gone, refused=done.refused, left=done.left)
        if done.left:
            raise TransientError(f"{done.left} of {total} subscriptions not reached yet",
                                 retry_after=outcome.retry_after)
        await asyncio.to_thread(self._store.finish, idempotency_key)
        await asyncio.to_thread(self._store.prune)  # the progress of week-old jobs
        return Sent(remote_id=f"push:{idempotency_key}:{done.accepted}/{total}")

    def _payload(self, message: Message, site: str) -> bytes:
        data = {"title": self._options.title or "", "body": message.text, "site": site,
                "level": message.level, "kind": message.kind, "lang": message.language, "tag": topic(site)}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    async def delete(self, remote_id: str) -> None:
        raise PermanentError("a Web Push notification cannot be taken back once sent; "
                             "post a correction instead")

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        # No push service can be asked what it delivered; push.sqlite knows who is left.
        if self._store is not None and await asyncio.to_thread(self._store.finished, idempotency_key):
            return Sent(remote_id=f"push:{idempotency_key}")
        return None

    async def close(self) -> None:
        await self._loop.stop(last=super().close())  # the session is closed in the loop it belongs to
        if self._store is not None:
            self._store.close()
            self._store = None
            self._fanout = None

