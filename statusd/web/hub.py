"""Relays every SSE event to an nchan hub (`web.hub`), for live readers at scale, never in the way.

The daemon's own fan-out (sse.py) is not touched: `submit` only keeps the event
and wakes the relay's task, which POSTs it to the hub's publisher URL with
`{channel}` replaced by the stream's name (`all`, the one `/events` serves) and
`X-EventSource-Event: status`, so that nginx's `/events` speaks the same contract
as the daemon's. nchan numbers the messages itself and keeps the last ones in its
buffer, from which a reader resumes with `Last-Event-ID`.

A hub that does not answer is logged once per outage (`hub_unreachable`, then
`hub_restored`), shown in /readyz, and retried with backoff; events that pile up
meanwhile collapse to the latest (each is the whole snapshot). A hub that lost its
messages (nginx restarted between two changes) is noticed by a probe every few
seconds, and the latest event is published again, so new readers get it at once.
A hub restarted so quickly that no post failed is noticed by the id it gives the
next message: not after the id of the one before, so the latest is published again
in a later second, under an id every resuming reader has yet to see.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import structlog

__all__ = ["Relay"]

log = structlog.get_logger()

CHANNEL: Final = "all"
TIMEOUT: Final = 2.0
PROBE: Final = 5.0  # seconds between checks that the hub still holds the latest event
BACKOFF: Final = (0.25, 30.0)  # first and longest wait before trying a silent hub again
BACKLOG: Final = 64  # events kept while the hub is slow; older ones collapse to the latest
_MESSAGE_ID: Final = re.compile(r"(\d+):(\d+)")  # nchan's "seconds:n" for one channel
HEADERS: Final = {"Content-Type": "application/json", "X-EventSource-Event": "status",
                  "Accept": "application/json"}


class Relay:
    """Posts each submitted event to the hub in order, from its own task; `trouble` says why not."""

    def __init__(self, url: Callable[[], str | None]) -> None:
        self._url = url  # read at each post: a reload may change or remove web.hub
        self._queue: deque[tuple[int, bytes]] = deque(maxlen=BACKLOG)
        self._latest: tuple[int, bytes] | None = None
        self._wake = asyncio.Event()
        self.trouble: str | None = None
        self._down_since: float | None = None
        self.published = 0  # events the hub accepted
        self._accepted_at = 0.0  # wall-clock time of the hub's last acceptance
        self._may_have_forgotten = False  # the hub failed or held nothing: it may have restarted
        self._last_id: tuple[int, int] | None = None  # the id the hub gave the last message it took

    def submit(self, event_id: int, data: bytes) -> None:
        """Queue one event (the daemon's id, the snapshot's JSON); returns at once."""
        self._latest = (event_id, data)
        if self._url() is None:
            return
        self._queue.append((event_id, data))
        self._wake.set()

    async def run(self) -> None:
        """Post queued events; when idle, probe the hub now and then (run as a long-lived loop)."""
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout, headers=HEADERS) as session:
            backoff = BACKOFF[0]
            while True:
                try:
                    ok = await self._step(session)
                except Exception as err:  # whatever the hub or the client does, the daemon goes on
                    ok = self._failed(self._url() or "", f"unexpected {type(err).__name__}")
                if ok:
                    backoff = BACKOFF[0]
                    continue
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF[1])
                # The hub is back or not: either way, only the latest still matters.
                if self._latest is not None and self._url() is not None:
                    self._queue.clear()
                    self._queue.append(self._latest)

    async def _step(self, session: aiohttp.ClientSession) -> bool:
        """Post what is queued or, after PROBE idle seconds, check the hub; False if it failed."""
        if not self._queue:
            try:
                # Without a hub nothing wakes the daemon: idle is idle.
                await asyncio.wait_for(self._wake.wait(), PROBE if self._url() else None)
            except TimeoutError:
                return await self._probe(session)
            self._wake.clear()
        url = self._url()
        while self._queue and url is not None:
            event_id, data = self._queue[0]
            if not await self._post(session, url, event_id, data):
                return False
            self._queue.popleft()
        return True

    async def _post(self, session: aiohttp.ClientSession, url: str, event_id: int, data: bytes) -> bool:
        if self._may_have_forgotten:
            await _next_second_after(self._accepted_at)
        try:
            async with session.post(url.replace("{channel}", CHANNEL), data=data) as response:
                body = await response.read()
                if response.status >= 300:
                    return self._failed(url, f"the hub answered {response.status}")
        except (aiohttp.ClientError, TimeoutError) as err:
            return self._failed(url, _reason(err))
        self.published += 1
        self._accepted_at, self._may_have_forgotten = time.time(), False
        self._restored(url, event_id)
        taken, self._last_id = self._last_id, _message_id(body)
        if taken is not None and self._last_id is not None and self._last_id <= taken:
            # Restarted between two posts (stop and start within a second, or a crash and a
            # supervisor's restart): it numbered this message as one it held before, and a reader
            # resuming from that id is told it has it. Published again, in a later second.
            log.info("hub_republished", hub=_origin(url), reason="the hub numbered a new message as an old one")
            self._may_have_forgotten = True
            self._queue.append(self._latest or (event_id, data))
        return True

    async def _probe(self, session: aiohttp.ClientSession) -> bool:
        """GET the channel: a hub that forgot it (restarted, or its buffer expired) gets the latest again."""
        url = self._url()
        if url is None or self._latest is None:
            return True
        try:
            async with session.get(url.replace("{channel}", CHANNEL)) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            return self._failed(url, _reason(err))
        if status == 404 or (status < 300 and _empty(body)):
            log.info("hub_republished", hub=_origin(url), reason="the hub held no message")
            self._may_have_forgotten = True
            self._queue.append(self._latest)
            self._wake.set()
        elif status >= 300:
            return self._failed(url, f"the hub answered {status}")
        return True

    def _failed(self, url: str, reason: str) -> bool:
        self._may_have_forgotten = True
        if self.trouble is None:
            self._down_since = time.monotonic()
            log.warning("hub_unreachable", hub=_origin(url), reason=reason,
                        retry="with backoff; the daemon's own /events is not affected")
        self.trouble = reason
        return False

    def _restored(self, url: str, event_id: int) -> None:
        if self.trouble is None:
            return
        down = time.monotonic() - (self._down_since or time.monotonic())
        log.info("hub_restored", hub=_origin(url), event_id=event_id, down_seconds=round(down, 1))
        self.trouble = None
        self._down_since = None


async def _next_second_after(accepted_at: float) -> None:
    """Wait, at most a second, until the wall clock has left the second of the hub's last acceptance.

    nchan numbers messages "seconds:n", n counted from 0 again by a restarted nginx: a message
    it takes in the same second as one it held before its restart gets that message's id, and a
    reader resuming with that Last-Event-ID is told it already has it (it waits for the next).
    """
    wait = math.floor(accepted_at) + 1 - time.time()
    if wait > 0:
        await asyncio.sleep(min(wait, 1.0))


def _message_id(body: bytes) -> tuple[int, int] | None:
    """The id nchan's answer to a post gives the message (its channel info's last_message_id)."""
    try:
        info = json.loads(body)
    except ValueError:
        return None
    found = _MESSAGE_ID.fullmatch(str(info.get("last_message_id", ""))) if isinstance(info, dict) else None
    return (int(found.group(1)), int(found.group(2))) if found else None


def _empty(body: bytes) -> bool:
    """Whether nchan's channel info (JSON) says it holds no message."""
    try:
        info = json.loads(body)
    except ValueError:
        return False
    return isinstance(info, dict) and info.get("messages") == 0


def _reason(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(err, aiohttp.ClientConnectorError):
        return "connection refused or unreachable"
    return type(err).__name__


def _origin(url: str) -> str:
    """scheme://host:port of `url`: enough to find the hub, nothing that could be a credential."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
