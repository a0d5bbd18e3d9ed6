"""The registry's table base: its own mapper registry and metadata (its own database)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, Index, Integer, String
from sqlmodel import Field, SQLModel

from services.common.app import database_tables
from services.common.changefeed import feed_cursor_table
from services.common.db import UTCDateTime, new_registry

mapper_registry = new_registry()
metadata = mapper_registry.metadata
database_tables(metadata)
FEED_CURSORS = feed_cursor_table(metadata)  # the feeds the registry follows: matching's


class RegistryTable(SQLModel, registry=mapper_registry):
    """Base of every registry table model."""


class RecordColumns(RegistryTable):
    """Columns every registry record has: id, owning agency, version, timestamps."""

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str = Field(index=True, max_length=40)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime())
    updated_at: datetime = Field(sa_type=UTCDateTime(), index=True)  # lists' updated_since


class RecordTag(RegistryTable, table=True):
    """Index of multi-valued attributes and references, so lists can filter on them.

    ``facet`` names the attribute (``isic``, ``hs``, ``cert``, ``cluster``, ``role``,
    ``ref``...); certifications carry their validity so a filter can ask for
    certificates valid on a date. Rows are rewritten with their record.
    """

    __tablename__ = "record_tags"
    __table_args__ = (Index("ix_record_tags_facet_value", "facet", "value"),)

    tag_id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    record_id: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    entity: str = Field(max_length=40)
    facet: str = Field(max_length=20)
    value: str = Field(max_length=100)
    valid_from: date | None = Field(default=None, sa_type=Date)
    valid_until: date | None = Field(default=None, sa_type=Date)
