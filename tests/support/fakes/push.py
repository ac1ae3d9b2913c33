"""A push service of our own: the receiving side of RFC 8030 (push), RFC 8291 (encryption), RFC 8292 (VAPID).

It holds the browser side of each subscription (a P-256 key pair and the auth
secret, made with `cryptography`), so it can do what a browser vendor's push
service and the browser do together: check the VAPID header (ES256 JWT, `aud`
the endpoint's origin, `exp` within 24 h, a mailto:/https: `sub`, signed by the
key in `k`), require TTL, check Urgency and Topic, decrypt each message
(aes128gcm) with the subscription's private key, and keep it. It is written
from the RFCs with `cryptography` only (no pywebpush, no http_ece), so it
cannot share a mistake with the sender.

Harsh on demand: `gone` subscriptions answer 404 or 410; `limit(n, retry_after)`
answers 429 with Retry-After to the next n requests; `delay` holds every answer.
A message with the Topic of one still held replaces it (RFC 8030 §5.4): `held`
is what a phone would be shown, `received` every message accepted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

URGENCIES = ("very-low", "low", "normal", "high")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:length]


class _Stall(Exception):
    """Hold this request without an answer."""


@dataclass
class Browser:
    """The browser side of one subscription: its keys, and what reached it."""

    id: str
    private: ec.EllipticCurvePrivateKey
    auth: bytes
    gone: int | None = None  # 404 or 410 once the browser dropped it

    @property
    def p256dh(self) -> str:
        raw = self.private.public_key().public_bytes(serialization.Encoding.X962,
                                                     serialization.PublicFormat.UncompressedPoint)
        return b64url(raw)

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 §3.4 and RFC 8188: one aes128gcm record, padding delimiter 0x02."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        sender_raw, ciphertext = body[21:21 + idlen], body[21 + idlen:]
        if idlen != 65 or rs < 18 or len(ciphertext) > rs:
            raise ValueError("the aes128gcm header is not one of Web Push (65-byte keyid, one record)")
        sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_raw)
        secret = self.private.exchange(ec.ECDH(), sender)
        ua_public = unb64url(self.p256dh)
        ikm = _hkdf(self.auth, secret, b"WebPush: info\x00" + ua_public + sender_raw, 32)
        cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
        nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        stripped = padded.rstrip(b"\x00")
        if not stripped or stripped[-1] != 2:
            raise ValueError("the last record does not end with the 0x02 delimiter")
        return stripped[:-1]


@dataclass(frozen=True)
class Received:
    """One accepted message, as the push service saw it and the browser read it."""

    browser: str
    topic: str | None
    ttl: int
    urgency: str
    payload: dict[str, Any]
    at: float


@dataclass
class PushService:
    """The fake: aiohttp on 127.0.0.1, endpoints http://127.0.0.1:PORT/push/ID."""

    vapid_public: str | None = None  # the application server's key the subscriptions were made with
    delay: float = 0.0
    decrypt: bool = True
    browsers: dict[str, Browser] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    held: dict[tuple[str, str], Received] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    answers: Counter[int] = field(default_factory=Counter)
    port: int = 0
    _limited: int = 0
    _retry_after: float = 1.0
    _failing: list[int] = field(default_factory=list)  # next answers: 500 with an HTML page, or 0 for a stall
    stall: float = 60.0
    _tokens: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def subscribe(self, gone: int | None = None) -> Browser:
        """A new browser subscription (keys made here, as a browser makes them)."""
        browser = Browser(b64url(os.urandom(12)), ec.generate_private_key(ec.SECP256R1()), os.urandom(16), gone)
        self.browsers[browser.id] = browser
        return browser

    def endpoint(self, browser: Browser) -> str:
        return f"{self.origin}/push/{browser.id}"

    def limit(self, count: int, retry_after: float) -> None:
        """Answer the next `count` requests 429 with this Retry-After."""
        self._limited, self._retry_after = count, retry_after

    def fail(self, *statuses: int) -> None:
        """The next requests answer these statuses, with an HTML error page; 0 stalls (no answer)."""
        self._failing.extend(statuses)

    def times(self) -> Counter[str]:
        """How many messages each browser received."""
        return Counter(r.browser for r in self.received)

    async def start(self) -> PushService:
        app = web.Application(client_max_size=8192)
        app.router.add_post("/push/{id}", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=4096)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> PushService:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _push(self, request: web.Request) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            response = self._answer(request, await request.read())
        except _Stall:
            await asyncio.sleep(self.stall)  # the request is read, nothing is answered
            raise web.HTTPGatewayTimeout() from None
        self.answers[response.status] += 1
        return response

    def _answer(self, request: web.Request, body: bytes) -> web.Response:
        browser = self.browsers.get(request.match_info["id"])
        if browser is None:
            return web.Response(status=404, text="no such subscription")
        if self._failing:
            status = self._failing.pop(0)
            if status == 0:
                raise _Stall
            return web.Response(status=status, content_type="text/html",
                                text="<html><body><h1>502 Bad Gateway</h1>nginx</body></html>")
        if self._limited > 0:
            self._limited -= 1
            return web.Response(status=429, headers={"Retry-After": f"{self._retry_after:g}"}, text="slow down")
        problem = self._vapid(request.headers.get("Authorization", "")) or self._headers(request.headers)
        if problem:
            self.refused[problem] += 1
            return web.Response(status=400 if "VAPID" not in problem else 403, text=problem)
        if browser.gone:
            return web.Response(status=browser.gone, text="subscription expired")
        try:
            payload = json.loads(browser.decrypt(body)) if self.decrypt else {}
        except (ValueError, InvalidTag) as err:
            self.refused[f"cannot decrypt: {err}"] += 1
            return web.Response(status=400, text="cannot decrypt")
        topic = request.headers.get("Topic")
        got = Received(browser.id, topic, int(request.headers["TTL"]), request.headers.get("Urgency", "normal"),
                       payload, time.time())
        self.received.append(got)
        self.held[(browser.id, topic or f"#{len(self.received)}")] = got
        return web.Response(status=201, headers={"Location": f"/message/{len(self.received)}"})

    def _headers(self, headers: Any) -> str | None:
        ttl = headers.get("TTL", "")
        if not ttl.isdigit():
            return "TTL is missing or not a number of seconds (RFC 8030 §5.2)"
        if headers.get("Urgency", "normal") not in URGENCIES:
            return "Urgency is not one of very-low, low, normal, high (RFC 8030 §5.3)"
        topic = headers.get("Topic")
        if topic is not None and (len(topic) > 32 or not all(c.isalnum() or c in "-_" for c in topic)):
            return "Topic is over 32 base64url characters (RFC 8030 §5.4)"
        if headers.get("Content-Encoding") != "aes128gcm":
            return "Content-Encoding is not aes128gcm (RFC 8291 §4)"
        return None

    def _vapid(self, authorization: str) -> str | None:
        """None when the header is a valid RFC 8292 VAPID header for this origin, else what is wrong."""
        scheme, _, params = authorization.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        if scheme.lower() != "vapid" or "t" not in fields or "k" not in fields:
            return "VAPID: Authorization is not 'vapid t=…, k=…'"
        if self.vapid_public is not None and fields["k"] != self.vapid_public:
            return "VAPID: k is not the key the subscription was made with"
        if fields["t"] in self._tokens:
            return None
        try:
            head, claims, signature = fields["t"].split(".")
            if json.loads(unb64url(head)) != {"typ": "JWT", "alg": "ES256"}:
                return "VAPID: the JWT header is not ES256"
            raw = unb64url(signature)
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
            key.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
            data = json.loads(unb64url(claims))
        except (ValueError, InvalidSignature):
            return "VAPID: the JWT signature does not verify with k"
        now = time.time()
        if data.get("aud") != self.origin:
            return "VAPID: aud is not the push service's origin"
        if not isinstance(data.get("exp"), int) or not now < data["exp"] <= now + 86400:
            return "VAPID: exp is past or more than 24 hours ahead"
        if not str(data.get("sub", "")).startswith(("mailto:", "https://")):
            return "VAPID: sub is not a mailto: or https: contact"
        self._tokens.add(fields["t"])
        return None
