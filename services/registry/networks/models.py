from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import JSON, Column, Date
from sqlmodel import Field

from services.registry.tables import RecordColumns


class Network(RecordColumns, table=True):
    """A network of firms: horizontal (SMEs acting jointly) or vertical (a lead firm and its suppliers).

    Members and joint actions are JSON columns here and indexed in ``record_tags``
    (facets ``member`` and ``action``) for filtering.
    """

    __tablename__ = "networks"

    name: str = Field(max_length=200)
    kind: str = Field(max_length=20, index=True)
    cluster_id: str | None = Field(default=None, max_length=40, index=True)
    broker_id: str | None = Field(default=None, max_length=40, index=True)
    members: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    joint_actions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=20, index=True)
    formed_on: date | None = Field(default=None, sa_type=Date)
    description: str | None = None
