"""Webhooks to the Standard Webhooks 1.0 specification: endpoints, a durable queue, delivery.

The events service wires this package in ``services/events/app.py``: ``router``
serves ``/v1/webhook-endpoints``, ``background`` (a lifespan part) starts the
dispatcher, and ``connect_hooks`` makes a disabled endpoint a
``webhook_endpoint.disabled`` event its owner reads (and may receive elsewhere).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.changefeed import lock_sequence
from services.common.ids import new_id
from services.events.catalogue import BY_NAME
from services.events.tables import EVENTS, FEED_CURSORS
from services.events.visibility import Audience, can_read
from services.events.webhooks.dispatcher import WebhookDispatcher, create_webhook_client
from services.events.webhooks.metrics import webhook_metrics
from services.events.webhooks.queue import CanRead, endpoint_disabled
from services.events.webhooks.retention import DeliveryLogRetention
from services.events.webhooks.router import router
from services.events.webhooks.settings import WebhookSettings
from services.events.webhooks.ssrf import UrlPolicy
from services.events.webhooks.tables import WebhookEndpoint

__all__ = ["WebhookSettings", "background", "connect_hooks", "dispatcher_ready", "router", "run_webhooks"]

DISABLED_EVENT = "webhook_endpoint.disabled"


@asynccontextmanager
async def run_webhooks(
    app: FastAPI,
    settings: WebhookSettings,
    *,
    events: Table,
    cursors: Table,
    can_read: CanRead,
    event_types: Collection[str],
) -> AsyncIterator[None]:
    """Lifespan part: the URL policy, the catalogue's types, and (when enabled) the dispatcher."""
    policy = UrlPolicy.from_entries(settings.webhook_allowed_hosts)
    app.state.webhook_policy = policy
    app.state.webhook_event_types = frozenset(event_types)
    app.state.webhook_dispatcher = None
    if not settings.webhook_enabled:
        yield
        return
    client = create_webhook_client(settings, policy)
    dispatcher = WebhookDispatcher(
        settings=settings,
        sessionmaker=app.state.sessionmaker,
        client=client,
        events=events,
        cursors=cursors,
        can_read=can_read,
        metrics=webhook_metrics(app),
    )
    app.state.webhook_dispatcher = dispatcher
    retention = DeliveryLogRetention(app.state.sessionmaker, settings.webhook_log_retention_days)
    dispatcher.start()
    retention.start()
    try:
        yield
    finally:
        await retention.stop()
        await dispatcher.stop()
        await client.aclose()


async def dispatcher_ready(app: FastAPI) -> None:
    """Readiness: the dispatcher's last round reached the database."""
    dispatcher: WebhookDispatcher | None = app.state.webhook_dispatcher
    if dispatcher is not None and dispatcher.last_error is not None:
        raise RuntimeError(f"webhook dispatcher failing: {dispatcher.last_error}")


def background(app: FastAPI) -> AbstractAsyncContextManager[None]:
    """The events service's lifespan part: webhooks over its events table and catalogue."""
    return run_webhooks(
        app, app.state.settings, events=EVENTS, cursors=FEED_CURSORS, can_read=can_read, event_types=BY_NAME
    )


async def emit_disabled(session: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
    """A ``webhook_endpoint.disabled`` event for the endpoint's owner, in the disabling transaction."""
    await lock_sequence(session)  # as every writer of the events log: seq in commit order
    await session.execute(
        insert(EVENTS).values(
            id=new_id("evt"),
            type=DISABLED_EVENT,
            created_at=datetime.now(UTC),
            subject=endpoint.id,
            source="events",
            source_seq=0,
            data={"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason},
            audience=Audience.owner.value,
            owner=endpoint.owner,
            agency_id=endpoint.agency_id,
        )
    )


def connect_hooks() -> None:
    endpoint_disabled.connect(emit_disabled)
