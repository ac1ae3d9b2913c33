"""VAPID keys (RFC 8292) and message encryption (RFC 8291), through py-vapid and pywebpush.

The private key is a P-256 key in PEM (what `statusd push keys` writes) or the
raw 32 bytes in base64url (what other tools print); the public key is given to
browsers as `applicationServerKey`. One VAPID header is signed per push
service origin and reused until an hour before it expires (12 h, under the
24 h RFC 8292 allows), so a fan-out signs a handful of tokens, not one per message.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher

TOKEN_LIFE = 12 * 3600
TOKEN_MARGIN = 3600
# Signed headers kept: the browsers' push services are a handful; the rest is someone's flood.
MAX_ORIGINS = 256


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate() -> tuple[str, str]:
    """A new key pair: the private key as PEM (PKCS #8) and the public key in base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode("ascii")
    return pem, public_key(key)


def public_key(key: ec.EllipticCurvePrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(raw)


def load(text: str) -> Any:
    """The py-vapid signer for a private key; ValueError (never the key) when it is not one."""
    text = text.strip()
    try:
        if "-----BEGIN" in text:
            return Vapid02.from_pem(text.encode("ascii"))
        return Vapid02.from_string(text)
    except Exception as err:  # py-vapid raises whatever its parsers raise
        raise ValueError("the VAPID private key is neither a PEM P-256 key nor 32 bytes in base64url "
                         "(make one with `statusd push keys`)") from err


class Signer:
    """VAPID Authorization headers per push service origin, signed once and reused for hours."""

    def __init__(self, vapid: Any, subject: str) -> None:
        self._vapid = vapid
        self.subject = subject
        self.public_key = public_key(vapid.private_key)
        self._cache: dict[str, tuple[float, str]] = {}

    def header(self, origin: str, now: float | None = None) -> str:
        """The `Authorization: vapid t=…,k=…` value for requests to `origin` (scheme://host[:port])."""
        now = time.time() if now is None else now
        cached = self._cache.get(origin)
        if cached is not None and cached[0] - TOKEN_MARGIN > now:
            return cached[1]
        expires = int(now) + TOKEN_LIFE
        signed = self._vapid.sign({"aud": origin, "sub": self.subject, "exp": expires})
        value = str(signed["Authorization"])
        if len(self._cache) >= MAX_ORIGINS:  # origins are whatever strangers subscribed with
            self._cache.pop(next(iter(self._cache)))
        self._cache[origin] = (float(expires), value)
        return value


def encrypt(payload: bytes, p256dh: str, auth: str) -> bytes:
    """`payload` encrypted for one subscription (aes128gcm, a fresh ECDH key per message)."""
    pusher = WebPusher({"endpoint": "https://unused.invalid/", "keys": {"p256dh": p256dh, "auth": auth}})
    return bytes(pusher.encode(payload, content_encoding="aes128gcm")["body"])
