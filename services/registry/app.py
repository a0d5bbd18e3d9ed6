"""The registry service: system of record for programmes, clusters, firms and more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.common.app import build_service_app, database_ready, open_database
from services.common.changefeed import change_feed_router
from services.common.codes import load_code_tables
from services.registry.certifications.router import router as certification_router
from services.registry.duplicates.router import router as duplicates_router
from services.registry.imports.router import router as imports_router
from services.registry.imports.runner import ImportRunner
from services.registry.records import resource_router
from services.registry.resources import RESOURCES
from services.registry.settings import RegistrySettings
from services.registry.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION = "0.1.0"


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_database(app, settings, metadata):
            # Validating a firm's first codes would otherwise load the tables inside a
            # request, under the gateway's deadline (a 504 on a busy machine).
            await asyncio.to_thread(load_code_tables)
            app.state.imports = ImportRunner(app)
            await app.state.imports.resume()  # jobs a stop or crash interrupted continue
            try:
                yield
            finally:
                await app.state.imports.stop()

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
            *(resource_router(spec) for spec in RESOURCES),
            certification_router,
            imports_router,
            duplicates_router,
            change_feed_router("registry records"),
        ],
        readiness={"database": database_ready},
        body_limits={"/v1/imports": settings.import_max_bytes},  # uploads: their own limit
    )
