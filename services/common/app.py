"""What every service's ``create_app`` has in common, built in one place."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import MetaData

from services.common.changefeed import outbox_table, publish_feed_metrics
from services.common.db import create_engine, create_sessionmaker, ping
from services.common.docs import add_docs
from services.common.errors import PayloadTooLarge, add_exception_handlers, render
from services.common.health import ReadinessCheck, health_router
from services.common.idempotency import IdempotentReplay, idempotency_table
from services.common.logging import configure_logging
from services.common.metrics import ServiceMetrics
from services.common.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from services.common.openapi import Enforcement, document_enforcement
from services.common.settings import ServiceSettings


def build_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    version: str,
    lifespan: object,
    routers: Sequence[APIRouter],
    readiness: Mapping[str, ReadinessCheck],
    readiness_any_of: Mapping[str, ReadinessCheck] | None = None,
    metrics_dependencies: Sequence[Any] = (),
    openapi_url: str | None = "/openapi.json",  # None: the caller serves the document (and its docs pages)
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """A FastAPI app with the platform's errors, middleware, health and metrics."""
    configure_logging(settings.log_level, settings.log_json)
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,  # type: ignore[arg-type]
        openapi_url=openapi_url,
        docs_url=None,  # served by add_docs, from local assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = ServiceMetrics(settings.service_name)
    add_exception_handlers(app)

    async def on_replay(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, IdempotentReplay)
        return exc.response

    app.add_exception_handler(IdempotentReplay, on_replay)

    async def too_large(scope, receive, send):  # type: ignore[no-untyped-def]
        request = Request(scope, receive)
        limit = scope.get("state", {}).get("body_limit", settings.max_body_bytes)
        response = render(request, PayloadTooLarge(f"The limit is {limit} bytes"))
        await response(scope, receive, send)

    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, problem_app=too_large, path_limits=body_limits
    )
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics, service=settings.service_name)
    if openapi_url:
        add_docs(app, openapi_url=openapi_url, title=title)
    app.include_router(health_router(readiness, readiness_any_of, metrics_dependencies))
    for router in routers:
        include_prepared(app, router)
    app.state.enforcement = Enforcement(
        page_size_default=settings.page_size_default,
        page_size_max=settings.page_size_max,
        max_body_bytes=settings.max_body_bytes,
        body_limits=dict(body_limits or {}),
    )
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # The document states the limits this app enforces (services.common.openapi).
        if app.openapi_schema is None:
            app.openapi_schema = document_enforcement(generate_openapi(), app.state.enforcement)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


_PREPARED_ROUTES = "_linkages_prepared_routes"


def include_prepared(app: FastAPI, router: APIRouter) -> None:
    """``app.include_router(router)``, with the included routes prepared once per router.

    FastAPI prepares an included router's routes (their dependencies, and a pydantic
    adapter for every parameter and response field) for each app that includes it, on the
    app's first request: about half a second for the registry's routes. Including
    ``router`` into a holder once and giving every app the holder's route entries shares
    that work between the apps one process builds (the tests build one per test). What
    ``include_router`` would also carry, a router's own startup handlers or lifespan, the
    platform's routers have none of; and the shared entries ignore
    ``app.dependency_overrides``, which the platform does not use.
    """
    assert not router.on_startup and not router.on_shutdown, "a router with event handlers: include it directly"
    routes = router.__dict__.get(_PREPARED_ROUTES)
    if routes is None:
        holder = APIRouter()
        holder.include_router(router)
        routes = router.__dict__[_PREPARED_ROUTES] = holder.routes
    app.router.routes.extend(routes)


def database_tables(metadata: MetaData, *, outbox: bool = True) -> None:
    """Add the shared tables (idempotency keys, outbox) to a service's metadata."""
    idempotency_table(metadata)
    if outbox:
        outbox_table(metadata)


@asynccontextmanager
async def open_database(app: FastAPI, settings: ServiceSettings, metadata: MetaData) -> AsyncIterator[None]:
    """Lifespan part: the engine and session maker on ``app.state``, closed after."""
    engine = create_engine(
        settings.effective_database_url, pool_size=settings.database_pool_size, echo=settings.database_echo
    )
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.read_sessionmaker = create_sessionmaker(engine, read_only=True)
    app.state.idempotency_table = metadata.tables["idempotency_keys"]
    app.state.outbox_table = metadata.tables.get("outbox")
    if app.state.outbox_table is not None:
        publish_feed_metrics(app)
    try:
        yield
    finally:
        await engine.dispose()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Lifespan part: what start-up built (modules, code tables, routes) is left out of the
    garbage collector's full passes until shutdown.

    A full pass walks every object the collector tracks, and a start-up heap never turns
    to garbage: walking it again and again took a third of the duplicate check's CPU
    (docs/benchmarks.md). ``gc.freeze`` is constant time; ``gc.unfreeze`` at shutdown
    gives the objects back to the collector, as tests build many apps in one process.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Around one batch of work that builds many short-lived objects (a page of the duplicate
    check): the garbage collector does not run until it ends.

    The batch's objects (profiles, rows, blocks) die with it by reference counting, but while
    they live every few hundred allocations start a pass that walks them again, and the
    ones that outlive a few passes are promoted and walked by the full passes too: about a
    third of the duplicate check's CPU (docs/benchmarks.md). Paused, the collector's next
    pass after the batch finds only what survived it. Process-wide while it lasts, so for
    bounded batches only; cyclic garbage made meanwhile is collected after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def database_ready(app: FastAPI) -> None:
    await ping(app.state.engine)
