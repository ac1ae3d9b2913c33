"""The one structlog configuration: readable on a terminal, JSON lines otherwise, never a secret.

Every event passes `redact_event`: values under credential-like keys are
dropped, and every string loses known secrets, credential-looking values and
URL paths (see `errors.redact`), and its control characters (a log line on a
terminal must not carry an escape sequence from a request or a file). The
standard library's loggers (aiohttp's access and error loggers, the client
libraries) are routed through the same pipeline, so their text is redacted too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from statusd.errors import REDACTED, redact
from statusd.safetext import terminal

__all__ = ["configure", "redact_event"]

_SECRET_KEYS = ("token", "secret", "password", "authorization", "cookie", "api_key", "apikey", "credential_value")
# Standard-library loggers: one event name per source, the logger's name in a field.
_EVENTS = {"aiohttp.access": "http_access", "aiohttp.server": "http_server_error",
           "aiohttp.web": "http_server_error", "aiohttp.client": "http_client_log"}


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return terminal(redact(value))
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: REDACTED if _secret_key(k) else _scrub(v) for k, v in value.items()}
    return value


def _secret_key(key: object) -> bool:
    name = str(key).lower()
    return any(word in name for word in _SECRET_KEYS) and not name.endswith(("_source", "_ref", "_set"))


def redact_event(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The structlog processor: no secret, credential-looking value or control character survives."""
    for key, value in list(event.items()):
        event[key] = REDACTED if _secret_key(key) else _scrub(value)
    return event


class _ToStructlog(logging.Handler):
    """Hands a standard-library log record to structlog: formatted, then redacted like every event."""

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {"logger": record.name}
        try:
            fields["message"] = record.getMessage()
        except (TypeError, ValueError):
            fields["message"] = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            # The kind and text of the error; a traceback would quote request lines and locals.
            fields["error"] = f"{type(error).__name__}: {error}"
        name = _EVENTS.get(record.name, "library_log")
        structlog.get_logger().log(record.levelno, name, **fields)


def route_standard_logging(level: int = logging.WARNING) -> None:
    """Send aiohttp's and every other library's logging through structlog (and its redaction)."""
    root = logging.getLogger()
    # Ours replaces an earlier one of ours (configure may run twice); other handlers stay.
    root.handlers = [h for h in root.handlers if not isinstance(h, _ToStructlog)] + [_ToStructlog()]
    root.setLevel(level)
    for name in ("aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.client"):
        library = logging.getLogger(name)
        library.handlers, library.propagate = [], True


def configure(json: bool | None = None, level: int = logging.INFO, cache: bool = False) -> None:
    """Console rendering on a TTY, JSON under systemd or when output is piped.

    `cache` binds each module's logger once, for good (the daemon's hot paths); a
    one-shot command, or a test, leaves it off so a later configuration still counts.
    """
    if json is None:
        json = not sys.stderr.isatty() or "JOURNAL_STREAM" in os.environ
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=cache,
    )
    route_standard_logging(max(level, logging.WARNING))
