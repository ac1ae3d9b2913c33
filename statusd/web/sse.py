"""Server-sent events: every change of the public snapshot, to every subscriber, resumable.

The contract the banner relies on (see README.md beside this file): the stream
opens with `retry: 2000`; each change is `id: N / event: status / data: JSON`;
ids only grow, across restarts too; `Last-Event-ID` (or `?lastEventId=`)
replays what was missed from a ring buffer (bounded in events and in bytes),
and an id it does not know gets the current snapshot; `: ping` comments keep proxies from closing the stream.

Fan-out writes each event straight into every live subscriber's transport while
`publish` runs: no task per subscriber wakes up, so 5,000 streams get a change in
one pass of the event loop. A subscriber whose unsent bytes exceed
`queue_size` events is dropped; it reconnects with `Last-Event-ID`.

Bounded: all subscribers together may hold at most `budget` unsent bytes (the
slowest readers are dropped first until they fit), and beyond `max_subscribers`
open streams a new one is answered 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Final

import structlog
from aiohttp import web
from aiohttp.http import HttpVersion11

log = structlog.get_logger()

RETRY: Final = b"retry: 2000\n\n"
PING: Final = b": ping\n\n"

# 5,000 live banners are the benchmark; twice that still fits the raised open-files limit.
MAX_SUBSCRIBERS: Final = 10_000
# Unsent bytes all subscribers may hold together, in user space.
BUDGET: Final = 64 * 1024 * 1024
# The replay buffer: at most this many bytes of events (each is a whole snapshot, whose size
# grows with the sites and zones configured), as well as at most `buffer` events.
RING_BYTES: Final = 1024 * 1024
FULL_RETRY: Final = "10"

HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Access-Control-Allow-Origin": "*",
    # nginx and similar proxies would otherwise buffer the stream.
    "X-Accel-Buffering": "no",
}


def frame(event_id: int, data: bytes) -> bytes:
    """One SSE event; `data` must be a single line (compact JSON is)."""
    return b"id: %d\nevent: status\ndata: %s\n\n" % (event_id, data)


def chunk(data: bytes) -> bytes:
    """`data` as one HTTP/1.1 chunk (RFC 9112 §7.1), as aiohttp's own writer frames it."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class Subscriber:
    """One open stream: its transport, written to directly once the stream is live."""

    __slots__ = ("chunked", "done", "pending", "transport")

    def __init__(self, transport: asyncio.Transport, chunked: bool) -> None:
        self.transport = transport
        self.chunked = chunked  # HTTP/1.1: chunked encoding; HTTP/1.0: raw bytes until close
        # Events published before the response's headers are out; None once live.
        self.pending: list[bytes] | None = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def gone(self) -> bool:
        return self.transport.is_closing()

    def unsent(self) -> int:
        """Bytes written but still waiting in user space for the socket."""
        return self.transport.get_write_buffer_size()

    def write(self, raw: bytes, framed: bytes) -> None:
        """Send one block now (or keep it until live): `framed` is `raw` as an HTTP chunk."""
        if self.pending is None:
            self.transport.write(framed if self.chunked else raw)
        else:
            self.pending.append(raw)

    def go_live(self) -> None:
        """Send what was published while the headers went out; from now on write directly."""
        pending, self.pending = self.pending or [], None
        if pending:
            raw = b"".join(pending)
            self.transport.write(chunk(raw) if self.chunked else raw)

    def finish(self) -> None:
        """End the stream cleanly: the handler returns and aiohttp writes the last chunk."""
        if not self.done.done():
            self.done.set_result(None)

    def drop(self) -> None:
        # Closing the connection makes the client reconnect with Last-Event-ID.
        self.transport.abort()
        self.finish()


