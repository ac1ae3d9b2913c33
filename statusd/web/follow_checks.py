"""Checking a subscribe or unsubscribe request, field by field, into a Subscription or one sentence."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from statusd.channels.webpush_guard import public_name
from statusd.channels.webpush_store import KINDS, Subscription

MAX_ENDPOINT = 1024
# Printable ASCII without spaces, quotes or angle brackets: what push services' endpoints are made of.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_B64URL = re.compile(r"[A-Za-z0-9_\-]+={0,2}")
SUBSCRIBE_KEYS = frozenset({"endpoint", "keys", "site", "kinds", "language", "expirationTime"})
UNSUBSCRIBE_KEYS = frozenset({"endpoint", "site"})


class Invalid(ValueError):
    """A request that cannot be taken, with the one sentence that says why."""


def parse_subscription(data: Any, sites: Mapping[str, Any], languages: Sequence[str], *,
                       loopback: bool) -> Subscription:
    """A Subscription from the page's JSON (PushSubscription.toJSON() plus the choices)."""
    fields = _object(data, SUBSCRIBE_KEYS, "the request")
    endpoint = endpoint_of(fields.get("endpoint"), loopback=loopback)
    keys = _object(fields.get("keys"), frozenset({"p256dh", "auth"}), "keys")
    p256dh = _p256dh(keys.get("p256dh"))
    auth = _key(keys.get("auth"), "keys.auth", 16)
    site = _choice(fields.get("site"), tuple(sites), "site")
    kinds = _choice(fields.get("kinds", "status"), KINDS, "kinds")
    language = _choice(fields.get("language"), tuple(languages), "language")
    return Subscription(endpoint, p256dh, auth, site, kinds, language)


def parse_unsubscription(data: Any, sites: Mapping[str, Any]) -> tuple[str, str | None]:
    """The endpoint to forget, and the one site (None: every site it follows)."""
    fields = _object(data, UNSUBSCRIBE_KEYS, "the request")
    site = fields.get("site")
    return endpoint_of(fields.get("endpoint"), loopback=True), (
        None if site is None else _choice(site, tuple(sites), "site"))


def endpoint_of(value: Any, *, loopback: bool) -> str:
    """An https:// push endpoint (http://127.0.0.1 too when `loopback`), at most 1,024 characters."""
    if not isinstance(value, str) or not value:
        raise Invalid("endpoint should be the push subscription's endpoint URL, a string")
    if len(value) > MAX_ENDPOINT or not _URL_CHARS.fullmatch(value):
        raise Invalid(f"endpoint should be a URL of at most {MAX_ENDPOINT} printable ASCII characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as err:
        raise Invalid("endpoint is not a URL") from err
    if parts.username is not None or parts.password is not None or not parts.hostname:
        raise Invalid("endpoint should be https://host/path, without a user name or password")
    if parts.scheme == "https":
        if not public_name(parts.hostname):
            raise Invalid("endpoint should name a push service on the internet, not an address or a local name")
        return value
    if parts.scheme == "http" and loopback and parts.hostname == "127.0.0.1" and port is not None:
        return value
    raise Invalid("endpoint should start with https:// (push services speak nothing else)")


def _object(value: Any, allowed: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{what} should be a JSON object")
    unknown = sorted(k for k in value if k not in allowed)
    if unknown:
        shown = ascii(unknown[0][:24])[:64]  # escaped and short, whatever was sent
        raise Invalid(f"{what} has an unknown field {shown}; it may hold {', '.join(sorted(allowed))}")
    return value


def _choice(value: Any, choices: Sequence[str], field: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise Invalid(f"{field} should be one of {', '.join(choices)}")
    return value


def _key(value: Any, field: str, size: int) -> str:
    """A base64url key of exactly `size` bytes, kept as sent (unpadded)."""
    if not isinstance(value, str) or len(value) > 200 or not _B64URL.fullmatch(value):
        raise Invalid(f"{field} should be base64url text")
    bare = value.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError) as err:
        raise Invalid(f"{field} should be base64url text") from err
    if len(raw) != size:
        raise Invalid(f"{field} should be {size} bytes, not {len(raw)}")
    return bare


def _p256dh(value: Any) -> str:
    text = _key(value, "keys.p256dh", 65)
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as err:
        raise Invalid("keys.p256dh should be a P-256 public key (65 bytes, uncompressed)") from err
    return text
