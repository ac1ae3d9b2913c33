"""Telegram channel: the Bot API over aiohttp, posting to a channel or group as a bot.

The Bot API wants its token in the URL path (`/bot<token>/sendMessage`), so no URL is
ever put in an error or a log. Thread updates are replies to the post they follow.
Undo is `deleteMessage`, which Telegram allows only within 48 hours; an older post is
edited to say it was withdrawn instead (logged as `telegram_withdrawn`).

A bot cannot read a channel's history, so there is no look-up: `find` always answers None.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
import structlog

from statusd.channels import http
from statusd.channels.base import ChannelError, PermanentError, Reply, Sent, TransientError
from statusd.channels.options import TelegramOptions
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig
from statusd.events import AUTOMATIC

log = structlog.get_logger()

API_URL = "https://api.telegram.org"
WEB_URL = "https://t.me"
# "1-4096 characters after entities parsing"; counted here in UTF-16 units, never fewer than Telegram counts.
MAX_CHARS = 4096
# deleteMessage: "a message can only be deleted if it was sent less than 48 hours ago".
DELETE_WINDOW = 48 * 3600.0
# Near the end of the window a delete may arrive too late: Telegram's refusal then means "too old".
DELETE_MARGIN = 3600.0
# Our clock and Telegram's may differ a little: no delete is tried in the window's last minute.
CLOCK_SKEW = 60.0
# When a 429 names no wait.
DEFAULT_WAIT = 30.0
WITHDRAWN = {
    "fr": "Message retiré : il ne s’applique plus.",
    "en": "Withdrawn: this message no longer applies.",
    "sv": "Återkallat: meddelandet gäller inte längre.",
}
# What `statusd history` says of an undo that could only edit the post.
WITHDRAWN_NOTE = "withdrawn (edited; Telegram deletes only within 48 h)"
# Seats and queue figures arrive without a sound: only what staff announce rings a phone.
_SILENT = frozenset(kind.value for kind in AUTOMATIC)
_CHAT = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
_REMOTE = re.compile(r"(-?[0-9]{1,20}):([0-9]{1,20}):([0-9]{1,12})")


class Telegram(http.HttpChannel):
    """Posts as a bot in one Telegram channel or group; thread updates are replies."""

    kind: ClassVar[str] = "telegram"
    # The Bot API has no idempotency key and no way for a bot to read a channel back.
    honours_idempotency: ClassVar[bool] = False
    Options = TelegramOptions  # what its section in statusd.yaml holds (statusd.channels.options)

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        # Every option is read here, in one place.
        super().__init__(config, delivery, max_chars=MAX_CHARS)
        options: TelegramOptions = config.options
        self._chat = options.chat_id.strip()
        self._token = config.secrets["token"].read() or ""
        self._token_source = config.secrets["token"].describe()
        self._api = (options.api_url or API_URL).rstrip("/")
        self._withdrawn = (options.withdrawn or WITHDRAWN.get(self.language, WITHDRAWN["en"]))

    def measure(self, text: str) -> int:
        # UTF-16 code units: an emoji outside the BMP counts 2, as in Telegram's entity offsets.
        return len(text.encode("utf-16-le")) // 2

    async def open(self) -> None:
        self._checked_chat()

    async def whoami(self) -> str:
        bot = await self._call("getMe", {}, "read who the token is for")
        chat = await self._call("getChat", {"chat_id": self._checked_chat()}, "read the chat")
        title = chat.get("title") or chat.get("username") or chat.get("id")
        return f"Telegram bot @{bot.get('username')} in {chat.get('type', 'chat')} {title!s:.80} ({self._chat})"

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        if self.measure(message.text) > MAX_CHARS:
            raise PermanentError(f"the message is {self.measure(message.text)} characters; Telegram takes "
                                 f"at most {MAX_CHARS}: shorten the template for channel {self.name}")
        body: dict[str, Any] = {"chat_id": self._checked_chat(), "text": message.text,
                                "disable_notification": message.kind in _SILENT}
        if message.link:
            body["link_preview_options"] = {"url": message.link}
        if reply_to is not None:
            # Without allow_sending_without_reply, an update to a deleted post would never go out.
            body["reply_parameters"] = {"message_id": parse_remote_id(reply_to.parent)[1],
                                        "allow_sending_without_reply": True}
        result = await self._call("sendMessage", body, "post to the chat")
        return sent_from(result)

    async def delete(self, remote_id: str) -> str | None:
        """Delete the post; past Telegram's 48 hours, edit it to say it was withdrawn (and say so)."""
        chat, message_id, date = parse_remote_id(remote_id)
        age = time.time() - date
        if age < DELETE_WINDOW - CLOCK_SKEW:
            try:
                await self._call("deleteMessage", {"chat_id": chat, "message_id": message_id}, "delete the message")
                return None
            except _Gone:
                log.info("telegram_already_deleted", channel=self.name, remote_id=remote_id)
                return None
            except _Undeletable as err:
                if age < DELETE_WINDOW - DELETE_MARGIN:
                    raise PermanentError(str(err)) from err
        return await self._withdraw(chat, message_id, remote_id, age)

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        # A bot cannot read a channel's history: nothing to look up.
        return None

    async def _withdraw(self, chat: str, message_id: int, remote_id: str, age: float) -> str | None:
        body = {"chat_id": chat, "message_id": message_id, "text": self._withdrawn}
        try:
            await self._call("editMessageText", body, "edit the message")
        except _Gone:
            log.info("telegram_already_deleted", channel=self.name, remote_id=remote_id)
            return None
        except _Unchanged:
            pass  # an earlier attempt withdrew it already
        log.info("telegram_withdrawn", channel=self.name, remote_id=remote_id, age_hours=round(age / 3600, 1))
        return WITHDRAWN_NOTE

    def _checked_chat(self) -> str:
        if not _CHAT.fullmatch(self._chat):
            raise PermanentError(f"chat_id {self._chat!r:.40} of channel {self.name} is neither a numeric chat id "
                                 "(-100…) nor a public @username")
        return self._chat

    async def _call(self, method: str, body: Mapping[str, Any], action: str) -> dict[str, Any]:
        url = f"{self._api}/bot{self._token}/{method}"
        try:
            async with self._http_session().post(url, json=body) as response:
                text = await response.text(errors="replace")
                return answer(response.status, response.headers, text, action, token_from=self._token_source)
        except TimeoutError as err:
            raise TransientError(f"Telegram did not answer {method} within {self._seconds:g} s") from err
        except aiohttp.ClientError as err:
            # Never str(err): some aiohttp errors carry the URL, and the URL carries the token.
            raise TransientError(f"cannot reach the Bot API for {method}: {type(err).__name__}") from err


