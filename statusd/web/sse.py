"""Server-sent events: every change of the public snapshot, to every subscriber, resumable.

The contract the banner relies on (see README.md beside this file): the stream
opens with `retry: 2000`; each change is `id: N / event: status / data: JSON`;
ids only grow, across restarts too; `Last-Event-ID` (or `?lastEventId=`)
replays what was missed from a ring buffer, and an id it does not know gets
the current snapshot; `: ping` comments keep proxies from closing the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Final

import structlog
from aiohttp import web

log = structlog.get_logger()

RETRY: Final = b"retry: 2000\n\n"
PING: Final = b": ping\n\n"
# Tells a subscriber's writer to finish: the daemon is stopping.
_CLOSE: Final = b""

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


class Subscriber:
    """One open stream: a bounded queue of frames and the connection to drop if it fills."""

    __slots__ = ("dropped", "queue", "transport")

    def __init__(self, size: int, transport: asyncio.Transport | None) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(size)
        self.transport = transport
        self.dropped = False

    def offer(self, data: bytes) -> bool:
        """Queue `data` without waiting; False when the subscriber is too far behind."""
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            return False
        return True

    def drop(self) -> None:
        # Closing the connection makes the client reconnect with Last-Event-ID.
        self.dropped = True
        if self.transport is not None:
            self.transport.abort()


class Hub:
    """Fans each published snapshot out to every subscriber; a slow one is dropped, never waited for."""

    def __init__(self, buffer: int = 1000, queue_size: int = 32, heartbeat: float = 15.0,
                 first_id: int | None = None) -> None:
        self.heartbeat = heartbeat
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.last_id = (int(time.time() * 1000) if first_id is None else first_id) - 1
        self._ring: deque[tuple[int, bytes]] = deque(maxlen=buffer)
        self._closed = False

    @property
    def current(self) -> tuple[int, bytes] | None:
        return self._ring[-1] if self._ring else None

    def publish(self, data: bytes) -> int:
        """Send `data` (one line of JSON) to every subscriber as a new event; return its id."""
        # Milliseconds since the epoch, at least: ids keep growing after a restart.
        event_id = max(self.last_id + 1, int(time.time() * 1000))
        self.last_id = event_id
        chunk = frame(event_id, data)
        self._ring.append((event_id, chunk))
        self._offer_all(chunk)
        return event_id

    def ping(self) -> None:
        """A heartbeat comment to every subscriber with room for it."""
        for subscriber in self.subscribers:
            subscriber.offer(PING)

    def close(self) -> None:
        """Finish every stream now: the daemon is stopping."""
        self._closed = True
        for subscriber in list(self.subscribers):
            if not subscriber.offer(_CLOSE):
                subscriber.drop()
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
                return [chunk for event_id, chunk in self._ring if event_id > last_id]
        current = self.current
        return [current[1]] if current else []

    def _offer_all(self, chunk: bytes) -> None:
        slow = [s for s in self.subscribers if not s.offer(chunk)]
        for subscriber in slow:
            self.subscribers.discard(subscriber)
            subscriber.drop()
        if slow:
            log.info("sse_dropped_slow", count=len(slow), remaining=len(self.subscribers))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """The /events handler."""
        response = web.StreamResponse(headers=HEADERS)
        if self._closed:
            raise web.HTTPServiceUnavailable(headers={"Retry-After": "2"})
        # Registering and reading the backlog with no await between: no event falls in a gap.
        subscriber = Subscriber(self.queue_size, request.transport)
        backlog = self.backlog(_last_event_id(request))
        self.subscribers.add(subscriber)
        try:
            await response.prepare(request)
            await response.write(RETRY + b"".join(backlog))
            while (chunk := await subscriber.queue.get()) and not subscriber.dropped:
                await response.write(chunk)
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
