"""Webhook endpoint and delivery models of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from services.common.bounds import StrictInput, line

EventType = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9_*]+(\.[a-z0-9_*]+)*$")]
EndpointUrl = line(2000, 1)
Description = line(500)
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=100)]


class EndpointCreate(StrictInput):
    url: EndpointUrl = Field(description="Where to POST events: a public http(s) URL")  # type: ignore[valid-type]
    event_types: EventTypes = Field(
        description="Event types to receive, from the event catalogue; `firm.*` names a family, `*` every type"
    )
    description: Description | None = None  # type: ignore[valid-type]


class EndpointUpdate(StrictInput):
    """The fields given replace the endpoint's."""

    url: EndpointUrl | None = None  # type: ignore[valid-type]
    event_types: EventTypes | None = None
    description: Description | None = None  # type: ignore[valid-type]


class RotateSecret(StrictInput):
    grace_seconds: Annotated[int, Field(ge=0, le=7 * 86400)] | None = Field(
        default=None,
        description="How long the old secret still signs deliveries (default: the service's setting, 24 h)",
    )


class EndpointPublic(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointPublic):
    secret: str = Field(description="The signing secret, shown this once: keep it")
    previous_secret_expires_at: datetime | None = None


class AttemptPublic(BaseModel):
    attempted_at: datetime
    succeeded: bool
    status_code: int | None
    latency_ms: float
    response_excerpt: str | None
    error: str | None


class DeliveryPublic(BaseModel):
    id: str
    endpoint_id: str
    event_id: str = Field(description="The webhook-id header: the same on every attempt")
    event_type: str
    status: str = Field(description="pending, succeeded or failed")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    attempt_log: list[AttemptPublic]
