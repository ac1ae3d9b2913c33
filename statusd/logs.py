"""The one structlog configuration: readable on a terminal, JSON lines otherwise, never a secret.

Every event passes `redact_event`: values under credential-like keys are
dropped, and every string loses known secrets, credential-looking values and
URL paths (see `errors.redact`), and its control characters (a log line on a
terminal must not carry an escape sequence from a request or a file). The
standard library's loggers (aiohttp's access and error loggers, the client
libraries) are routed through the same pipeline, so their text is redacted too.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, MutableMapping
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

from statusd.errors import REDACTED, redact
from statusd.safetext import terminal

if TYPE_CHECKING:
    import logging

    import structlog

__all__ = ["LazyLogger", "configure", "configure_on_import", "redact_event"]

# The standard library's level numbers (logging.DEBUG…), without importing logging for them.
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
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


def _handler() -> logging.Handler:
    """A handler that hands a standard-library record to structlog: formatted, then redacted like every event."""
    global _TO_STRUCTLOG
    if _TO_STRUCTLOG is None:
        _TO_STRUCTLOG = _handler_class()
    return _TO_STRUCTLOG()


def _handler_class() -> type[logging.Handler]:
    import logging  # here: logging is imported when a record can first be made, not with this module

    class ToStructlog(logging.Handler):
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
            import structlog

            structlog.get_logger().log(record.levelno, name, **fields)

    return ToStructlog


_TO_STRUCTLOG: type[logging.Handler] | None = None


def route_standard_logging(level: int = WARNING) -> None:
    """Send aiohttp's and every other library's logging through structlog (and its redaction)."""
    import logging

    ours = _handler()
    root = logging.getLogger()
    # Ours replaces an earlier one of ours (configure may run twice); other handlers stay.
    root.handlers = [h for h in root.handlers if not isinstance(h, type(ours))] + [ours]
    root.setLevel(level)
    for name in ("aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.client"):
        library = logging.getLogger(name)
        library.handlers, library.propagate = [], True


def configure(json: bool | None = None, level: int = INFO, cache: bool = False) -> None:
    """Console rendering on a TTY, JSON under systemd or when output is piped.

    `cache` binds each module's logger once, for good (the daemon's hot paths); a
    one-shot command, or a test, leaves it off so a later configuration still counts.
    """
    import structlog

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
    route_standard_logging(max(level, WARNING))


def configure_on_import(level: int = WARNING) -> None:
    """`configure` the moment structlog is first imported (now, if it is): a command that logs
    nothing never pays for importing it (issue 15: `statusd set` starts fast)."""
    if "structlog" in sys.modules:
        configure(level=level)
        return
    global _THRESHOLD
    _THRESHOLD = level
    # A library's record imports structlog, configured; logging itself is routed when first imported
    # (`statusd set` imports it nowhere, issue 15).
    if "logging" in sys.modules:
        route_standard_logging(max(level, WARNING))
    else:
        sys.meta_path.insert(0, _OnImport("logging", lambda: route_standard_logging(max(level, WARNING))))
    sys.meta_path.insert(0, _OnImport("structlog", lambda: configure(level=level)))


class _OnImport:
    """A meta path finder that runs `then` right after `name` is first imported, before any use of it."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name, self.then = name, then

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)  # found by the finders after us, as it would have been
        if spec is None or spec.loader is None:
            return spec
        run, then = spec.loader.exec_module, self.then

        def exec_module(module: ModuleType) -> None:
            run(module)
            sys.modules[name] = module  # configure() imports it again: the module as it now is
            then()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


# Set by configure_on_import: events below it are dropped without importing structlog.
_THRESHOLD: int | None = None
_LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR, "exception": ERROR, "critical": CRITICAL}


def _dropped(*args: Any, **kwargs: Any) -> None:
    return None


class LazyLogger:
    """structlog's logger, imported at the first event that is kept: for the modules a quick command imports."""

    def __getattr__(self, name: str) -> Any:
        if _THRESHOLD is not None and "structlog" not in sys.modules and _LEVELS.get(name, 100) < _THRESHOLD:
            return _dropped  # what the configuration would filter out anyway
        import structlog

        return getattr(structlog.get_logger(), name)