class Hub:
    """Fans each published snapshot out to every subscriber; a slow one is dropped, never waited for."""

    def __init__(self, buffer: int = 1000, queue_size: int = 32, heartbeat: float = 15.0,
                 first_id: int | None = None, max_subscribers: int = MAX_SUBSCRIBERS,
                 budget: int = BUDGET, buffer_bytes: int = RING_BYTES) -> None:
        self.heartbeat = heartbeat
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self.budget = budget
        self.subscribers: set[Subscriber] = set()
        self.last_id = (int(time.time() * 1000) if first_id is None else first_id) - 1
        self._ring: deque[tuple[int, bytes]] = deque()
        self._ring_limits = (buffer, buffer_bytes)
        self._ring_bytes = 0
        self._closed = False
        # Unsent bytes beyond which a subscriber is too far behind; set by each publish.
        self._limit = queue_size * len(chunk(PING))

    @property
    def current(self) -> tuple[int, bytes] | None:
        return self._ring[-1] if self._ring else None

    def publish(self, data: bytes) -> int:
        """Send `data` (one line of JSON) to every subscriber as a new event; return its id."""
        # Milliseconds since the epoch, at least: ids keep growing after a restart.
        event_id = max(self.last_id + 1, int(time.time() * 1000))
        self.last_id = event_id
        raw = frame(event_id, data)
        self._keep(event_id, raw)
        self._send_all(raw)
        return event_id

    def _keep(self, event_id: int, raw: bytes) -> None:
        """Add to the replay buffer, dropping the oldest beyond its count or bytes (the newest stays)."""
        self._ring.append((event_id, raw))
        self._ring_bytes += len(raw)
        count, size = self._ring_limits
        while len(self._ring) > 1 and (len(self._ring) > count or self._ring_bytes > size):
            self._ring_bytes -= len(self._ring.popleft()[1])

    @property
    def buffered(self) -> tuple[int, int]:
        """Events and bytes the replay buffer holds."""
        return len(self._ring), self._ring_bytes

    def ping(self) -> None:
        """A heartbeat comment to every live subscriber with nothing else waiting to be sent."""
        framed = chunk(PING)
        for subscriber in self.subscribers:
            if subscriber.pending is None and not subscriber.gone and not subscriber.unsent():
                subscriber.write(PING, framed)

    def close(self) -> None:
        """Finish every stream now: the daemon is stopping."""
        self._closed = True
        for subscriber in list(self.subscribers):
            if subscriber.gone or subscriber.unsent() > self._limit:
                subscriber.drop()  # its last chunk would only wait behind what it has not read
            else:
                subscriber.finish()
        self.subscribers.clear()

    async def beat(self) -> None:
        """Send heartbeats forever (run as a background task)."""
        while True:
            await asyncio.sleep(self.heartbeat)
            self.ping()

    def backlog(self, last_id: int | None) -> list[bytes]:
        """What a client that saw `last_id` missed; the current event when the id is unknown."""
        if last_id is not None:
            ids = [event_id for event_id, _ in self._ring]
            if last_id in ids:
                return [raw for event_id, raw in self._ring if event_id > last_id]
        current = self.current
        return [current[1]] if current else []

    def _send_all(self, raw: bytes) -> None:
        """One pass over the readers: the framed bytes written, each reader's backlog measured once."""
        framed = chunk(raw)
        # "More than queue_size events behind", counted in bytes of this event.
        self._limit = limit = self.queue_size * len(framed)
        gone: list[Subscriber] = []
        slow: list[Subscriber] = []
        held: list[tuple[int, Subscriber]] = []
        total = 0
        for subscriber in self.subscribers:
            transport = subscriber.transport
            if transport.is_closing():
                gone.append(subscriber)  # the client left; its handler is being cancelled
                continue
            pending = subscriber.pending
            if pending is None:
                transport.write(framed if subscriber.chunked else raw)
                size = transport.get_write_buffer_size()
                if size > limit:
                    slow.append(subscriber)
                    continue
            else:
                pending.append(raw)
                if len(pending) > self.queue_size:
                    slow.append(subscriber)
                    continue
                size = transport.get_write_buffer_size() + sum(map(len, pending))
            held.append((size, subscriber))
            total += size
        for subscriber in gone:
            self.subscribers.discard(subscriber)
            subscriber.finish()
        if total > self.budget:
            slow.extend(self._over_budget(held, total))
        for subscriber in slow:
            self.subscribers.discard(subscriber)
            subscriber.drop()
        if slow:
            log.info("sse_dropped_slow", count=len(slow), remaining=len(self.subscribers))

    def _over_budget(self, held: list[tuple[int, Subscriber]], total: int) -> list[Subscriber]:
        """The slowest subscribers to drop so that the others' unsent bytes (`held`, `total`) fit the budget."""
        chosen: list[Subscriber] = []
        for size, subscriber in sorted(held, key=lambda pair: pair[0], reverse=True):
            if total <= self.budget:
                break
            chosen.append(subscriber)
            total -= size
        return chosen

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """The /events handler."""
        response = web.StreamResponse(headers=HEADERS)
        if self._closed:
            raise web.HTTPServiceUnavailable(headers={"Retry-After": "2"})
        if len(self.subscribers) >= self.max_subscribers:
            # Each stream holds a socket and its buffers: past the cap, a reader comes back later.
            raise web.HTTPServiceUnavailable(text="too many live readers; try again later\n",
                                             headers={"Retry-After": FULL_RETRY})
        transport = request.transport
        if request.method == "HEAD" or transport is None or transport.is_closing():
            return response  # headers only: HEAD has no body, and a client that left gets nothing
        chunked = request.version == HttpVersion11
        if chunked:
            # Explicit, so that the frames written straight to the transport match the encoding.
            response.enable_chunked_encoding()
        # Registering and reading the backlog with no await between: no event falls in a gap.
        subscriber = Subscriber(transport, chunked)
        backlog = self.backlog(_last_event_id(request))
        self.subscribers.add(subscriber)
        try:
            await response.prepare(request)
            # Sends the headers and the first chunk together; events published while
            # this waits are kept in `pending` and follow it in order.
            await response.write(RETRY + b"".join(backlog))
            if not subscriber.done.done():
                subscriber.go_live()
                await subscriber.done
        except ConnectionError:
            pass  # the client went away; it reconnects with Last-Event-ID
        finally:
            self.subscribers.discard(subscriber)
        return response


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
    try:
        return int(raw) if raw else None
    except ValueError:
        return None
