"""The events service's database: public events, and what it needs to derive them.

``events`` is the public event log: one row per event, ``seq`` its cursor position
(the commit order: see ``services.events.consumer``), ``id`` its stable public id
(derived from the source change, so a rebuild from ``after=0`` gives the same ids),
and the tenancy columns ``services.events.visibility`` reads: ``audience`` (who may
read it at all), the owner key of a matching record and the record's agency.

``source_states`` keeps, per source record, the little the consumer compares a new
state with (a linkage's stage, a request's status history, digests of a registry
record's fields), so an update becomes ``linkage.stage_changed`` from → to, or
``firm.updated`` with the fields that changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, Table
from sqlmodel import Field, SQLModel

from services.common.app import database_tables
from services.common.changefeed import feed_cursor_table
from services.common.db import UTCDateTime, new_registry

mapper_registry = new_registry()
metadata = mapper_registry.metadata
database_tables(metadata, outbox=False)
FEED_CURSORS = feed_cursor_table(metadata)


class EventsTable(SQLModel, registry=mapper_registry):
    """Base of the events service's table models."""


class Event(EventsTable, table=True):
    """One public event."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_owner_seq", "owner", "seq"),
        Index("ix_events_agency_id_seq", "agency_id", "seq"),
        Index("ix_events_audience_seq", "audience", "seq"),
        {"sqlite_autoincrement": True},
    )

    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    id: str = Field(max_length=40, unique=True)
    type: str = Field(max_length=60, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime())  # the source change's occurred_at
    subject: str = Field(max_length=64)  # the id of the record the event is about
    source: str = Field(max_length=20)  # the feed: registry, matching
    source_seq: int = Field(sa_type=BigInteger)
    data: dict[str, Any] = Field(sa_type=JSON)
    audience: str = Field(max_length=10)  # services.events.visibility.Audience
    owner: str | None = Field(default=None, max_length=80)
    agency_id: str | None = Field(default=None, max_length=64)


class SourceState(EventsTable, table=True):
    """What the consumer remembers of one source record (see the module docstring)."""

    __tablename__ = "source_states"

    feed: str = Field(primary_key=True, max_length=20)
    entity_id: str = Field(primary_key=True, max_length=64)
    entity: str = Field(max_length=40)
    state: dict[str, Any] = Field(sa_type=JSON)


def table_of(model: type[EventsTable]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


EVENTS = table_of(Event)
SOURCE_STATES = table_of(SourceState)
