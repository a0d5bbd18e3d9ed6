from __future__ import annotations

from sqlmodel import Field

from services.registry.tables import RecordColumns


class Cluster(RecordColumns, table=True):
    """Firms of one sector agglomerated in one place, with a programme's support."""

    __tablename__ = "clusters"

    name: str = Field(max_length=200)
    sector_isic: str = Field(max_length=4, index=True)
    country: str = Field(max_length=2, index=True)
    subdivision: str | None = Field(default=None, max_length=6, index=True)
    latitude: float | None = None
    longitude: float | None = None
    description: str | None = None
    programme_id: str | None = Field(default=None, max_length=40, index=True)
    large_firms: int | None = None
    smes: int | None = None
    retail_points: int | None = None
    jobs: int | None = None
    regional_employment_share: float | None = None
