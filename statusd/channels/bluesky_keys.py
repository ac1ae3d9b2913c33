"""What the Bluesky channel keeps between attempts and between starts.

Record keys: a post's rkey is a TID (https://atproto.com/specs/tid): a 64-bit
integer, top bit 0, then 53 bits of microseconds since the epoch and a 10-bit
clock id, written in base32-sortable as 13 characters. statusd derives it from
the delivery's creation time (stored before the first attempt) and its
idempotency key, so every attempt of one delivery names the same record and a
second create can never make a second post.

Sessions: createSession is limited (30 per 5 minutes, 300 per day per handle),
so the tokens are kept in the state directory, mode 0600, and reused after a
restart; a createSession refused with 429 is remembered there too, so a crash
loop cannot keep asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

log = structlog.get_logger()

_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def tid(created: datetime, key: str) -> str:
    """The record key of the delivery recorded at `created` with idempotency key `key`."""
    micros = (created.astimezone(UTC) - _EPOCH) // _MICROSECOND
    clock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:2], "big") & 0x3FF
    value = ((micros & ((1 << 53) - 1)) << 10) | clock
    return "".join(_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def tid_time(rkey: str) -> datetime | None:
    """When a TID says it was made; None if `rkey` is not a TID."""
    if len(rkey) != 13 or any(c not in _ALPHABET for c in rkey) or rkey[0] not in _ALPHABET[:16]:
        return None
    value = 0
    for char in rkey:
        value = value * 32 + _ALPHABET.index(char)
    return _EPOCH + (value >> 10) * _MICROSECOND


@dataclass(frozen=True)
class Kept:
    """A session as kept on disk: for which server and account, its tokens, and any lock-out."""

    service: str
    handle: str
    access: str = ""
    refresh: str = ""
    did: str = ""
    shown_handle: str = ""
    create_after: float = 0.0  # epoch seconds: createSession answered 429 until then


class SessionFile:
    """One channel's session file, read and written off the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self, service: str, handle: str) -> Kept | None:
        """The kept session for this server and handle; None if there is none (or another's)."""
        kept = await asyncio.to_thread(self._read)
        if kept is None or (kept.service, kept.handle) != (service, handle):
            return None
        return kept

    async def save(self, kept: Kept) -> None:
        """Write the session; a file that cannot be written costs a login later, never a post."""
        try:
            await asyncio.to_thread(self._write, kept)
        except OSError as err:
            log.warning("session_not_kept", file=str(self.path), reason=err.strerror or str(err))

    def _read(self) -> Kept | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return Kept(**{k: data[k] for k in Kept.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError):
            return None  # missing or damaged: log in afresh

    def _write(self, kept: Kept) -> None:
        """Atomically, 0600 from the first byte: the tokens are as good as the password."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(self.path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(kept), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
