"""The matching service's database: buyer standards, shortlists and linkages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from services.common.app import database_tables
from services.common.db import UTCDateTime, new_registry

mapper_registry = new_registry()
metadata = mapper_registry.metadata
database_tables(metadata)
OUTBOX = metadata.tables["outbox"]


class MatchingTable(SQLModel, registry=mapper_registry):
    """Base of the matching service's table models."""


class OwnedColumns(MatchingTable):
    """Who owns a matching record: a lead firm, an agency or an integrator key."""

    id: str = Field(primary_key=True, max_length=40)
    owner: str = Field(index=True, max_length=80)
    firm_id: str | None = Field(default=None, index=True, max_length=40)  # the buyer, when known
    agency_id: str | None = Field(default=None, index=True, max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime())


class BuyerStandard(OwnedColumns, table=True):
    """A lead firm's saved buyer standards; each change makes a new version."""

    __tablename__ = "buyer_standards"

    name: str = Field(max_length=200)
    version: int = 1
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(sa_type=UTCDateTime())


class BuyerStandardVersion(MatchingTable, table=True):
    __tablename__ = "buyer_standard_versions"

    standards_id: str = Field(primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    name: str = Field(max_length=200)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime())


class Shortlist(OwnedColumns, table=True):
    """A shortlist as it was returned: request, catalogue version and ranked suppliers."""

    __tablename__ = "shortlists"

    standards_id: str | None = Field(default=None, index=True, max_length=40)
    standards_version: int | None = None
    catalogue_version: str = Field(max_length=40)
    request: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class Linkage(OwnedColumns, table=True):
    """What came of a shortlisted supplier: the stage reached, with dates and actions."""

    __tablename__ = "linkages"
    __table_args__ = (Index("ix_linkages_shortlist_supplier", "shortlist_id", "supplier_id", unique=True),)

    shortlist_id: str = Field(max_length=40)
    supplier_id: str = Field(index=True, max_length=40)
    stage: str = Field(max_length=20, index=True)
    history: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    development_actions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    gap: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    notes: str | None = None
    version: int = 1
    updated_at: datetime = Field(sa_type=UTCDateTime())
