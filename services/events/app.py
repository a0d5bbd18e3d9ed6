"""The events service: public events from the registry's and matching's change feeds.

It follows both feeds (``services.events.consumer``), stores each change's public
events with the tenancy that decides who reads them (``services.events.visibility``)
and serves them at ``GET /v1/events``. What else runs in this service is wired here,
in three lists: ``ROUTERS`` (its APIs), ``BACKGROUND`` (work that runs while the
service runs, e.g. delivering webhooks) and ``connect_hooks`` (handlers of the events
log's hooks, ``services.events.hooks``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI

from services.common.app import build_service_app, database_ready, open_database
from services.common.changefeed import FeedFollower, feed_metrics, feed_ready
from services.common.http import create_http_client
from services.common.principal import service_headers
from services.common.version import VERSION
from services.events.consumer import EventConsumer
from services.events.mapping import MAPPERS
from services.events.router import router as events_router
from services.events.settings import EventsSettings
from services.events.tables import metadata
from services.events.webhooks import background as webhooks_background
from services.events.webhooks import connect_hooks as connect_webhook_hooks
from services.events.webhooks import dispatcher_ready
from services.events.webhooks import router as webhooks_router

MIGRATIONS = Path(__file__).parent / "migrations"
FEEDS = ("registry", "matching")

ROUTERS: list[APIRouter] = [events_router, webhooks_router]
# Each is entered in the lifespan once the database is open and the feeds are followed
# (``app.state``: settings, sessionmaker, read_sessionmaker, followers) and exited at shutdown.
Background = Callable[[FastAPI], AbstractAsyncContextManager[None]]
BACKGROUND: list[Background] = [webhooks_background]


def connect_hooks() -> None:
    """Connect other domains' handlers to the events log's hooks (``services/events/hooks.py``)."""
    connect_webhook_hooks()


def create_app(
    settings: EventsSettings | None = None, *, http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    """``http_mounts`` lets tests route the registry's and matching's base URLs to in-process apps."""
    settings = settings or EventsSettings()
    connect_hooks()

    def service_principal() -> dict[str, str]:
        return service_headers("events", settings.principal_secret.get_secret_value())

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
            app.state.http_client = client
            app.state.followers = {}
            urls = {"registry": settings.registry_url, "matching": settings.matching_url}
            for name in FEEDS:
                follower = FeedFollower(
                    name=name,
                    client=client,
                    url=urls[name].rstrip("/") + "/v1/changes",
                    principal_header=service_principal,
                    consumer=EventConsumer(name, app.state.sessionmaker, app.state.read_sessionmaker),
                    batch_size=settings.feed_batch_size,
                    wait_seconds=settings.feed_wait_seconds,
                    metrics=feed_metrics(app),
                    entities=MAPPERS[name].keys(),  # the others make no event: not fetched at all
                )
                app.state.followers[name] = follower
                follower.start()
                stack.push_async_callback(follower.stop)  # each page is stored with its cursor, atomically
            for background in BACKGROUND:
                await stack.enter_async_context(background(app))
            yield

    return build_service_app(
        settings,
        title="Linkages events",
        description="Public events of the registry's and matching's records, in order, each readable by the keys "
        "that may read its record: `GET /v1/events` and the event catalogue.",
        version=VERSION,
        lifespan=lifespan,
        routers=ROUTERS,
        readiness={
            "database": database_ready,
            "registry_feed": feed_ready("registry"),
            "matching_feed": feed_ready("matching"),
            "webhooks": dispatcher_ready,
        },
    )
