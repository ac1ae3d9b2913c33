"""A rendered public document with its validator, and the HTTP caching rules around it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Doc:
    """Bytes served as they are: rendered once per change, never per request."""

    body: bytes
    content_type: str
    etag: str = field(default="")

    def __post_init__(self) -> None:
        if not self.etag:
            object.__setattr__(self, "etag", etag_of(self.body))


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:24] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak comparison, as RFC 9110 asks)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return etag.removeprefix("W/") in tags


def host(public_url: str) -> str:
    """The host name of the public address, for tag: URIs and CAP senders."""
    return urlsplit(public_url).hostname or "localhost"
