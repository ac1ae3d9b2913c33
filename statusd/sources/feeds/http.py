"""HTTP push: POST /api/v1/readings with a feed's bearer token, and its OpenAPI description.

Bad input gets a 4xx naming the field and stores nothing: the whole body is
checked before a single reading reaches the intake. A device that can only
do Basic auth (Xovis data push) may send the token as the password.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from statusd.config.feeds import FeedsConfig, HttpFeedConfig
from statusd.config.load import Config
from statusd.sources.feeds.openapi import openapi
from statusd.sources.feeds.payload import PayloadError, parse_json
from statusd.sources.feeds.vendors import Decoder, refuse_unallowed
from statusd.sources.readings import Reading

log = structlog.get_logger()

MAX_BODY = 1024 * 1024
_CHALLENGE = 'Bearer realm="statusd"'

Intake = Callable[[list[Reading]], None]
Clock = Callable[[], datetime]


def add_routes(app: web.Application, config: Config, feeds: FeedsConfig, intake: Intake,
               clock: Clock | None = None, describe_more: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
               ) -> None:
    """POST /api/v1/readings and GET /api/openapi.json on `app` (with what `describe_more` adds)."""
    handler = IngestHandler(config, feeds, intake, clock or (lambda: datetime.now(UTC)))
    app.router.add_post("/api/v1/readings", handler.post)
    document = openapi()
    spec = json.dumps(describe_more(document) if describe_more else document, indent=1).encode()

    async def describe(request: web.Request) -> web.Response:
        return web.Response(body=spec, content_type="application/json",
                            headers={"Access-Control-Allow-Origin": "*"})

    app.router.add_get("/api/openapi.json", describe)


class Bucket:
    """A token bucket: `rate` requests a second, bursts of twice that; rate 0 never refuses."""

    def __init__(self, rate: int) -> None:
        self.rate = float(rate)
        self.capacity = 2.0 * rate
        self.level = self.capacity
        self.stamp: float | None = None

    def take(self, now: float) -> None:
        """Spend one request, or raise PayloadError 429 saying when to come back."""
        if self.rate <= 0:
            return
        elapsed = 0.0 if self.stamp is None else max(0.0, now - self.stamp)
        self.stamp = now
        self.level = min(self.capacity, self.level + elapsed * self.rate)
        if self.level < 1.0:
            wait = (1.0 - self.level) / self.rate
            raise RateLimited(wait)
        self.level -= 1.0


class RateLimited(PayloadError):
    """Too many requests with one token: 429 with Retry-After."""

    def __init__(self, wait: float) -> None:
        super().__init__(429, "Authorization", "too many requests with this token; slow down")
        self.retry_after = max(1, math.ceil(wait))


class _Feed:
    """An HTTP feed with its token read once, its decoder and its rate limit."""

    def __init__(self, feed: HttpFeedConfig, token: bytes, decoder: Decoder) -> None:
        self.config = feed
        self.token = token
        self.decoder = decoder
        self.bucket = Bucket(feed.max_rate)


class IngestHandler:
    """Checks token, size, type and payload; hands only whole good batches to the intake."""

    def __init__(self, config: Config, feeds: FeedsConfig, intake: Intake, clock: Clock) -> None:
        self.intake = intake
        self.clock = clock
        self.feeds: list[_Feed] = []
        for name, feed in feeds.http().items():
            token = feed.token.read()
            if token is None:
                log.warning("feed_inactive", feed=name, reason=f"{feed.token.describe()} is not set")
                continue
            self.feeds.append(_Feed(feed, token.encode(), Decoder(feed.decoding, config, name)))

    async def post(self, request: web.Request) -> web.Response:
        try:
            feed = self._authenticate(request)
            feed.bucket.take(time.monotonic())
            readings = await self._readings(request, feed)
        except PayloadError as err:
            return _refuse(err)
        except Exception:  # a bug in the checks must not become a 500 for the sender
            log.exception("ingest_unexpected_input")
            return _refuse(PayloadError(400, "", "the body could not be read as readings"))
        try:
            self.intake(readings)
        except Exception:
            log.exception("ingest_intake_failed", feed=feed.config.name)
            return web.json_response({"error": "the daemon could not take the readings now; retry",
                                      "field": ""}, status=503, headers={"Retry-After": "5"})
        return web.json_response({"accepted": len(readings)}, status=202)

    def _authenticate(self, request: web.Request) -> _Feed:
        presented = _credential(request.headers.get("Authorization", ""))
        if presented is None:
            raise PayloadError(401, "Authorization", "a bearer token is required")
        found = None
        for feed in self.feeds:  # compare with every feed, so timing tells nothing
            if hmac.compare_digest(presented, feed.token):
                found = feed
        if found is None:
            raise PayloadError(401, "Authorization", "the token is not one of a configured feed")
        return found

    async def _readings(self, request: web.Request, feed: _Feed) -> list[Reading]:
        if request.content_type != "application/json" and not request.content_type.endswith("+json"):
            raise PayloadError(415, "Content-Type", f"should be application/json, got {request.content_type!r}")
        body = await _body(request)
        if not body.strip():
            raise PayloadError(400, "", "the body is empty")
        readings = feed.decoder.decode(parse_json(body), self.clock())
        refuse_unallowed(readings, feed.config.allow, feed.config.name)
        return readings


def _credential(header: str) -> bytes | None:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value.encode()
    if scheme.lower() == "basic" and value:
        try:
            _, sep, password = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return None
        return password if sep and password else None
    return None


async def _body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadError(413, "", f"the body is over {MAX_BODY // 1024} KiB; send smaller batches")
    chunks, size = [], 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadError(413, "", f"the body is over {MAX_BODY // 1024} KiB; send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(err: PayloadError) -> web.Response:
    headers = {"WWW-Authenticate": _CHALLENGE} if err.status == 401 else None
    if err.status == 413:
        headers = {"Connection": "close"}
    if isinstance(err, RateLimited):
        headers = {"Retry-After": str(err.retry_after)}
    return web.json_response(err.to_json(), status=err.status, headers=headers)
