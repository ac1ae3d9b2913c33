"""Webhook channel: a signed JSON POST to any URL (signage, chat bridges, your own code)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from statusd.channels import http
from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.http import retry_after
from statusd.channels.options import WebhookOptions
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig

SIGNATURE_HEADER = "X-Statusd-Signature"


def sign(secret: str, body: bytes) -> str:
    """The value of X-Statusd-Signature: "sha256=" and the HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhook(http.HttpChannel):
    """POSTs each message as JSON, signed with a shared secret, with an Idempotency-Key."""

    kind: ClassVar[str] = "webhook"
    honours_idempotency: ClassVar[bool] = True

    Options = WebhookOptions  # what its section in statusd.yaml holds (statusd.channels.options)

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        super().__init__(config, delivery, max_chars=None)
        options: WebhookOptions = config.options
        self._url: str = options.url
        self._secret = options.secret.read() or ""

    def measure(self, text: str) -> int:
        return len(text)

    async def open(self) -> None:
        return None

    async def whoami(self) -> str:
        return f"webhook at {_where(self._url)}"

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        body = json.dumps(_payload(message, idempotency_key, reply_to), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            SIGNATURE_HEADER: sign(self._secret, body),
            "User-Agent": "statusd",
        }
        data = await self._request("POST", self._url, body, headers)
        remote_id = data.get("id") if isinstance(data, dict) else None
        return Sent(remote_id=str(remote_id or idempotency_key))

    async def delete(self, remote_id: str) -> None:
        body = json.dumps({"retract": remote_id}).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)}
        await self._request("DELETE", self._url, body, headers)

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        # The receiver honours Idempotency-Key, so sending again is safe.
        return None

    async def _request(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Any:
        async with http.mapped(_where(url), self._seconds):
            async with self._http_session().request(method, url, data=body, headers=headers) as response:
                text = await response.text(errors="replace")
        _raise_for(response.status, response.headers, http.snippet(text, [self._secret]))
        return http.parsed(text)


def _payload(message: Message, key: str, reply_to: Reply | None) -> dict[str, Any]:
    site, _, service = message.target.partition("/")
    return {
        "id": key,
        "event_id": message.event_id,
        "kind": message.kind,
        "site": site,
        "service": service or None,
        "level": message.level,
        "language": message.language,
        "text": message.text,
        "link": message.link,
        "reply_to": reply_to.parent if reply_to else None,
    }


def _raise_for(status: int, headers: Mapping[str, str], text: str) -> None:
    if status < 300:
        return
    reason = f"HTTP {status}: {text}"  # a sanitised snippet of the body
    if status == 429 or status == 408 or status >= 500:
        raise TransientError(reason, retry_after=retry_after(headers))
    raise PermanentError(reason)


def _where(url: str) -> str:
    """Scheme and host only: webhook paths often carry a token (Slack, Discord)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
