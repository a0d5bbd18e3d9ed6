"""PRE-MERGE HARNESS (replaced by the events service's create_app at integration)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.app import build_service_app, database_ready, open_database
from services.common.ids import new_id
from services.common.principal import Principal
from services.events.tables import FEED_CURSORS, Event, metadata
from services.events.webhooks import WebhookSettings, dispatcher_ready, endpoint_disabled, router, run_webhooks
from services.events.webhooks.tables import WebhookEndpoint

EVENT_TYPES = ["firm.created", "firm.updated", "cluster.created", "webhook_endpoint.disabled"]


class HarnessSettings(WebhookSettings):
    service_name: str = "events"


def can_read(principal: Principal, row: Any) -> bool:
    return principal.is_admin or (principal.agency_id is not None and row.agency_id == principal.agency_id)


async def write_event(session: AsyncSession, type_: str, data: dict[str, Any], agency_id: str | None) -> str:
    event_id = new_id("evt")
    await session.execute(
        insert(Event.__table__).values(  # type: ignore[arg-type]
            id=event_id, type=type_, created_at=datetime.now(UTC), data=data, agency_id=agency_id
        )
    )
    return event_id


async def on_disabled(session: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
    data = {"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason}
    await write_event(session, "webhook_endpoint.disabled", data, endpoint.agency_id)


def create_app(settings: HarnessSettings) -> FastAPI:
    endpoint_disabled.connect(on_disabled)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(open_database(app, settings, metadata))
            await stack.enter_async_context(
                run_webhooks(
                    app,
                    settings,
                    events=Event.__table__,  # type: ignore[arg-type]
                    cursors=FEED_CURSORS,
                    can_read=can_read,
                    event_types=EVENT_TYPES,
                )
            )
            yield

    return build_service_app(
        settings,
        title="events",
        description="",
        version="0",
        lifespan=lifespan,
        routers=[router],
        readiness={"database": database_ready, "webhooks": dispatcher_ready},
    )


async def fresh_database(backend: Any) -> str:
    from sqlalchemy.ext.asyncio import create_async_engine

    url = str(await backend.empty())
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    await engine.dispose()
    return url
