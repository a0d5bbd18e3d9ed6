"""Structured JSON logs (structlog), with the request id bound once per request.

Everything goes through one handler on the root logger whose formatter is
structlog's ``ProcessorFormatter``: the services' own structlog loggers and the
standard-library loggers of the libraries beneath them (uvicorn's startup,
shutdown and access lines, httpx, SQLAlchemy, Alembic) alike, so every line is
one JSON object, with the request id and service when a request is being served.
"""

from __future__ import annotations

import logging
import sys

import structlog

# Libraries that may have installed handlers of their own (uvicorn does when it is
# started with its default log config): their records go to the root handler instead.
LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore", "alembic")

_configured: tuple[str, bool] | None = None
_handler: logging.Handler | None = None


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Configure structlog and the standard library once per process."""
    global _configured, _handler
    if _configured == (level, json):
        return
    _configured = (level, json)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    # The console renderer's default traceback formatter is rich's, with every frame's
    # locals: seconds and tens of kB per error of a FastAPI stack, on the event loop,
    # where the standard library's text is cheap (figures in docs/benchmarks.md).
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.format_exc_info] if json else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)  # only ours: test runners add handlers of their own
    _handler = handler
    root.addHandler(handler)
    root.setLevel(numeric_level)
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
    # httpx logs every request it sends at INFO: the access line of the service called
    # already records it (same request id), so below DEBUG only its warnings are kept.
    quiet = numeric_level if numeric_level <= logging.DEBUG else max(numeric_level, logging.WARNING)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)
