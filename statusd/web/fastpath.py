"""The one hot route, `GET /status.json`, answered without aiohttp's per-request machinery.

Banners poll status.json from every patron's browser, so it is the route that meets the
most requests. aiohttp spends most of its time per request on the request and response
objects, the router and a task; the answer itself is the same bytes for everybody until
the next change. A connection therefore starts on `FastPath`: while its requests are plain
`GET /status.json` (HTTP/1.1, no body, nothing to negotiate) it writes the prepared bytes
itself. The first request that is anything else, or that this module cannot vouch for,
goes with the rest of the connection to aiohttp's own handler, which parses it from the
first byte as if it had had the connection from the start. So every other route, every
odd or hostile request, and every error answer stay aiohttp's.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from email.utils import formatdate
from typing import Literal

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from statusd.web.doc import Doc, matches

REQUEST_LINE = b"GET /status.json HTTP/1.1"
END = b"\r\n\r\n"
# Past this without a whole head, aiohttp's own limits (8190 per line) decide.
MAX_HEAD = 8190
# aiohttp's RequestHandler answers 400 past this many header fields (its max_headers).
MAX_FIELDS = 128
# A connection with no whole request for this long is closed (nginx's keep-alive, too).
KEEPALIVE = 75.0
# A header field as RFC 9110 writes it (a token, a colon, visible text): anything else,
# controls, a lone CR or LF, a space before the colon, a folded line, is aiohttp's to refuse.
FIELD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*")
# Headers that change how the message is framed or answered: aiohttp's to handle.
NOT_OURS = frozenset({b"content-length", b"transfer-encoding", b"upgrade", b"expect",
                      b"http2-settings", b"te", b"trailer"})


class Answers:
    """status.json's 200 and 304, as whole responses: made once per change and once a second."""

    __slots__ = ("_current", "_doc", "_headers", "_second", "full", "not_modified")

    def __init__(self, current: Callable[[], Doc], cache: str, headers: Mapping[str, str]) -> None:
        self._current = current
        self._headers = {"Cache-Control": cache, **headers}
        self._doc: Doc | None = None
        self._second = -1
        self.full = self.not_modified = b""

    def doc(self) -> Doc:
        """The current document, with `full` and `not_modified` made for it and this second."""
        doc, second = self._current(), int(time.time())
        if doc is not self._doc or second != self._second:
            self._doc, self._second = doc, second
            tail = f"Date: {formatdate(second, usegmt=True)}\r\nServer: {SERVER_SOFTWARE}\r\n\r\n"
            common = "".join(f"{name}: {value}\r\n" for name, value in
                             {"ETag": doc.etag, **self._headers}.items())
            self.not_modified = f"HTTP/1.1 304 Not Modified\r\n{common}{tail}".encode("latin-1")
            self.full = (f"HTTP/1.1 200 OK\r\n{common}Content-Type: {doc.content_type}\r\n"
                         f"Content-Length: {len(doc.body)}\r\n{tail}").encode("latin-1") + doc.body
        return doc


def if_none_match(head: bytes) -> str | Literal[False] | None:
    """The If-None-Match of a request head (None if absent), or False if the head is not ours.

    `head` is everything after the request line, without the blank line that ends it.
    """
    found: list[str] = []
    hosts = 0
    lines = head.split(b"\r\n")
    if len(lines) > MAX_FIELDS:
        return False
    for line in lines:
        if not FIELD.fullmatch(line):
            return False
        name, _, value = line.partition(b":")
        name = name.lower()
        if name in NOT_OURS:
            return False
        value = value.strip(b" \t")
        if name == b"connection" and value.lower() != b"keep-alive":
            return False  # close, upgrade and the rest change what happens after the answer
        if name == b"if-none-match":
            if found:
                return False  # twice: how the two combine is aiohttp's to say
            found.append(value.decode("latin-1"))
        elif name == b"host":
            hosts += 1
    if hosts != 1:
        return False  # HTTP/1.1 asks for one Host; aiohttp refuses a request without
    return ", ".join(found) if found else None


class FastPath(asyncio.Protocol):
    """One connection: answers plain status.json requests, hands anything else to aiohttp."""

    __slots__ = (
        "_answers",
        "_buffer",
        "_handler",
        "_last",
        "_live",
        "_paused",
        "_timer",
        "_transport",
    )

    def __init__(self, answers: Answers, handler: web.Server, live: set[FastPath]) -> None:
        self._answers, self._handler, self._live = answers, handler, live
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._paused = False
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._live.add(self)
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._timer = loop.call_at(self._last + KEEPALIVE, self._idle)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._paused:
            self._answer()

    def eof_received(self) -> bool | None:
        if not self._buffer:
            return None  # every whole request has been answered: close
        # Part of a request, then the end: aiohttp answers it as it would have.
        return self._hand_over(self._buffer).eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()

    def pause_writing(self) -> None:
        # A client that sends and does not read: stop reading until it has caught up.
        self._paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self._transport is not None:
            self._transport.resume_reading()
            self._answer()

    def close(self) -> None:
        """Close the connection (the server is stopping); it is between requests by construction."""
        if self._transport is not None:
            self._transport.close()
        self._forget()

    def _answer(self) -> None:
        transport, buffer = self._transport, self._buffer
        while transport is not None and not self._paused:
            end = buffer.find(END, 0, MAX_HEAD + len(END))
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    break  # too long a head for us: aiohttp answers it
                self._buffer = buffer
                return
            line, _, head = buffer[:end].partition(b"\r\n")
            tag = if_none_match(head) if line == REQUEST_LINE else False
            if tag is False:
                break
            doc = self._answers.doc()
            fresh = tag is not None and (tag == doc.etag or matches(tag, doc.etag))
            answer = self._answers.not_modified if fresh else self._answers.full
            transport.write(answer)
            buffer = buffer[end + len(END):]
            self._last = asyncio.get_running_loop().time()
        else:
            self._buffer = buffer
            return
        self._hand_over(buffer)

    def _hand_over(self, pending: bytes) -> asyncio.Protocol:
        """The rest of this connection is aiohttp's, from `pending` (a request's first byte) on."""
        transport = self._transport
        assert transport is not None
        self._forget()
        handler = self._handler()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if pending:
            handler.data_received(pending)
        return handler

    def _idle(self) -> None:
        if self._transport is None:
            return
        due = self._last + KEEPALIVE
        loop = asyncio.get_running_loop()
        if loop.time() >= due:
            self.close()
        else:
            self._timer = loop.call_at(due, self._idle)

    def _forget(self) -> None:
        self._transport, self._buffer = None, b""
        self._live.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class FastSite(web.BaseSite):
    """aiohttp's TCPSite, with each connection starting on `FastPath`."""

    __slots__ = ("_answers", "_host", "_live", "_port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, answers: Answers,
                 backlog: int = 4096) -> None:
        super().__init__(runner, backlog=backlog)
        self._host, self._port, self._answers = host, port, answers
        self._live: set[FastPath] = set()

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        handler = self._runner.server
        assert handler is not None
        self._server = await asyncio.get_running_loop().create_server(
            lambda: FastPath(self._answers, handler, self._live), self._host, self._port,
            backlog=self._backlog, reuse_address=True)

    async def stop(self) -> None:
        await super().stop()
        for connection in list(self._live):
            connection.close()
