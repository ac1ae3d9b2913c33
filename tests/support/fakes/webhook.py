"""A webhook receiver that answers like a real server: it checks signatures, honours
Idempotency-Key, and fails on demand (500, 429, 401, hanging, dropping after accepting).

In a test:

    async with WebhookReceiver("s3cret") as hook:
        ...                                  # point the webhook channel at hook.url
        await hook.wait_for(1, timeout=2.0)

As its own process (prints its URL as the first line of stdout, appends each
accepted message to --log as one JSON line, stops on SIGTERM or SIGINT):

    python -m tests.support.fakes.webhook --port 0 --secret S --delay 0.15 --log arrivals.jsonl

`GET /_control` answers the counts; `POST /_control {"mode": ..., "delay": ..., "status": ...}`
switches a running process. Every other path is the hook.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.fakes import blackhole, refusing_port, url_for
from tests.support.fakes.common import Fake, drop, options, serve

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


class WebhookReceiver(Fake):
    """An aiohttp app on 127.0.0.1 that records what it is sent and answers as `mode` says.

    A message counts as received when its request arrives (the platform has the post);
    the answer follows `delay` seconds later (here every answer but a hang or a drop).
    """

    MODES = MODES
    KIND = "receiver"

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
        self.retry_after = retry_after
        self.status = status
        self.host, self.port, self.path = host, port, path
        self.received: list[dict[str, Any]] = []
        self.arrivals: list[Arrival] = []
        self.attempts: list[Attempt] = []
        self.rejected: list[Attempt] = []
        self.deleted: list[dict[str, Any]] = []
        self.repeats = 0
        self._ids: dict[str, str] = {}
        self._setup(mode, delay, log)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

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

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/_control", self._fake_state)
        app.router.add_route("POST", "/_control", self._fake_control)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        attempt = self._attempt(request, body)
        mode = await self._next_mode()
        if mode is None:
            return drop(request)
        if not attempt.signature_ok:
            self.rejected.append(attempt)
            self._notify()
            return web.json_response({"error": "bad signature"}, status=401)
        if mode in ("error500", "ratelimit", "unauthorized", "status"):
            await self._pause()
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
        answer: dict[str, Any]
        if request.method == "POST":
            answer = {"id": self._record(payload, attempt)}
        elif request.method == "DELETE":
            self.deleted.append(payload)
            self._notify()
            answer = {"deleted": payload.get("retract")}
        else:
            return web.json_response({"error": "use POST or DELETE"}, status=405)
        if mode == "accept_then_drop":
            return await self._vanish(request)
        await self._pause()
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
        self._log_post(arrival.wall, attempt.path, arrival.remote_id,
                       monotonic=arrival.monotonic, key=arrival.key, body=payload)
        self._notify()
        return arrival.remote_id

    def _apply_own(self, change: dict[str, Any]) -> None:
        if "status" in change:
            self.status = int(change["status"])


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# -- standalone process ----------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = options("webhook", "A fake webhook receiver.", MODES)
    parser.add_argument("--secret", required=True, help="the HMAC secret the sender signs with")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    asyncio.run(serve(WebhookReceiver(args.secret, delay=args.delay, mode=args.mode,
                                      host=args.host, port=args.port, log=args.log)))


if __name__ == "__main__":
    main()
