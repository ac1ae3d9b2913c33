"""Matrix channel: the client-server API over aiohttp, posting m.notice events into one room.

Each message is an `m.notice` (a bot's notice: clients do not answer it with pings) with a
plain `body` and an HTML `formatted_body`. Thread updates carry an `m.thread` relation to the
thread's first post. Undo is a redaction.

A retry is never a second event: the transaction id in `PUT /rooms/{room}/send/…/{txnId}` is
derived from the delivery's idempotency key, and the homeserver answers a repeated txnId from
the same access token with the first event's id (Synapse keeps them for a day, in its database).
Past that, `find` reads the room back for the key, which every event also carries.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

from statusd.channels import http
from statusd.channels.base import ChannelError, PermanentError, Reply, Sent, TransientError
from statusd.channels.options import MatrixOptions
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig

API = "/_matrix/client/v3"
WEB_URL = "https://matrix.to/#"
# Event content field holding the delivery's idempotency key (namespaced, as the spec asks).
KEY_FIELD = "org.statusd.idempotency_key"
# Homeservers refuse events over 65,536 bytes of JSON; room for the envelope is kept.
MAX_CONTENT_BYTES = 60_000
# How many recent events `find` reads.
FIND_LIMIT = 50
# When a 429 names no wait.
DEFAULT_WAIT = 5.0
# Room ids in room version 12 have no ":server" part (they are the create event's hash); aliases do.
_ROOM = re.compile(r"![^:\s/]{1,255}(:[A-Za-z0-9.:\[\]-]{1,255})?|#[^:\s/]{1,255}:[A-Za-z0-9.:\[\]-]{1,255}")
_EVENT = re.compile(r"\$[A-Za-z0-9+/=_.:-]{1,255}")


class Matrix(http.HttpChannel):
    """Posts m.notice events in one Matrix room; thread updates are m.thread replies."""

    kind: ClassVar[str] = "matrix"
    # The homeserver answers a repeated transaction id with the first event.
    honours_idempotency: ClassVar[bool] = True
    Options = MatrixOptions  # what its section in statusd.yaml holds (statusd.channels.options)

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        # Every option is read here, in one place.
        super().__init__(config, delivery, max_chars=None)
        options: MatrixOptions = config.options
        self._homeserver = options.homeserver.rstrip("/")
        self._room = options.room.strip()
        self._token = config.secrets["token"].read() or ""
        self._token_source = config.secrets["token"].describe()
        self._recent = delivery.deadline
        self._room_id: str | None = None
        self._user_id: str | None = None

    def measure(self, text: str) -> int:
        return len(text)

    async def open(self) -> None:
        await self._joined_room()

    async def whoami(self) -> str:
        room_id = await self._joined_room()
        return f"Matrix user {await self._me()} in room {self._room} ({room_id})"

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        room_id = await self._joined_room()
        content = notice(message, idempotency_key, reply_to)
        size = len(json.dumps(content, ensure_ascii=False).encode())
        if size > MAX_CONTENT_BYTES:
            raise PermanentError(f"the message makes a {size}-byte event; Matrix takes about {MAX_CONTENT_BYTES}: "
                                 f"shorten the template for channel {self.name}")
        path = f"/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn_id(idempotency_key)}"
        data = await self._call("PUT", path, "post in the room", content)
        return Sent(remote_id=_event_id(data), url=permalink(room_id, _event_id(data)))

    async def delete(self, remote_id: str) -> None:
        room_id = await self._joined_room()
        event = _checked_event(remote_id)
        path = f"/rooms/{quote(room_id, safe='')}/redact/{quote(event, safe='')}/{txn_id('redact ' + event)}"
        await self._call("PUT", path, "redact the post", {"reason": "withdrawn"})

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        """Our own recent event carrying this delivery's key (or transaction id), if the room has one."""
        room_id = await self._joined_room()
        earliest_ms = int(((since.timestamp() if since else time.time() - self._recent) - 60) * 1000)
        wanted_txn = txn_id(idempotency_key)
        me = await self._me()
        for event in await self._recent_events(room_id, me):
            made = event.get("origin_server_ts")
            if isinstance(made, int) and made < earliest_ms:
                break  # newest first: the rest are older still
            content, unsigned = _mapping(event.get("content")), _mapping(event.get("unsigned"))
            ours = content.get(KEY_FIELD) == idempotency_key or unsigned.get("transaction_id") == wanted_txn
            if ours and event["event_id"] not in exclude:
                return Sent(remote_id=event["event_id"], url=permalink(room_id, event["event_id"]))
        return None

    async def _joined_room(self) -> str:
        """The room's id, joining it first (an alias is resolved by the join)."""
        if self._room_id is None:
            if not _ROOM.fullmatch(self._room):
                raise PermanentError(f"room {self._room!r:.80} of channel {self.name} is neither a room id "
                                     "(!id) nor an alias (#name:server)")
            data = await self._call("POST", f"/join/{quote(self._room, safe='')}", "join the room", {})
            room_id = data.get("room_id")
            if not isinstance(room_id, str) or not room_id.startswith("!"):
                raise TransientError(f"the homeserver joined {self._room} but answered no room id: {data!r:.200}")
            self._room_id = room_id
        return self._room_id

    async def _me(self) -> str:
        if self._user_id is None:
            data = await self._call("GET", "/account/whoami", "read who the token is for")
            self._user_id = str(data.get("user_id") or "")
        return self._user_id

    async def _recent_events(self, room_id: str, me: str) -> list[dict[str, Any]]:
        event_filter = json.dumps({"senders": [me], "types": ["m.room.message"]})
        params = {"dir": "b", "limit": str(FIND_LIMIT), "filter": event_filter}
        data = await self._call("GET", f"/rooms/{quote(room_id, safe='')}/messages", "read the room", params=params)
        chunk = data.get("chunk")
        return [e for e in chunk if isinstance(e, dict) and isinstance(e.get("event_id"), str)] \
            if isinstance(chunk, list) else []

    async def _call(self, method: str, path: str, action: str, body: Mapping[str, Any] | None = None, *,
                    params: Mapping[str, str] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"}
        async with http.mapped(f"the homeserver {self._homeserver}", self._seconds):
            async with self._http_session().request(method, f"{self._homeserver}{API}{path}", json=body,
                                                    params=params, headers=headers) as response:
                text = await response.text(errors="replace")
        return answer(response.status, response.headers, text, action, token_from=self._token_source)


def txn_id(key: str) -> str:
    """The transaction id for an idempotency key: the same on every retry, safe in a URL path."""
    return "statusd." + hashlib.sha256(key.encode()).hexdigest()[:40]


def notice(message: Message, key: str, reply_to: Reply | None) -> dict[str, Any]:
    """The m.notice content: plain body, HTML body with the link clickable, thread relation, our key."""
    content: dict[str, Any] = {
        "msgtype": "m.notice",
        "body": message.text,
        "format": "org.matrix.custom.html",
        "formatted_body": to_html(message.text, message.link),
        KEY_FIELD: key,
    }
    if reply_to is not None:
        content["m.relates_to"] = {
            "rel_type": "m.thread",
            "event_id": _checked_event(reply_to.root),
            # Clients without threads show the update as a reply to the post before it.
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": _checked_event(reply_to.parent)},
        }
    return content


def to_html(text: str, link: str | None) -> str:
    """The text as HTML: everything escaped, lines kept, the message's link an <a>."""
    escaped = html.escape(text, quote=False)
    if link:
        target = html.escape(link, quote=False)
        escaped = escaped.replace(target, f'<a href="{html.escape(link, quote=True)}">{target}</a>')
    return escaped.replace("\n", "<br>\n")


def permalink(room_id: str, event_id: str) -> str:
    return f"{WEB_URL}/{quote(room_id, safe='!:')}/{quote(event_id, safe='$')}"


def answer(status: int, headers: Mapping[str, str], text: str, action: str, *,
           token_from: str = "its secret") -> dict[str, Any]:
    """The JSON object the homeserver answered; raise the ChannelError its errcode (or status) means."""
    body = http.parsed(text, empty={})
    if status < 300 and isinstance(body, dict):
        return body
    error = body if isinstance(body, dict) else {}
    raise classify(error, status, headers, action, token_from=token_from, raw=text)


def classify(error: Mapping[str, Any], status: int, headers: Mapping[str, str], action: str, *,
             token_from: str = "its secret", raw: str = "") -> ChannelError:
    """The ChannelError a Matrix error (`errcode`, `error`) means, saying what an operator should do."""
    errcode = str(error.get("errcode") or f"HTTP {status}")
    said = " ".join(str(error.get("error") or raw or "no body").split())[:200]
    where = f"({errcode}: {said})"
    if status == 429 or errcode == "M_LIMIT_EXCEEDED":
        wait = _wait(error, headers) or DEFAULT_WAIT
        return TransientError(f"the homeserver rate-limits us {where}; retry in {wait:g} s", retry_after=wait)
    if errcode in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN") or status == 401:
        return PermanentError(f"the access token from {token_from} is not valid {where}; log the bot in again "
                              "and put its new access token there")
    if errcode == "M_FORBIDDEN" or status == 403:
        return PermanentError(f"the homeserver refused to {action} {where}; invite the bot to the room "
                              "and give it the power level to post (and redact its posts)")
    if errcode == "M_NOT_FOUND" and action == "join the room":
        return PermanentError(f"no such room {where}; check the channel's room (!id:server or #alias:server)")
    if status >= 500 or status == 408 or status < 300:
        return TransientError(f"the homeserver could not {action} {where}")
    return PermanentError(f"the homeserver refused to {action} {where}")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _wait(error: Mapping[str, Any], headers: Mapping[str, str]) -> float | None:
    """Seconds from the body's retry_after_ms, else the Retry-After header."""
    millis = error.get("retry_after_ms")
    if isinstance(millis, int) and not isinstance(millis, bool) and 0 < millis <= 86_400_000:
        return millis / 1000
    value = (headers.get("Retry-After") or "").strip()
    if value.isascii() and value.isdigit() and 0 < int(value) <= 86_400:
        return float(value)
    return None


def _event_id(data: Mapping[str, Any]) -> str:
    event = data.get("event_id")
    if not isinstance(event, str) or not _EVENT.fullmatch(event):
        raise TransientError(f"the homeserver took the event but answered no usable id: {data!r:.200}")
    return event


def _checked_event(event_id: str) -> str:
    if not _EVENT.fullmatch(event_id):
        raise PermanentError(f"{event_id!r:.60} is not a Matrix event id")
    return event_id

