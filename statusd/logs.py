"""The one structlog configuration: readable on a terminal, JSON lines otherwise."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(json: bool | None = None, level: int = logging.INFO) -> None:
    """Console rendering on a TTY, JSON under systemd or when output is piped."""
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
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
