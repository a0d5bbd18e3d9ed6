"""The durable delivery queue: fan-out of events to endpoints, claims, and outcomes.

Fan-out reads the events table after its stored cursor and writes one delivery per
(event, endpoint whose types match and whose owner may read the event), and the new
cursor, in one transaction: an event is queued once for each endpoint, never lost,
never twice. On PostgreSQL a transaction-scoped advisory lock lets one replica fan
out at a time.

Workers claim due deliveries with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL
(replicas never claim the same row) and lease them by moving ``next_attempt_at``
past the send's timeout: a worker that dies mid-send leaves the row to be claimed
again when the lease runs out (the receiver may then see the event twice, with the
same ``webhook-id``). SQLite has no row locks: there, write transactions are
serialised by the database lock, which is safe for the one process SQLite serves.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.common.bulk import one_of
from services.common.changefeed import load_cursor, lock_sequence, store_cursor
from services.common.db import is_postgres
from services.common.hooks import Hook
from services.common.ids import new_id
from services.common.jsontext import json_text, json_time
from services.common.principal import Principal
from services.events.webhooks.access import owner_principal
from services.events.webhooks.retries import SLOW_DOWN_STATUSES, next_delay
from services.events.webhooks.settings import WebhookSettings
from services.events.webhooks.tables import FAILED, PENDING, SUCCEEDED, WebhookAttempt, WebhookDelivery, WebhookEndpoint

FANOUT_FEED = "webhook_fanout"
FANOUT_LOCK_KEY = 0x77686F6F6B  # "whook": one fan-out at a time across replicas
LEASE_MARGIN_SECONDS = 5.0
EXCERPT_BYTES = 1024

# Called in the transaction that disables an endpoint (the reason as its argument): the
# events service connects the handler that emits ``webhook_endpoint.disabled``.
endpoint_disabled: Hook[[AsyncSession, WebhookEndpoint, str]] = Hook("endpoint_disabled")

CanRead = Callable[[Principal, Mapping[str, Any]], bool]


def type_matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``patterns`` (``firm.*``, ``*``) receives ``event_type``."""
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


def event_body(event_type: str, timestamp: datetime, data: Any) -> str:
    """The JSON a receiver gets: ``{"type", "timestamp", "data"}`` (Standard Webhooks)."""
    return json_text({"type": event_type, "timestamp": json_time(timestamp), "data": data})


def new_delivery(endpoint_id: str, event_id: str, event_type: str, body: str, now: datetime) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_id("whd"),
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type=event_type,
        body=body,
        status=PENDING,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


async def fan_out(session: AsyncSession, events: Table, cursors: Table, can_read: CanRead, *, batch_size: int) -> int:
    """Queue deliveries for the next events after the stored cursor; how many events were read."""
    await lock_sequence(session, FANOUT_LOCK_KEY)
    after = await load_cursor(session, cursors, FANOUT_FEED)
    window = select(events.c.seq, events.c.type).where(events.c.seq > after).order_by(events.c.seq).limit(batch_size)
    heads = (await session.execute(window)).all()
    if not heads:
        return 0
    # Read after the events: an endpoint created since misses none of the events created after it.
    endpoints = list((await session.scalars(select(WebhookEndpoint).where(col(WebhookEndpoint.enabled)))).all())
    await store_cursor(session, cursors, FANOUT_FEED, int(heads[-1].seq))
    # Only the events of a type some endpoint subscribes to are read whole (none: no endpoint).
    wanted = [seq for seq, kind in heads if any(type_matches(e.event_types, kind) for e in endpoints)]
    if not wanted:
        return len(heads)
    rows = (
        await session.execute(select(events).where(one_of(session, events.c.seq, wanted)).order_by(events.c.seq))
    ).all()
    owners = [owner_principal(endpoint) for endpoint in endpoints]
    now = datetime.now(UTC)
    for row in rows:
        event = row._asdict()
        body: str | None = None  # one body per event, however many endpoints receive it
        for endpoint, owner in zip(endpoints, owners, strict=True):
            if row.created_at < endpoint.created_at or not type_matches(endpoint.event_types, row.type):
                continue
            if not can_read(owner, event):
                continue
            body = body or event_body(row.type, row.created_at, row.data)
            session.add(new_delivery(endpoint.id, row.id, row.type, body, now))
    return len(heads)


