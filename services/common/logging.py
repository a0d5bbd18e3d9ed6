"""Structured JSON logs (structlog), with the request id bound once per request."""

from __future__ import annotations

import logging
import sys

import structlog

_configured: tuple[str, bool] | None = None


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Configure structlog and the standard library once per process."""
    global _configured
    if _configured == (level, json):
        return
    _configured = (level, json)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
