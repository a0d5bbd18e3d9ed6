"""The matching service: exact, explained supplier shortlists over the live catalogue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI

from services.common.app import build_service_app, database_ready, open_database
from services.common.changefeed import FeedFollower, change_feed_router, feed_metrics
from services.common.groupcommit import GroupCommit
from services.common.http import create_http_client
from services.common.principal import Role, require_roles, service_headers
from services.common.version import VERSION
from services.matching.alerts.router import router as alerts_router
from services.matching.alerts.service import CertificateSweeper, StandardsWatcher
from services.matching.catalogue.catalogue import Catalogue
from services.matching.catalogue.lifecycle import CatalogueLifecycle, snapshot_folder, store_path
from services.matching.catalogue.store import CatalogueStore
from services.matching.deps import CatalogueDep
from services.matching.linkages.router import router as linkages_router
from services.matching.requests.access import BrokerDirectory
from services.matching.requests.deadlines import DeadlineSweeper
from services.matching.requests.router import router as requests_router
from services.matching.scorecards.router import router as scorecards_router
from services.matching.settings import MatchingSettings
from services.matching.shortlists.router import router as shortlists_router
from services.matching.shortlists.service import shortlist_inserts
from services.matching.standards.router import router as standards_router
from services.matching.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"

operations = APIRouter(tags=["operations"])


@operations.get(
    "/v1/catalogue",
    operation_id="read_catalogue_stats",
    summary="The catalogue's version, size and memory",
    dependencies=[Depends(require_roles(Role.admin, Role.service, Role.viewer))],
)
async def catalogue_stats(catalogue: CatalogueDep) -> dict[str, Any]:
    return catalogue.stats()


async def catalogue_ready(app: FastAPI) -> None:
    catalogue: Catalogue = app.state.catalogue
    if not catalogue.loaded.is_set():
        follower: FeedFollower = app.state.follower
        raise RuntimeError(f"catalogue loading (feed at {follower.cursor}; last error: {follower.last_error})")


def create_app(
    settings: MatchingSettings | None = None, *, http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    """``http_mounts`` lets tests route the registry's base URL to an in-process app."""
    settings = settings or MatchingSettings()

    def service_principal() -> dict[str, str]:
        return service_headers("matching", settings.principal_secret.get_secret_value())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(open_database(app, settings, metadata))
            shortlist_writes = GroupCommit(app.state.engine, shortlist_inserts)
            shortlist_writes.start()
            stack.push_async_callback(shortlist_writes.stop)  # commits what is queued before the database closes
            app.state.shortlist_writes = shortlist_writes
            store = CatalogueStore(store_path(settings.data_dir))
            stack.callback(store.close)
            app.state.supplier_store = store
            watcher = StandardsWatcher(app.state.sessionmaker, lambda: app.state.clock())
            app.state.standards_watcher = watcher
            lifecycle = CatalogueLifecycle(
                store,
                snapshots=snapshot_folder(settings.data_dir),
                delta_limit=settings.delta_limit,
                watcher=watcher,
                figures_bytes=settings.consortium_figures_bytes,
            )
            app.state.lifecycle = lifecycle
            app.state.catalogue = lifecycle.catalogue
            client = create_http_client(
                connect_timeout=settings.http_connect_timeout,
                read_timeout=settings.http_read_timeout,
                mounts=http_mounts,
            )
            stack.push_async_callback(client.aclose)
            app.state.brokers = BrokerDirectory(client, settings.registry_url, service_principal)
            deadlines = DeadlineSweeper(
                app.state.sessionmaker, lambda: app.state.clock(), settings.deadline_sweep_seconds
            )
            app.state.deadlines = deadlines
            deadlines.start()
            stack.push_async_callback(deadlines.stop)
            certificates = CertificateSweeper(
                app.state.sessionmaker,
                store,
                lambda: app.state.clock(),
                days=settings.certificate_expiry_days,
                interval_seconds=settings.certificate_sweep_seconds,
            )
            app.state.certificates = certificates
            certificates.start()
            stack.push_async_callback(certificates.stop)
            follower = FeedFollower(
                name="registry",
                client=client,
                url=settings.registry_url.rstrip("/") + "/v1/changes",
                principal_header=service_principal,
                consumer=lifecycle,
                on_caught_up=lifecycle.caught_up,
                batch_size=settings.feed_batch_size,
                wait_seconds=settings.feed_wait_seconds,
                metrics=feed_metrics(app),
            )
            app.state.follower = follower
            follower.start()
            stack.push_async_callback(follower.stop)  # cursor and records are stored per page, atomically
            yield

    app = build_service_app(
        settings,
        title="Linkages matching",
        description="Supplier shortlists for lead firms: exact, explained, with development candidates.",
        version=VERSION,
        lifespan=lifespan,
        routers=[
            shortlists_router,
            standards_router,
            alerts_router,
            linkages_router,
            requests_router,
            scorecards_router,
            operations,
            change_feed_router(
                "buyer standards and their alerts, shortlists, requests, linkages, scorecards, supplier performance, "
                "standards matches and expiring certificates"
            ),
        ],
        readiness={"database": database_ready, "catalogue": catalogue_ready},
    )
    app.state.clock = lambda: datetime.now(UTC)  # request deadlines are judged by it
    return app