@dataclass(frozen=True)
class Job:
    """A claimed delivery: what one attempt sends."""

    delivery_id: str
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]
    message_id: str
    body: bytes


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    """The current secret, and the previous one while its grace period lasts."""
    previous = endpoint.previous_secret
    expires = endpoint.previous_secret_expires_at
    if previous is not None and expires is not None and expires > now:
        return (endpoint.secret, previous)
    return (endpoint.secret,)


async def claim(session: AsyncSession, *, limit: int, lease_seconds: float) -> list[Job]:
    """Lease up to ``limit`` due deliveries of enabled endpoints, oldest due first."""
    now = datetime.now(UTC)
    statement = (
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(
            col(WebhookDelivery.status) == PENDING,
            col(WebhookDelivery.next_attempt_at) <= now,
            col(WebhookEndpoint.enabled),
        )
        .order_by(col(WebhookDelivery.next_attempt_at))
        .limit(limit)
    )
    if is_postgres(session):
        statement = statement.with_for_update(skip_locked=True, of=WebhookDelivery)
    jobs: list[Job] = []
    lease_until = now + timedelta(seconds=lease_seconds)
    for delivery, endpoint in (await session.execute(statement)).all():
        delivery.next_attempt_at = lease_until
        jobs.append(
            Job(
                delivery_id=delivery.id,
                endpoint_id=endpoint.id,
                url=endpoint.url,
                secrets=signing_secrets(endpoint, now),
                message_id=delivery.event_id,
                body=delivery.body.encode(),
            )
        )
    return jobs


@dataclass(frozen=True)
class Outcome:
    """What one attempt got back."""

    attempted_at: datetime
    latency_ms: float
    status_code: int | None = None
    response_excerpt: str | None = None
    retry_after: float | None = None  # seconds, when the receiver asked to slow down
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def disable(session: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
    """Stop delivering to ``endpoint`` and tell its owner (``endpoint_disabled``)."""
    if not endpoint.enabled:
        return
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.version += 1
    endpoint.updated_at = datetime.now(UTC)
    await endpoint_disabled.call(session, endpoint, reason)


async def record(session: AsyncSession, job: Job, outcome: Outcome, settings: WebhookSettings) -> None:
    """Log the attempt and move the delivery on: done, retried later, or failed (maybe disabling)."""
    # The endpoint first, as the routes that change or delete it lock it (then its deliveries).
    endpoint = await session.get(WebhookEndpoint, job.endpoint_id, with_for_update=True)
    delivery = await session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
    if delivery is None or endpoint is None:
        return  # deleted while the attempt was in flight
    now = datetime.now(UTC)
    session.add(
        WebhookAttempt(
            id=new_id("wha"),
            delivery_id=delivery.id,
            endpoint_id=endpoint.id,
            attempted_at=outcome.attempted_at,
            succeeded=outcome.succeeded,
            status_code=outcome.status_code,
            latency_ms=round(outcome.latency_ms, 3),
            response_excerpt=outcome.response_excerpt,
            error=outcome.error,
        )
    )
    delivery.attempts += 1
    delivery.last_attempt_at = outcome.attempted_at
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    delivery.updated_at = now
    if outcome.succeeded:
        delivery.status = SUCCEEDED
        endpoint.consecutive_failures = 0
        return
    delivery.failures += 1
    endpoint.consecutive_failures += 1
    if outcome.status_code == 410:
        delivery.status = FAILED
        await disable(session, endpoint, "The endpoint answered 410 Gone")
        return
    retry_after = outcome.retry_after if outcome.status_code in SLOW_DOWN_STATUSES else None
    delay = next_delay(
        settings.webhook_retry_delays,
        delivery.failures,
        jitter=settings.webhook_retry_jitter,
        retry_after=retry_after,
        retry_after_max=settings.webhook_retry_after_max_seconds,
    )
    if delay is None:
        delivery.status = FAILED
        await disable(session, endpoint, f"Event {delivery.event_id} failed on every attempt of the retry schedule")
        return
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    if endpoint.consecutive_failures >= settings.webhook_disable_after_failures:
        await disable(session, endpoint, f"{endpoint.consecutive_failures} attempts in a row failed")
