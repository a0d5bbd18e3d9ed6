from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import JSON, Column, Date
from sqlmodel import Field

from services.registry.tables import RecordColumns


class Activity(RecordColumns, table=True):
    """A programme activity: a training, an event, a visit; with its participants by group."""

    __tablename__ = "activities"

    title: str = Field(max_length=200)
    kind: str = Field(max_length=40, index=True)
    start_date: date = Field(sa_type=Date, index=True)
    end_date: date | None = Field(default=None, sa_type=Date)
    programme_id: str | None = Field(default=None, max_length=40, index=True)
    cluster_id: str | None = Field(default=None, max_length=40, index=True)
    country: str = Field(max_length=2, index=True)
    subdivision: str | None = Field(default=None, max_length=6, index=True)
    latitude: float | None = None
    longitude: float | None = None
    participants: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    women_participants: int | None = None
    description: str | None = None
