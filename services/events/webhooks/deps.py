"""Dependency aliases of the webhook routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.events.webhooks.dispatcher import WebhookDispatcher
from services.events.webhooks.settings import WebhookSettings
from services.events.webhooks.ssrf import UrlPolicy


async def url_policy(request: Request) -> UrlPolicy:
    policy: UrlPolicy = request.app.state.webhook_policy
    return policy


async def event_types(request: Request) -> frozenset[str]:
    """The types of the event catalogue endpoints may subscribe to."""
    known: frozenset[str] = request.app.state.webhook_event_types
    return known


async def webhook_settings(request: Request) -> WebhookSettings:
    settings: WebhookSettings = request.app.state.settings
    return settings


async def dispatcher(request: Request) -> WebhookDispatcher | None:
    """The process's dispatcher (None where ``EVENTS_WEBHOOK_ENABLED`` is off)."""
    found: WebhookDispatcher | None = getattr(request.app.state, "webhook_dispatcher", None)
    return found


UrlPolicyDep = Annotated[UrlPolicy, Depends(url_policy)]
EventTypesDep = Annotated[frozenset[str], Depends(event_types)]
WebhookSettingsDep = Annotated[WebhookSettings, Depends(webhook_settings)]
DispatcherDep = Annotated[WebhookDispatcher | None, Depends(dispatcher)]
