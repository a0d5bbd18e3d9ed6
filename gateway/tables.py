"""The gateway's own database: API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from services.common.app import database_tables
from services.common.db import UTCDateTime, new_registry

mapper_registry = new_registry()
metadata = mapper_registry.metadata
database_tables(metadata, outbox=False)


class GatewayTable(SQLModel, registry=mapper_registry):
    """Base of the gateway's table models."""


class ApiKey(GatewayTable, table=True):
    """An API key. Only a SHA-256 of its secret part is stored; the key is shown once."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=24, description="The visible start of the key, for recognising it")
    secret_hash: str = Field(max_length=64, index=True, unique=True)
    role: str = Field(max_length=20)
    agency_id: str | None = Field(default=None, max_length=40, index=True)
    firm_id: str | None = Field(default=None, max_length=40)
    broker_id: str | None = Field(default=None, max_length=40)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    created_at: datetime = Field(sa_type=UTCDateTime())
    created_by: str | None = Field(default=None, max_length=40)
    rotated_from: str | None = Field(default=None, max_length=40)
