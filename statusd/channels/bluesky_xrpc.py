"""XRPC answers for the Bluesky channel: errors, rate-limit waits, record references."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from statusd.channels import http
from statusd.channels.base import PermanentError, TransientError

_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
# Errors that mean "this access token no longer works": refresh, then try once more.
TOKEN_ERRORS = {"ExpiredToken", "InvalidToken", "AuthenticationRequired"}


class Failed(Exception):
    """An XRPC error answer, before it is classified for the outbox."""

    def __init__(self, status: int, error: str, text: str, headers: Mapping[str, str]) -> None:
        super().__init__(f"HTTP {status} {error}: {text}" if error else f"HTTP {status}: {text}")
        self.status, self.error, self.text, self.headers = status, error, text, headers


def answer(status: int, headers: Mapping[str, str], text: str) -> Any:
    """The JSON object of a success; Failed for an error, with or without a JSON body."""
    data = http.parsed(text, empty={})
    if status < 300 and isinstance(data, dict):
        return data
    if status < 300:
        raise Failed(status, "", f"the answer is not a JSON object: {text.strip()[:120]}", headers)
    if isinstance(data, dict):
        raise Failed(status, str(data.get("error") or ""), str(data.get("message") or ""), headers)
    raise Failed(status, "", text.strip()[:200], headers)


def classify(err: Failed, where: str) -> TransientError | PermanentError:
    """The ChannelError a Failed answer means for the outbox; `where` names the PDS."""
    reason = f"{where}: {err}"
    # A 2xx that cannot be read may still have posted: the outbox looks before retrying.
    if err.status < 300 or err.status in (408, 429) or err.status >= 500:
        return TransientError(reason, retry_after=retry_after(err.headers))
    if err.error in TOKEN_ERRORS:
        return PermanentError(f"{reason}; the session was refused again after renewing it")
    return PermanentError(reason)


def may_exist(err: Failed) -> bool:
    """Whether a refused create may mean the record is there already (not a limit, not our text)."""
    return err.status >= 500 or err.status == 409 or "exist" in err.text.lower()


def at_now() -> str:
    """The time as AT Protocol datetimes are usually written: UTC, milliseconds, "Z"."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from Retry-After, else until RateLimit-Reset (epoch seconds)."""
    wait = http.retry_after(headers)
    reset = (headers.get("RateLimit-Reset") or "").strip()
    if wait is None and _NUMBER.fullmatch(reset):
        wait = max(0.0, float(reset) - time.time())
    return wait


def strong_ref(remote_id: str) -> dict[str, str]:
    uri, _, cid = remote_id.partition("|")
    if not uri.startswith("at://") or not cid:
        raise PermanentError(f"{remote_id!r} is not a Bluesky post id (expected 'at://...|cid')")
    return {"uri": uri, "cid": cid}


def at_uri(uri: str) -> tuple[str, str, str]:
    """at://REPO/COLLECTION/RKEY → (repo, collection, rkey)."""
    parts = uri.removeprefix("at://").split("/")
    if not uri.startswith("at://") or len(parts) != 3 or not all(parts):
        raise PermanentError(f"{uri!r} is not an at:// URI of a record")
    return parts[0], parts[1], parts[2]
