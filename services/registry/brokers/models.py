from __future__ import annotations

from datetime import date

from sqlalchemy import JSON, Column, Date
from sqlmodel import Field

from services.registry.tables import RecordColumns


class Broker(RecordColumns, table=True):
    """A cluster development agent: trained (and perhaps certified) to build networks."""

    __tablename__ = "brokers"

    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=200)
    country: str = Field(max_length=2, index=True)
    organisation: str | None = Field(default=None, max_length=200)
    trained_on: date | None = Field(default=None, sa_type=Date)
    certified_on: date | None = Field(default=None, sa_type=Date)
    cluster_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