class _Gone(PermanentError):
    """The message is not there any more (deleted by hand, or by an earlier attempt)."""


class _Undeletable(PermanentError):
    """Telegram refused to delete: too old, or the bot lacks the right."""


class _Unchanged(PermanentError):
    """An edit to the text the message already has."""


def answer(status: int, headers: Mapping[str, str], text: str, action: str, *,
           token_from: str = "its secret") -> dict[str, Any]:
    """The `result` object the Bot API answered; raise the ChannelError its error means."""
    body = http.parsed(text)
    if not isinstance(body, dict):
        reason = f"Telegram answered HTTP {status} with no JSON: {http.snippet(text) or 'no body'}"
        if status == 429 or status >= 500 or status < 300:
            raise TransientError(reason, retry_after=_header_wait(headers) if status == 429 else None)
        raise PermanentError(reason)
    if body.get("ok") is True:
        result = body.get("result")
        return result if isinstance(result, dict) else {"value": result}
    raise classify(body, status, headers, action, token_from=token_from)


def classify(body: Mapping[str, Any], status: int, headers: Mapping[str, str], action: str, *,
             token_from: str = "its secret") -> ChannelError:
    """The ChannelError a Bot API error body means, saying what an operator should do."""
    code = _int(body.get("error_code"), status)
    said = http.snippet(str(body.get("description") or "no description"))
    lower = said.lower()
    parameters = _mapping(body.get("parameters"))
    where = f"({code}: {said})"
    if code == 429:
        wait = _seconds(parameters.get("retry_after")) or _header_wait(headers) or DEFAULT_WAIT
        return TransientError(f"Telegram flood control {where}; retry in {wait:g} s", retry_after=wait)
    if "migrate_to_chat_id" in parameters:
        return PermanentError(f"the group became a supergroup {where}; set chat_id to "
                              f"'{parameters['migrate_to_chat_id']}'")
    if code == 401:
        return PermanentError(f"the bot token from {token_from} is not valid {where}; "
                              "get the current one from @BotFather and put it there")
    if code == 404:
        return PermanentError(f"the Bot API does not know this bot {where}; check the token's form "
                              f"(digits:letters) in {token_from} and api_url")
    if "not found" in lower and ("to delete" in lower or "to edit" in lower):
        return _Gone(f"the message is gone {where}")
    if "message is not modified" in lower:
        return _Unchanged(f"the message already says this {where}")
    if "can't be deleted" in lower:
        return _Undeletable(f"Telegram refused to delete the message {where}; the bot needs the right "
                            "to delete messages (channels: post messages) in the chat")
    if "chat not found" in lower or code == 403:
        return PermanentError(f"Telegram refused to {action} {where}; add the bot to the chat as an "
                              "administrator allowed to post messages, and check chat_id")
    if code >= 500:
        return TransientError(f"Telegram could not {action} {where}")
    return PermanentError(f"Telegram refused to {action} {where}")


def sent_from(result: Mapping[str, Any]) -> Sent:
    """The remote id of a sent message ("chat:message:date") and its t.me link when it has one."""
    chat = _mapping(result.get("chat"))
    message_id, date, chat_id = result.get("message_id"), result.get("date"), chat.get("id")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (message_id, date, chat_id)):
        raise TransientError(f"Telegram sent the message but answered no usable id: {result!r:.200}")
    username = chat.get("username")
    if isinstance(username, str) and username:
        url: str | None = f"{WEB_URL}/{username}/{message_id}"
    elif str(chat_id).startswith("-100"):
        url = f"{WEB_URL}/c/{str(chat_id)[4:]}/{message_id}"  # members only: private channel or group
    else:
        url = None
    return Sent(remote_id=f"{chat_id}:{message_id}:{date}", url=url)


def parse_remote_id(remote_id: str) -> tuple[str, int, int]:
    """(chat id, message id, unix date) from a remote id that `sent_from` made."""
    match = _REMOTE.fullmatch(remote_id)
    if match is None:
        raise PermanentError(f"{remote_id!r:.60} is not a Telegram message id made by statusd (chat:message:date)")
    return match[1], int(match[2]), int(match[3])


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 < value <= 24 * 3600 else None


def _header_wait(headers: Mapping[str, str]) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    return _seconds(int(value)) if value.isascii() and value.isdigit() and len(value) <= 6 else None

