"""Webhooks to the Standard Webhooks 1.0 specification: endpoints, a durable queue, delivery.

The events service wires this package in its ``create_app``: ``router`` serves
``/v1/webhook-endpoints``, ``run_webhooks`` (a lifespan part) starts the dispatcher,
and ``endpoint_disabled`` is the hook its event writer connects to, so that a
disabled endpoint's owner hears of it as a ``webhook_endpoint.disabled`` event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Table

from services.events.webhooks.dispatcher import WebhookDispatcher, create_webhook_client
from services.events.webhooks.queue import CanRead, endpoint_disabled
from services.events.webhooks.router import router
from services.events.webhooks.settings import WebhookSettings
from services.events.webhooks.ssrf import UrlPolicy

__all__ = ["WebhookSettings", "dispatcher_ready", "endpoint_disabled", "router", "run_webhooks"]


@asynccontextmanager
async def run_webhooks(
    app: FastAPI,
    settings: WebhookSettings,
    *,
    events: Table,
    cursors: Table,
    can_read: CanRead,
    event_types: Collection[str],
) -> AsyncIterator[WebhookDispatcher | None]:
    """Lifespan part: the URL policy, the catalogue's types, and (when enabled) the dispatcher."""
    policy = UrlPolicy.from_entries(settings.webhook_allowed_hosts)
    app.state.webhook_policy = policy
    app.state.webhook_event_types = frozenset(event_types)
    app.state.webhook_dispatcher = None
    if not settings.webhook_enabled:
        yield None
        return
    client = create_webhook_client(settings, policy)
    dispatcher = WebhookDispatcher(
        settings=settings,
        sessionmaker=app.state.sessionmaker,
        client=client,
        events=events,
        cursors=cursors,
        can_read=can_read,
    )
    app.state.webhook_dispatcher = dispatcher
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()
        await client.aclose()


async def dispatcher_ready(app: FastAPI) -> None:
    """Readiness: the dispatcher's last round reached the database."""
    dispatcher: WebhookDispatcher | None = app.state.webhook_dispatcher
    if dispatcher is not None and dispatcher.last_error is not None:
        raise RuntimeError(f"webhook dispatcher failing: {dispatcher.last_error}")
