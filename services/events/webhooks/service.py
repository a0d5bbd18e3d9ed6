"""Webhook endpoints as the API changes them: checks, secrets, deliveries and their log."""

from __future__ import annotations

import fnmatch
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.common.errors import Conflict, FieldError, NotFound, ValidationFailed, field_error, invalid_field
from services.common.ids import new_id
from services.events.webhooks.queue import event_body, new_delivery
from services.events.webhooks.schemas import AttemptPublic, DeliveryPublic, EndpointPublic, EndpointWithSecret
from services.events.webhooks.signing import new_secret
from services.events.webhooks.ssrf import UnsafeUrl, UrlPolicy
from services.events.webhooks.tables import PENDING, WebhookAttempt, WebhookDelivery, WebhookEndpoint

TEST_EVENT_TYPE = "webhook.test"


def check_event_types(patterns: list[str], known: Collection[str]) -> list[str]:
    """The patterns, each a catalogue type, a family (``firm.*``) or ``*``; 422 naming each unknown one."""
    errors: list[FieldError] = []
    for i, pattern in enumerate(patterns):
        if not any(fnmatch.fnmatchcase(known_type, pattern) for known_type in known):
            errors.append(
                field_error(
                    f"event_types.{i}", f"'{pattern}' names no type of the event catalogue", "unknown_event_type"
                )
            )
    if errors:
        raise ValidationFailed("Unknown event types: see GET /v1/event-types or the docs' catalogue", errors=errors)
    return list(dict.fromkeys(patterns))


async def check_url(policy: UrlPolicy, url: str) -> str:
    """The URL, or a 422 naming ``url`` when the SSRF guard refuses it."""
    try:
        await policy.check(url)
    except UnsafeUrl as exc:
        raise invalid_field("url", str(exc), "forbidden_url") from None
    return url


def public(endpoint: WebhookEndpoint) -> EndpointPublic:
    return EndpointPublic.model_validate(endpoint, from_attributes=True)


def with_secret(endpoint: WebhookEndpoint) -> EndpointWithSecret:
    return EndpointWithSecret.model_validate(endpoint, from_attributes=True)


def rotate(endpoint: WebhookEndpoint, *, grace_seconds: int, secret_bytes: int) -> None:
    """A new secret; the current one keeps signing for ``grace_seconds`` (0: never again).

    A secret already rotated out is dropped, so at most two ever sign.
    """
    now = datetime.now(UTC)
    endpoint.previous_secret = endpoint.secret if grace_seconds > 0 else None
    endpoint.previous_secret_expires_at = now + timedelta(seconds=grace_seconds) if grace_seconds > 0 else None
    endpoint.secret = new_secret(secret_bytes)
    endpoint.version += 1
    endpoint.updated_at = now


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """The endpoint, its queued deliveries and their log."""
    for table in (WebhookAttempt, WebhookDelivery):
        await session.execute(delete(table).where(col(table.endpoint_id) == endpoint.id))
    await session.delete(endpoint)


def queue_test_event(session: AsyncSession, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``webhook.test`` delivery to ``endpoint``, whatever types it receives."""
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled: enable it to send a test event")
    now = datetime.now(UTC)
    event_id = new_id("evt")
    data = {"endpoint_id": endpoint.id, "message": "A test event sent on request"}
    delivery = new_delivery(endpoint.id, event_id, TEST_EVENT_TYPE, event_body(TEST_EVENT_TYPE, now, data), now)
    session.add(delivery)
    return delivery


def requeue(delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> None:
    """Send a delivery again now, with the same webhook-id and body, and a fresh retry schedule."""
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled: enable it to replay deliveries")
    now = datetime.now(UTC)
    delivery.status = PENDING
    delivery.failures = 0
    delivery.next_attempt_at = now
    delivery.updated_at = now


async def find_delivery(session: AsyncSession, endpoint: WebhookEndpoint, delivery_id: str) -> WebhookDelivery:
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound(f"No delivery with id '{delivery_id}' for this endpoint")
    return delivery


async def delivery_views(session: AsyncSession, deliveries: list[WebhookDelivery]) -> list[DeliveryPublic]:
    """Deliveries with their attempts, oldest attempt first."""
    ids = [d.id for d in deliveries]
    attempts: dict[str, list[AttemptPublic]] = {i: [] for i in ids}
    if ids:
        rows = await session.scalars(
            select(WebhookAttempt)
            .where(col(WebhookAttempt.delivery_id).in_(ids))
            .order_by(col(WebhookAttempt.attempted_at), col(WebhookAttempt.id))
        )
        for attempt in rows:
            attempts[attempt.delivery_id].append(AttemptPublic.model_validate(attempt, from_attributes=True))
    return [
        DeliveryPublic(
            id=d.id,
            endpoint_id=d.endpoint_id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == PENDING else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            attempt_log=attempts[d.id],
        )
        for d in deliveries
    ]
