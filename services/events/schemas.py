"""The events API's models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EventPublic(BaseModel):
    """A public event: what happened to which record, thin (ids and what changed)."""

    id: str = Field(description="Stable: the same on every read and every webhook delivery of this event")
    type: str = Field(description="See GET /v1/event-types")
    created_at: datetime = Field(description="When the change happened")
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventPublic]
    next_cursor: str = Field(
        description="Pass as `after` to read on. Always set: at the end of the log it is where the next event "
        "will be found, so a reader keeps it and asks again later."
    )


class EventTypePublic(BaseModel):
    type: str
    description: str
    source: str = Field(description="The service whose records it is about: registry or matching")
    audience: str = Field(
        description="Who reads it: `public` (every key), `owner` (the record's owner, admins and viewers "
        "of its agency), `agency` (the record's agency and admins)"
    )
