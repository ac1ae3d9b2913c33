"""One message to every subscription of a job: encrypted in a thread, sent over aiohttp, recorded as it goes.

pywebpush and py-vapid only encrypt and sign here; the requests go out on our
own aiohttp session (pywebpush's own sending is blocking `requests`), with at
most `connections` of them open at once, so that a crisis with 50,000
subscriptions neither opens 50,000 sockets nor holds the event loop.

Progress reaches push.sqlite before and after each request: a recipient is
CLAIMED in groups of `CHUNK` before its request, and its outcome is written
every `FLUSH` answers. A crash leaves at most `connections` + `FLUSH` accepted
messages unrecorded; they go again with the same Topic, which the push service
uses to replace a message it still holds and the service worker uses as the
notification's tag, so the patron sees the notification once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import structlog

from statusd.channels import http
from statusd.channels.webpush_guard import sendable
from statusd.channels.webpush_keys import Signer, encrypt
from statusd.channels.webpush_store import ACCEPTED, GONE, REFUSED, Progress, Recipient, Subscriptions

log = structlog.get_logger()

CHUNK = 128       # recipients claimed (and encrypted) at a time
FLUSH = 16        # answers written in one transaction
TRIES = 4         # attempts per recipient within one run of a job
MAX_PAUSE = 30.0  # a longer Retry-After ends the run; the outbox tries again after it
BACKOFF = 0.5
MAX_PAUSED = 1024  # origins held at once before the waits that ended are forgotten
MAX_ANSWER = 65536  # the most of a push service's answer read (a hostile one may never stop)


@dataclass(frozen=True)
class Push:
    """What every recipient of one job gets: the plaintext and the Web Push headers."""

    payload: bytes
    topic: str
    ttl: int
    urgency: str


@dataclass
class Outcome:
    """A run's result: the job's progress, and the longest Retry-After the push services asked for."""

    progress: Progress
    retry_after: float | None = None


class Fanout:
    """Sends jobs through one aiohttp session with a bounded number of connections."""

    def __init__(self, store: Subscriptions, signer: Signer, session: Callable[[], aiohttp.ClientSession],
                 connections: int, *, loopback: bool = False) -> None:
        self.store = store
        self.loopback = loopback
        self.signer = signer
        self.session = session
        self.connections = connections
        self._paused: dict[str, float] = {}  # push service origin → until when it asked us to wait

    async def run(self, key: str, push: Push) -> Outcome:
        """Send job `key` to every recipient not yet done; its progress afterwards."""
        await asyncio.to_thread(self.store.reopen, key)
        run = _Run(self, key, push)
        await run.all()
        progress = await asyncio.to_thread(self.store.progress, key)
        return Outcome(progress, run.retry_after)

    def paused_for(self, origin: str) -> float:
        """Seconds `origin` still asked us to wait."""
        return max(self._paused.get(origin, 0.0) - time.monotonic(), 0.0)

    def hold(self, origin: str, seconds: float) -> None:
        now = time.monotonic()
        if len(self._paused) >= MAX_PAUSED:  # origins are whatever strangers subscribed with
            self._paused = {o: until for o, until in self._paused.items() if until > now}
            while len(self._paused) >= MAX_PAUSED:
                self._paused.pop(next(iter(self._paused)))
        self._paused[origin] = max(self._paused.get(origin, 0.0), now + seconds)


class _Run:
    """One pass over a job: claim, encrypt, send, record; deferred recipients stay for the next pass."""

    def __init__(self, fanout: Fanout, key: str, push: Push) -> None:
        self.fanout = fanout
        self.store = fanout.store
        self.key = key
        self.push = push
        self.retry_after: float | None = None
        self._answers: list[tuple[int, int]] = []
        self._slots = asyncio.Semaphore(fanout.connections)
        self._writing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def all(self) -> None:
        try:
            await self._pass()
        finally:
            # Also when cancelled at shutdown: the requests in flight still get their answers
            # (each within the channel's timeout), and every answer in hand is written down.
            if self._tasks:
                await asyncio.shield(asyncio.wait(set(self._tasks)))
            await asyncio.shield(self._flush(force=True))

    async def _pass(self) -> None:
        cursor = 0
        while rows := await asyncio.to_thread(self.store.claim, self.key, CHUNK, cursor):
            cursor = rows[-1].id
            bodies = await asyncio.to_thread(_encrypt_all, self.push.payload, rows)
            for row, body in zip(rows, bodies):
                await self._slots.acquire()
                # Kept in self._tasks until done (not a TaskGroup: cancelling one would cut the
                # requests in flight, which a push service may already have taken).
                task = asyncio.get_running_loop().create_task(self._one(row, body))
                self._tasks.add(task)
                task.add_done_callback(self._finished)
            await self._flush(force=False)
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("push_send_crashed", error=repr(error))

    async def _one(self, row: Recipient, body: bytes | None) -> None:
        try:
            state = REFUSED if body is None else await self._send(row, body)
        finally:
            self._slots.release()
        if state is not None:
            self._answers.append((row.id, state))
        if len(self._answers) >= FLUSH:
            await self._flush(force=False)

    async def _flush(self, *, force: bool) -> None:
        if not force and len(self._answers) < FLUSH:
            return
        async with self._writing:
            answers, self._answers = self._answers, []
            if answers:
                await asyncio.to_thread(self.store.record, self.key, answers)

    async def _send(self, row: Recipient, body: bytes) -> int | None:
        """ACCEPTED, GONE or REFUSED; None to leave it for the next pass (429, 5xx, no answer)."""
        origin = _origin(row.endpoint)
        if not sendable(row.endpoint, loopback=self.fanout.loopback):
            log.warning("push_endpoint_refused", origin=origin)
            return GONE  # an address or a local name: never sent to, and forgotten
        for attempt in range(TRIES):
            if (wait := self.fanout.paused_for(origin)) > MAX_PAUSE:
                self.retry_after = max(self.retry_after or 0.0, wait)
                return None
            if wait:
                await asyncio.sleep(wait)
            answer = await self._post(row.endpoint, origin, body)
            if answer is None:
                await asyncio.sleep(BACKOFF * 2**attempt)
                continue
            status, asked = answer
            if status in (200, 201, 202):
                return ACCEPTED
            if status in (404, 410):
                return GONE
            if status != 429 and status != 408 and status < 500:
                log.debug("push_refused", origin=origin, status=status)  # counted in push_batch
                return REFUSED
            if not self._wait(origin, status, asked, attempt):
                return None
        return None

    async def _post(self, endpoint: str, origin: str, body: bytes) -> tuple[int, float | None] | None:
        """The push service's status and Retry-After; None when it could not be reached or did not answer."""
        headers = {"TTL": str(self.push.ttl), "Urgency": self.push.urgency, "Topic": self.push.topic,
                   "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                   "Authorization": self.fanout.signer.header(origin)}
        try:
            async with self.fanout.session().post(endpoint, data=body, headers=headers,
                                                  allow_redirects=False) as response:
                await response.content.read(MAX_ANSWER)  # a hostile one may never stop
                return response.status, http.retry_after(response.headers)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            log.debug("push_unreachable", origin=origin, reason=str(err) or type(err).__name__)
            return None

    def _wait(self, origin: str, status: int, wait: float | None, attempt: int) -> bool:
        """Honour a Retry-After for the whole origin; False when it is too long to wait in this pass."""
        seconds = wait if wait is not None else BACKOFF * 2**attempt
        if seconds > MAX_PAUSE:
            self.retry_after = max(self.retry_after or 0.0, seconds)
            self.fanout.hold(origin, seconds)
            return False
        if status == 429 and not self.fanout.paused_for(origin):
            log.info("push_paused", origin=origin, seconds=round(seconds, 2))  # once a pause, not per answer
        self.fanout.hold(origin, seconds)
        return True


def _encrypt_all(payload: bytes, rows: list[Recipient]) -> list[bytes | None]:
    """Each recipient's ciphertext; None for keys that cannot be used (REFUSED, not retried)."""
    bodies: list[bytes | None] = []
    for row in rows:
        try:
            bodies.append(encrypt(payload, row.p256dh, row.auth))
        except Exception:  # keys checked at subscription; a bad one must not stop the others
            bodies.append(None)
    return bodies


def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"
