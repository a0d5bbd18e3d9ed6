from __future__ import annotations

from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.registry.tables import RecordColumns


class Institution(RecordColumns, table=True):
    """A support institution of a cluster: training, business services, finance, research."""

    __tablename__ = "institutions"

    name: str = Field(max_length=200)
    kind: str = Field(max_length=40, index=True)
    country: str = Field(max_length=2, index=True)
    subdivision: str | None = Field(default=None, max_length=6, index=True)
    latitude: float | None = None
    longitude: float | None = None
    cluster_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    description: str | None = None
    website: str | None = Field(default=None, max_length=300)
