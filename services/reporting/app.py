"""The reporting service: programme indicators from a read model of the registry and matching feeds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.common.app import build_service_app, database_ready, open_database
from services.common.changefeed import FeedFollower, feed_metrics, feed_ready
from services.common.directwrite import DirectWriter
from services.common.http import create_http_client
from services.common.principal import service_headers
from services.common.version import VERSION
from services.reporting.charts.router import router as charts_router
from services.reporting.dashboard.router import router as dashboard_router
from services.reporting.exports.router import router as exports_router
from services.reporting.indicators.router import router as indicators_router
from services.reporting.readmodel.consumer import ReadModelConsumer
from services.reporting.readmodel.records import MATCHING_ENTITIES, REGISTRY_ENTITIES
from services.reporting.results.router import router as results_router
from services.reporting.settings import ReportingSettings
from services.reporting.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: ReportingSettings | None = None, *, http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    """``http_mounts`` lets tests route the registry's and matching's base URLs to in-process apps."""
    settings = settings or ReportingSettings()

    def service_principal() -> dict[str, str]:
        return service_headers("reporting", settings.principal_secret.get_secret_value())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(open_database(app, settings, metadata))
            client = create_http_client(
                connect_timeout=settings.http_connect_timeout,
                read_timeout=settings.http_read_timeout,
                mounts=http_mounts,
            )
            stack.push_async_callback(client.aclose)
            app.state.followers = {}
            for name, url, entities in (
                ("registry", settings.registry_url, REGISTRY_ENTITIES),
                ("matching", settings.matching_url, MATCHING_ENTITIES),
            ):
                writer = DirectWriter(app.state.engine)
                stack.push_async_callback(writer.close)  # after the follower has stopped
                consumer = ReadModelConsumer(name, app.state.read_sessionmaker, writer, entities)
                follower = FeedFollower(
                    name=name,
                    client=client,
                    url=url.rstrip("/") + "/v1/changes",
                    principal_header=service_principal,
                    consumer=consumer,
                    batch_size=settings.feed_batch_size,
                    wait_seconds=settings.feed_wait_seconds,
                    metrics=feed_metrics(app),
                    entities=entities.keys(),  # the consumer ignores the others: not fetched at all
                )
                app.state.followers[name] = follower
                follower.start()
                stack.push_async_callback(follower.stop)  # each page is applied with its cursor, atomically
            yield

    return build_service_app(
        settings,
        title="Linkages reporting",
        description="Programme indicators (M&E) computed on a read model of the registry and matching feeds: "
        "JSON, CSV, SVG/PNG charts and an HTML dashboard; programme results frameworks (baselines, targets) "
        "and the results against them.",
        version=VERSION,
        lifespan=lifespan,
        routers=[indicators_router, results_router, charts_router, exports_router, dashboard_router],
        readiness={
            "database": database_ready,
            "registry_feed": feed_ready("registry"),
            "matching_feed": feed_ready("matching"),
        },
    )
