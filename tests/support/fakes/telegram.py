"""A fake Telegram Bot API for one bot and one channel, answering as api.telegram.org does.

Error bodies are the recorded ones in responses/telegram/*.json. Like Telegram it checks the
token in the path (`/bot<token>/<method>`, method names case-insensitive), takes parameters as
JSON or a form, refuses a text over 4,096 UTF-16 units, and deletes a message only while it is
less than 48 hours old (older: "message can't be deleted for everyone"); editing has no limit.

    async with FakeTelegram(token="123:abc") as telegram:
        ...                                  # point the channel's api_url at telegram.url
        telegram.script("flood")             # the next request gets the recorded 429
        telegram.age(remote_id, hours=49)    # make a message older; returns its new remote id

As its own process (prints its base URL first, stops on SIGTERM/SIGINT):

    python -m tests.support.fakes.telegram --port 0 --token 123:abc [--mode flood] [--delay 0.15]

`GET /_fake/messages` answers the messages as a JSON list; `POST /_fake/mode {"mode": ..., "delay": ...}`
switches a running process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.fakes.common import Fake, drop, options, serve

__all__ = ["CHAT_ID", "CHAT_USERNAME", "ERROR_MODES", "MODES", "FakeTelegram", "StoredMessage"]

RESPONSES = Path(__file__).resolve().parent / "responses" / "telegram"
CHAT_ID = -1001234567890
CHAT_USERNAME = "biblio_centrale"
MAX_CHARS = 4096
DELETE_WINDOW = 48 * 3600
ERROR_MODES = ("flood", "unauthorized", "kicked", "not_member", "migrated", "server_error", "cant_delete")
MODES = ("ok", *ERROR_MODES, "bad_gateway", "hang", "drop_after_post")
_NGINX_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
              "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
              "</body>\r\n</html>\r\n")


def recorded(name: str) -> tuple[int, dict[str, Any]]:
    """The status and body of a recorded answer."""
    data = json.loads((RESPONSES / f"{name}.json").read_text(encoding="utf-8"))
    return int(data["status"]), data["body"]


@dataclass
class StoredMessage:
    """One message the bot posted, as the fake keeps it."""

    message_id: int
    text: str
    date: int
    reply_to: int | None = None
    link_preview: str | None = None
    silent: bool = False
    deleted: bool = False
    edits: list[str] = field(default_factory=list)


class FakeTelegram(Fake):
    """The Bot API methods statusd uses: getMe, getChat, sendMessage, deleteMessage, editMessageText."""

    MODES = MODES
    KIND = "Telegram"

    def __init__(self, token: str, *, host: str = "127.0.0.1", port: int = 0, mode: str = "ok",
                 delay: float = 0.0, log: Path | None = None) -> None:
        self.token = token
        self.host, self.port = host, port
        self.messages: dict[int, StoredMessage] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (path, method, parameters)
        self._next_id = 100
        self._setup(mode, delay, log)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def visible(self) -> list[StoredMessage]:
        """The messages a patron sees in the channel now, oldest first."""
        return [m for m in self.messages.values() if not m.deleted]

    def age(self, remote_id: str, *, hours: float) -> str:
        """Make a message `hours` older; the remote id a channel would have recorded for it then."""
        chat, message_id, date = remote_id.split(":")
        stored = self.messages[int(message_id)]
        stored.date -= int(hours * 3600)
        return f"{chat}:{message_id}:{int(date) - int(hours * 3600)}"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/_fake/messages", self._fake_messages)
        app.router.add_get("/_fake/mode", self._fake_state)
        app.router.add_post("/_fake/mode", self._fake_control)
        return app

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "visible": len(self.visible()), "requests": len(self.requests)}

    async def _fake_messages(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(m) for m in self.messages.values()])

    async def _method(self, request: web.Request) -> web.StreamResponse:
        params = await _parameters(request)
        method = request.match_info["method"].lower()
        self.requests.append((request.path, method, params))
        mode = await self._next_mode()
        if mode is None:
            return drop(request)
        if request.match_info["token"] != self.token:
            return _answer(*recorded("unauthorized"))
        if mode == "bad_gateway":
            return web.Response(status=502, text=_NGINX_502, content_type="text/html")
        if mode in ERROR_MODES and (mode != "cant_delete" or method == "deletemessage"):
            return _answer(*recorded(mode))
        handler = {"getme": self._get_me, "getchat": self._get_chat, "sendmessage": self._send,
                   "deletemessage": self._delete, "editmessagetext": self._edit}.get(method)
        if handler is None:
            return _answer(*recorded("not_found"))
        if method != "getme" and str(params.get("chat_id")) not in (str(CHAT_ID), f"@{CHAT_USERNAME}"):
            return _answer(*recorded("chat_not_found"))
        answer = handler(params)
        if mode == "drop_after_post" and method == "sendmessage":
            return drop(request)
        await self._pause()
        return answer

    def _get_me(self, params: dict[str, Any]) -> web.Response:
        return _answer(*recorded("get_me"))

    def _get_chat(self, params: dict[str, Any]) -> web.Response:
        return _ok(_chat())

    def _send(self, params: dict[str, Any]) -> web.Response:
        text = str(params.get("text") or "")
        if not text.strip():
            return _answer(*recorded("empty"))
        if len(text.encode("utf-16-le")) // 2 > MAX_CHARS:
            return _answer(*recorded("too_long"))
        reply = params.get("reply_parameters") or {}
        reply_to = reply.get("message_id") if isinstance(reply, dict) else None
        if reply_to is not None and (reply_to not in self.messages or self.messages[reply_to].deleted):
            if not reply.get("allow_sending_without_reply"):
                return _answer(400, {"ok": False, "error_code": 400,
                                     "description": "Bad Request: message to be replied not found"})
            reply_to = None
        self._next_id += 1
        preview = params.get("link_preview_options") or {}
        stored = StoredMessage(self._next_id, text, int(time.time()), reply_to,
                               preview.get("url") if isinstance(preview, dict) else None,
                               params.get("disable_notification") in (True, "true"))
        self.messages[stored.message_id] = stored
        self._log_post(time.time(), "sendMessage", str(stored.message_id), text=text)
        self._notify()
        return _ok(self._as_json(stored))

    def _delete(self, params: dict[str, Any]) -> web.Response:
        stored = self.messages.get(_int(params.get("message_id")))
        if stored is None or stored.deleted:
            return _answer(*recorded("delete_not_found"))
        if time.time() - stored.date >= DELETE_WINDOW:
            return _answer(*recorded("cant_delete"))
        stored.deleted = True
        self._notify()
        return _ok(True)

    def _edit(self, params: dict[str, Any]) -> web.Response:
        stored = self.messages.get(_int(params.get("message_id")))
        if stored is None or stored.deleted:
            return _answer(*recorded("edit_not_found"))
        text = str(params.get("text") or "")
        if text == stored.text:
            return _answer(*recorded("not_modified"))
        stored.edits.append(stored.text)
        stored.text = text
        self._notify()
        return _ok({**self._as_json(stored), "edit_date": int(time.time())})

    def _as_json(self, stored: StoredMessage) -> dict[str, Any]:
        data: dict[str, Any] = {"message_id": stored.message_id, "sender_chat": _chat(), "chat": _chat(),
                                "date": stored.date, "text": stored.text}
        if stored.reply_to is not None:
            data["reply_to_message"] = self._as_json(self.messages[stored.reply_to])
        return data

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        """Until `count` messages are visible."""
        await self._until(lambda: len(self.visible()) >= count, within,
                          lambda: f"{len(self.visible())} of {count} Telegram messages")


async def _parameters(request: web.Request) -> dict[str, Any]:
    """Parameters as the Bot API takes them: query string, JSON body, or a form."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.can_read_body:
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    for key in ("reply_parameters", "link_preview_options"):
        if isinstance(params.get(key), str):  # a form sends these as JSON-serialised text
            params[key] = json.loads(params[key])
    return params


def _chat() -> dict[str, Any]:
    return {"id": CHAT_ID, "title": "Bibliothèque centrale", "username": CHAT_USERNAME, "type": "channel"}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _answer(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)



def main(argv: list[str] | None = None) -> None:
    parser: argparse.ArgumentParser = options("telegram", "A fake Telegram Bot API for one bot and channel.", MODES)
    parser.add_argument("--token", default="7012345678:fake-bot-token", help="the bot token it accepts")
    args = parser.parse_args(argv)
    fake = FakeTelegram(token=args.token, host=args.host, port=args.port, mode=args.mode, delay=args.delay,
                        log=args.log)
    asyncio.run(serve(fake))


if __name__ == "__main__":
    main()
