"""The registry service: system of record for programmes, clusters, firms and more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import cache
from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI

from services.common.app import build_service_app, database_ready, frozen_heap, open_database
from services.common.changefeed import FeedFollower, change_feed_router, feed_metrics, feed_ready, local_feed
from services.common.codes import load_code_tables
from services.common.http import create_http_client
from services.common.principal import service_headers
from services.common.version import VERSION
from services.registry.certifications.router import router as certification_router
from services.registry.codes.router import router as codes_router
from services.registry.duplicates.consumer import DuplicateCheck, publish_lag_metric
from services.registry.duplicates.router import router as duplicates_router
from services.registry.duplicates.service import Partition
from services.registry.firms.hooks import firms_written
from services.registry.firms.performance import ENTITY as OBSERVED_PERFORMANCE
from services.registry.firms.performance import ObservedPerformanceConsumer
from services.registry.firms.search import on_firms_written as index_search_words
from services.registry.imports.router import router as imports_router
from services.registry.imports.runner import ImportRunner
from services.registry.records import resource_router
from services.registry.resources import RESOURCES
from services.registry.settings import RegistrySettings
from services.registry.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def connect_hooks() -> None:
    """Connect the domains' handlers to each other's hooks (``services/common/hooks.py``).

    The registry's one wiring: the app factory runs it, and so does any writer that
    works without an app (the demo loader), so every write path has the same effects.
    """
    firms_written.connect(index_search_words)  # firms written -> the words typo search looks up


@cache
def resource_routers() -> tuple[APIRouter, ...]:
    """The resources' routers, built once per process (they hold no settings; every app
    shares them and their prepared routes, ``services.common.app.include_prepared``)."""
    return tuple(resource_router(spec) for spec in RESOURCES)


def _service_principal(settings: RegistrySettings) -> Callable[[], dict[str, str]]:
    """The principal header the registry sends as a service (to the feeds it reads over HTTP)."""
    return lambda: service_headers("registry", settings.principal_secret.get_secret_value())


@asynccontextmanager
async def _duplicate_check(app: FastAPI, settings: RegistrySettings) -> AsyncIterator[None]:
    """Run this process's partition of the duplicate check: a follower of the registry's own
    feed, read in process (``local_feed``) unless ``duplicates_feed_url`` names one."""
    client = None
    if settings.duplicates_feed_url:
        client = create_http_client(
            connect_timeout=settings.http_connect_timeout, read_timeout=settings.http_read_timeout
        )
    partition = Partition(settings.duplicates_partition, settings.duplicates_partitions)
    follower = FeedFollower(
        name=partition.feed,
        client=client,
        url=settings.duplicates_feed_url.rstrip("/") + "/v1/changes" if client else None,
        principal_header=_service_principal(settings) if client else None,
        fetch=None if client else local_feed(app),  # every change: its cursor (and lag) pass them all
        consumer=DuplicateCheck(app.state.sessionmaker, partition),
        batch_size=settings.duplicates_batch_changes,
        wait_seconds=settings.feed_wait_seconds,
        metrics=feed_metrics(app),
    )
    app.state.duplicate_check = follower
    app.state.followers = {partition.feed: follower}  # feed_ready's
    follower.start()
    try:
        yield
    finally:
        await follower.stop()
        if client is not None:
            await client.aclose()


def create_app(
    settings: RegistrySettings | None = None, *, http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    """``http_mounts`` lets tests route matching's base URL to an in-process app."""
    settings = settings or RegistrySettings()
    connect_hooks()
    service_principal = _service_principal(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(open_database(app, settings, metadata))
            # Validating a firm's first codes would otherwise load the tables inside a
            # request, under the gateway's deadline (a 504 on a busy machine).
            await asyncio.to_thread(load_code_tables)
            stack.enter_context(frozen_heap())
            publish_lag_metric(app)
            if settings.duplicates_check:
                await stack.enter_async_context(_duplicate_check(app, settings))
            app.state.imports = ImportRunner(app)
            await app.state.imports.resume()  # jobs a stop or crash interrupted continue
            stack.push_async_callback(app.state.imports.stop)
            if settings.matching_url:
                client = create_http_client(
                    connect_timeout=settings.http_connect_timeout,
                    read_timeout=settings.http_read_timeout,
                    mounts=http_mounts,
                )
                stack.push_async_callback(client.aclose)
                follower = FeedFollower(
                    name="matching",
                    client=client,
                    url=settings.matching_url.rstrip("/") + "/v1/changes",
                    principal_header=service_principal,
                    consumer=ObservedPerformanceConsumer(app.state.sessionmaker),
                    entities=(OBSERVED_PERFORMANCE,),  # not the shortlists, requests, ... it would ignore
                    wait_seconds=settings.feed_wait_seconds,
                    metrics=feed_metrics(app),
                )
                app.state.matching_follower = follower
                follower.start()
                stack.push_async_callback(follower.stop)
            yield

    return build_service_app(
        settings,
        title="Linkages registry",
        description=(
            "System of record of cluster development programmes: agencies, programmes, "
            "clusters, firms, institutions, brokers, networks and activities."
        ),
        version=VERSION,
        lifespan=lifespan,
        routers=[
            *resource_routers(),
            certification_router,
            codes_router,
            imports_router,
            duplicates_router,
            change_feed_router("registry records"),
        ],
        readiness={"database": database_ready},
        body_limits={"/v1/imports": settings.import_max_bytes},  # uploads: their own limit
    )


def create_duplicates_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The duplicate check alone, in a process of its own: ``python -m services.registry
    duplicates``. It checks this process's partition (``REGISTRY_DUPLICATES_PARTITION`` of
    ``_PARTITIONS``) from the registry's database and serves only health, readiness and
    metrics, so a large page of detection never holds up the API's requests. The API's
    processes then run with ``REGISTRY_DUPLICATES_CHECK=false``; it never migrates."""
    settings = settings or RegistrySettings()
    partition = Partition(settings.duplicates_partition, settings.duplicates_partitions)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_database(app, settings, metadata):
            publish_lag_metric(app)
            with frozen_heap():
                async with _duplicate_check(app, settings):
                    yield

    return build_service_app(
        settings,
        title="Linkages registry: duplicate check",
        description="The registry's duplicate check in a process of its own: health, readiness and metrics only.",
        version=VERSION,
        lifespan=lifespan,
        routers=[],
        readiness={"database": database_ready, "duplicate_check": feed_ready(partition.feed)},
        openapi_url=None,
    )
