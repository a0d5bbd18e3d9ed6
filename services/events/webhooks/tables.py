"""Webhook endpoints, the delivery queue and every attempt, in the events database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field

from services.common.db import UTCDateTime
from services.events.tables import EventsTable

# Delivery states: pending (queued or waiting for a retry), succeeded, failed (schedule
# spent, endpoint gone or disabled while it waited).
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


class WebhookEndpoint(EventsTable, table=True):
    """Where, and which events, to deliver; owned by the principal that created it.

    The owner's role and tenancy are kept so that each event is checked against what
    that principal could read (``services.events.visibility.can_read``).
    """

    __tablename__ = "webhook_endpoints"

    id: str = Field(primary_key=True, max_length=40)
    owner: str = Field(index=True, max_length=80)  # owner_key: firm:<id>, agency:<id>, key:<subject>, admin
    owner_subject: str = Field(max_length=200)
    owner_role: str = Field(max_length=20)
    agency_id: str | None = Field(default=None, index=True, max_length=40)
    firm_id: str | None = Field(default=None, max_length=40)
    broker_id: str | None = Field(default=None, max_length=40)
    url: str = Field(max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=500)
    secret: str = Field(max_length=200)
    previous_secret: str | None = Field(default=None, max_length=200)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    consecutive_failures: int = 0
    version: int = 1
    created_at: datetime = Field(sa_type=UTCDateTime())
    updated_at: datetime = Field(sa_type=UTCDateTime())


class WebhookDelivery(EventsTable, table=True):
    """One event for one endpoint: the queue row workers claim, and its outcome.

    ``body`` is the exact JSON sent, so every retry signs and sends the same bytes
    under the same ``webhook-id`` (the event's id).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_event", "endpoint_id", "event_id", unique=True),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    endpoint_id: str = Field(index=True, max_length=40)
    event_id: str = Field(max_length=40)
    event_type: str = Field(max_length=100)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=PENDING, max_length=20)
    attempts: int = 0
    failures: int = 0  # failed attempts since the delivery was (re)queued: the schedule's position
    next_attempt_at: datetime = Field(sa_type=UTCDateTime())
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(sa_type=UTCDateTime())
    updated_at: datetime = Field(sa_type=UTCDateTime())


class WebhookAttempt(EventsTable, table=True):
    """One HTTP attempt of a delivery: what the receiver answered, and how fast."""

    __tablename__ = "webhook_attempts"

    id: str = Field(primary_key=True, max_length=40)
    delivery_id: str = Field(index=True, max_length=40)
    endpoint_id: str = Field(index=True, max_length=40)
    attempted_at: datetime = Field(sa_type=UTCDateTime())
    succeeded: bool
    status_code: int | None = None
    latency_ms: float
    response_excerpt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # at most 1 kB
    error: str | None = Field(default=None, max_length=1000)
