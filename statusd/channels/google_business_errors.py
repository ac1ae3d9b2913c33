"""What a Google API answer means: its `{"error": {code, message, status, details}}` as a ChannelError.

Google's APIs say what went wrong in `error.status` (INVALID_ARGUMENT, UNAUTHENTICATED,
PERMISSION_DENIED, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE…) with details such as
`google.rpc.ErrorInfo` (reason, quota metric), `google.rpc.BadRequest` (the fields) and
`google.rpc.RetryInfo` (how long to wait). The OAuth token endpoint answers its own shape,
`{"error": "invalid_grant", "error_description": …}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from statusd.channels import http
from statusd.channels.base import ChannelError, PermanentError, TransientError

# The Business Profile APIs count per minute (and edits per location per minute): a quota
# answer without RetryInfo is waited out for a minute.
DEFAULT_WAIT = 60.0
_DELAY = re.compile(r"([0-9]{1,6})(\.[0-9]{1,9})?s")
_TRANSIENT = frozenset({"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED", "UNKNOWN"})


class Unauthenticated(PermanentError):
    """The access token was refused (expired or revoked): a fresh one may help, once."""


class NotFound(PermanentError):
    """The resource (a local post, the location) is not there."""


def answer(status: int, headers: Mapping[str, str], text: str, action: str) -> dict[str, Any]:
    """The JSON object Google answered; raise the ChannelError its error (or status) means."""
    body = http.parsed(text, empty={})
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        raise classify(error, status, headers, action)
    if status >= 300 or not isinstance(body, dict):
        reason = f"Google answered HTTP {status} to {action} with no JSON: {http.snippet(text) or 'no body'}"
        if status == 429 or status >= 500 or status < 300:
            wait = http.retry_after(headers) if status == 429 else None
            raise TransientError(reason, retry_after=wait or (DEFAULT_WAIT if status == 429 else None))
        raise PermanentError(reason)
    return body


def classify(error: Mapping[str, Any], status: int, headers: Mapping[str, str], action: str) -> ChannelError:
    """The ChannelError a Google error object means, saying what an operator should do."""
    given = error.get("code")
    code = given if isinstance(given, int) and not isinstance(given, bool) else status
    state = http.snippet(str(error.get("status") or ""))  # one line, however Google's is written
    said = http.snippet(str(error.get("message") or "no message"))
    where = f"({code} {state}: {said}{_fields(error)})"
    if code == 429 or state == "RESOURCE_EXHAUSTED":
        wait = _retry_delay(error) or http.retry_after(headers) or DEFAULT_WAIT
        metadata = _info(error).get("metadata")
        quota = http.snippet(str(metadata.get("quota_metric"))) if isinstance(metadata, dict) and \
            metadata.get("quota_metric") else None
        return TransientError(f"Google's quota is spent {where}{f' [{quota}]' if quota else ''}; "
                              f"retry in {wait:g} s", retry_after=wait)
    if code == 401 or state == "UNAUTHENTICATED":
        return Unauthenticated(f"Google refused the access token to {action} {where}")
    if code == 403 or state == "PERMISSION_DENIED":
        reason = str(_info(error).get("reason") or "")
        if reason in ("SERVICE_DISABLED", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"):
            return PermanentError(f"Google refused to {action} {where}; enable the My Business APIs for the "
                                  "project and grant the scope https://www.googleapis.com/auth/business.manage")
        return PermanentError(f"Google refused to {action} {where}; the account needs to manage this location "
                              "(check account_id and location_id)")
    if code == 404 or state == "NOT_FOUND":
        return NotFound(f"Google does not know what it was asked to {action} {where}")
    if code >= 500 or state in _TRANSIENT:
        return TransientError(f"Google could not {action} {where}")
    return PermanentError(f"Google refused to {action} {where}")


def token_error(status: int, text: str, source: str) -> ChannelError:
    """The ChannelError a failed refresh at the OAuth token endpoint means."""
    body = http.parsed(text)
    if not isinstance(body, dict):
        reason = f"the OAuth token endpoint answered HTTP {status} with no JSON: {http.snippet(text) or 'no body'}"
        return TransientError(reason) if status >= 500 or status == 429 else PermanentError(reason)
    kind = http.snippet(str(body.get("error") or "no error"))
    said = http.snippet(str(body.get("error_description") or ""))
    where = f"({kind}{f': {said}' if said else ''})"
    if kind in ("invalid_grant", "unauthorized_client"):
        return PermanentError(f"Google refused the refresh token from {source} {where}; authorise statusd "
                              "again for the account and put the new refresh token there")
    if kind == "invalid_client":
        return PermanentError(f"Google does not know the OAuth client {where}; check client_id and client_secret")
    if status >= 500 or status == 429:
        return TransientError(f"the OAuth token endpoint failed {where}")
    return PermanentError(f"the OAuth token endpoint refused the refresh {where}")


def _details(error: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    details = error.get("details")
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _info(error: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((d for d in _details(error) if str(d.get("@type", "")).endswith("google.rpc.ErrorInfo")), {})


def _retry_delay(error: Mapping[str, Any]) -> float | None:
    for detail in _details(error):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DELAY.fullmatch(str(detail.get("retryDelay", "")))
            if match:
                return min(float(match[0][:-1]), 24 * 3600.0)
    return None


def _fields(error: Mapping[str, Any]) -> str:
    """The fields a google.rpc.BadRequest names, as " [field: description; …]"."""
    said = []
    for detail in _details(error):
        violations = detail.get("fieldViolations")
        if isinstance(violations, list):
            said += [f"{v.get('field')}: {v.get('description')}" for v in violations[:3] if isinstance(v, dict)]
    return f" [{http.snippet('; '.join(said))}]" if said else ""
