"""A webhook receiver that answers like a real server: it checks signatures, honours
Idempotency-Key, and fails on demand (500, 429, 401, hanging, dropping after accepting).

In a test:

    async with WebhookReceiver("s3cret") as hook:
        ...                                  # point the webhook channel at hook.url
        await hook.wait_for(1, timeout=2.0)

As its own process (prints its URL as the first line of stdout, appends each
accepted message to --log as one JSON line, stops on SIGTERM or SIGINT):

    python -m tests.fakes.webhook --port 0 --secret S --delay 0.15 --log arrivals.jsonl

`GET /_control` answers the counts; `POST /_control {"mode": ..., "delay": ..., "status": ...}`
switches a running process. Every other path is the hook.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from aiohttp import web

from tests.fakes import blackhole, refusing_port, url_for

__all__ = ["MODES", "Arrival", "Attempt", "WebhookReceiver", "blackhole", "expected_signature",
           "refusing_port", "url_for"]

MODES = (
    "ok",                # 200 {"id": ...}
    "plain",             # 200 with a text body, not JSON
    "error500",          # 500 with an HTML body, as a broken proxy answers
    "ratelimit",         # 429 with Retry-After and X-RateLimit-Reset
    "hang",              # no answer until the mode is switched or the receiver stops
    "unauthorized",      # 401 {"error": "invalid token"}
    "accept_then_drop",  # the message is received, then the connection closes unanswered
    "status",            # `status` (any code) with a JSON error body
)
SIGNATURE_HEADER = "X-Statusd-Signature"
_HTML_500 = "<html><head><title>500 Internal Server Error</title></head><body>Oops</body></html>"


@dataclass(frozen=True)
class Attempt:
    """One request as it arrived, whatever it was answered."""

    method: str
    path: str
    key: str | None
    signature_ok: bool
    body: bytes
    monotonic: float
    wall: float


@dataclass(frozen=True)
class Arrival:
    """One accepted message, the first time its idempotency key was seen."""

    body: dict[str, Any]
    key: str | None
    remote_id: str
    monotonic: float
    wall: float


def expected_signature(secret: str, body: bytes) -> str:
    """What a correct sender puts in X-Statusd-Signature (written here independently of statusd)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookReceiver:
    """An aiohttp app on 127.0.0.1 that records what it is sent and answers as `mode` says.

    A message counts as received when its request arrives (the platform has the post);
    the answer follows `delay` seconds later.
    """

    def __init__(
        self,
        secret: str = "receiver-secret",
        *,
        delay: float = 0.0,
        mode: str = "ok",
        retry_after: int = 2,
        status: int = 503,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/hook",
        log: Path | None = None,
    ) -> None:
        self.secret = secret
        self.delay = delay
        self.retry_after = retry_after
        self.status = status
        self.host, self.port, self.path = host, port, path
        self.received: list[dict[str, Any]] = []
        self.arrivals: list[Arrival] = []
        self.attempts: list[Attempt] = []
        self.rejected: list[Attempt] = []
        self.deleted: list[dict[str, Any]] = []
        self.repeats = 0
        self._mode = _check_mode(mode)
        self._version = 0  # bumped on every mode switch, so held requests notice one
        self._script: deque[str] = deque()
        self._ids: dict[str, str] = {}
        self._log_path = log
        self._log: IO[str] | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self._mode = _check_mode(value)
        self._version += 1
        self._notify()

    def script(self, *modes: str) -> None:
        """Answer the next requests with these modes, one each, before `mode` applies again."""
        self._script.extend(_check_mode(m) for m in modes)

    async def start(self) -> None:
        self._stopping = False
        self._changed = asyncio.Event()
        app = web.Application()
        app.router.add_route("GET", "/_control", self._stats)
        app.router.add_route("POST", "/_control", self._control)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown timeout: held requests are released on stop anyway.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        if self._log_path is not None:
            self._log = self._log_path.open("a", encoding="utf-8", buffering=1)

    async def stop(self) -> None:
        self._stopping = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The received bodies once there are at least `count`; TimeoutError after `timeout` s."""
        await self._until(
            lambda: len(self.received) >= count,
            timeout,
            lambda: f"the receiver took {len(self.received)} of {count} messages in {timeout:g} s",
        )
        return self.received

    async def wait_attempts(self, count: int, timeout: float = 5.0) -> list[Attempt]:
        """The requests once at least `count` arrived, answered or not."""
        await self._until(
            lambda: len(self.attempts) >= count,
            timeout,
            lambda: f"the receiver got {len(self.attempts)} of {count} requests in {timeout:g} s",
        )
        return self.attempts

    def stats(self) -> dict[str, Any]:
        return {
            "mode": self._mode,
            "received": len(self.received),
            "attempts": len(self.attempts),
            "rejected": len(self.rejected),
            "repeats": self.repeats,
            "deleted": len(self.deleted),
        }

    # -- internals ---------------------------------------------------------------------------

    def _notify(self) -> None:
        # Wake everything waiting (wait_for, held requests), then arm a fresh event.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _until(
        self, done: Callable[[], bool], timeout: float, why: Callable[[], str]
    ) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(why())
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass  # the loop checks once more, then raises with the count

    async def _mode_switch(self) -> bool:
        """Wait until the mode is switched; False if the receiver is stopping instead."""
        version = self._version
        while self._version == version and not self._stopping:
            await self._changed.wait()
        return not self._stopping

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        attempt = self._attempt(request, body)
        mode = self._script.popleft() if self._script else self._mode
        while mode == "hang":
            if not await self._mode_switch():
                return _drop(request)
            mode = self._mode
        if not attempt.signature_ok:
            self.rejected.append(attempt)
            self._notify()
            return web.json_response({"error": "bad signature"}, status=401)
        if mode in ("error500", "ratelimit", "unauthorized", "status"):
            await asyncio.sleep(self.delay)
            return self._failure(mode)
        return await self._accept(request, attempt, mode)

    def _attempt(self, request: web.Request, body: bytes) -> Attempt:
        attempt = Attempt(
            method=request.method,
            path=request.path,
            key=request.headers.get("Idempotency-Key"),
            signature_ok=hmac.compare_digest(
                request.headers.get(SIGNATURE_HEADER, ""), expected_signature(self.secret, body)
            ),
            body=body,
            monotonic=time.monotonic(),
            wall=time.time(),
        )
        self.attempts.append(attempt)
        self._notify()
        return attempt

    def _failure(self, mode: str) -> web.Response:
        if mode == "error500":
            return web.Response(status=500, text=_HTML_500, content_type="text/html")
        if mode == "ratelimit":
            headers = {
                "Retry-After": str(self.retry_after),
                "X-RateLimit-Reset": str(int(time.time()) + self.retry_after),
            }
            return web.json_response({"error": "rate limited"}, status=429, headers=headers)
        if mode == "status":
            error = {"error": f"answering {self.status} as asked"}
            return web.json_response(error, status=self.status)
        return web.json_response({"error": "invalid token"}, status=401)

    async def _accept(
        self, request: web.Request, attempt: Attempt, mode: str
    ) -> web.StreamResponse:
        payload = _json_object(attempt.body)
        if payload is None:
            return web.json_response({"error": "the body should be a JSON object"}, status=400)
        if request.method == "POST":
            answer = {"id": self._record(payload, attempt)}
        elif request.method == "DELETE":
            self.deleted.append(payload)
            self._notify()
            answer = {"deleted": payload.get("retract")}
        else:
            return web.json_response({"error": "use POST or DELETE"}, status=405)
        if mode == "accept_then_drop":
            await self._mode_switch()
            return _drop(request)
        await asyncio.sleep(self.delay)
        if mode == "plain":
            return web.Response(text="OK")
        return web.json_response(answer)

    def _record(self, payload: dict[str, Any], attempt: Attempt) -> str:
        """The id of the post for this request, creating it unless its key was seen."""
        if attempt.key is not None and attempt.key in self._ids:
            self.repeats += 1
            self._notify()
            return self._ids[attempt.key]
        arrival = Arrival(payload, attempt.key, f"msg-{len(self.arrivals) + 1}",
                          attempt.monotonic, attempt.wall)
        if attempt.key is not None:
            self._ids[attempt.key] = arrival.remote_id
        self.arrivals.append(arrival)
        self.received.append(payload)
        if self._log is not None:
            self._log.write(json.dumps({
                "received_at": arrival.wall, "monotonic": arrival.monotonic,
                "key": arrival.key, "id": arrival.remote_id, "body": payload,
            }, ensure_ascii=False) + "\n")
        self._notify()
        return arrival.remote_id

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _control(self, request: web.Request) -> web.Response:
        change = await request.json()
        try:
            if "delay" in change:
                self.delay = float(change["delay"])
            if "status" in change:
                self.status = int(change["status"])
            if "mode" in change:
                self.mode = change["mode"]
        except (TypeError, ValueError) as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response(self.stats())


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown receiver mode {mode!r}; expected one of: {', '.join(MODES)}")
    return mode


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _drop(request: web.Request) -> web.Response:
    """Close the connection without a word: the client sees it vanish, not an answer."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=204)  # never reaches the client


# -- standalone process ----------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.webhook", description="A fake webhook receiver."
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--secret", required=True, help="the HMAC secret the sender signs with")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--mode", default="ok", choices=MODES)
    parser.add_argument("--log", type=Path, help="append each accepted message here as a JSON line")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    receiver = WebhookReceiver(args.secret, delay=args.delay, mode=args.mode,
                               host=args.host, port=args.port, log=args.log)
    await receiver.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(receiver.url, flush=True)  # the parent reads this line to know it is listening
    await stop.wait()
    await receiver.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
