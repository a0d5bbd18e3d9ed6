from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.common.bounds import Name
from services.matching.shortlists.schemas import Standards, Strict


class StandardsCreate(Standards):
    name: Name = Field(description="e.g. 'Knitwear suppliers, Tamil Nadu'")


class StandardsUpdate(Strict):
    """A new version: the fields given replace the current version's."""

    name: Name | None = None
    constraints: dict[str, object] | None = None
    criteria: dict[str, object] | None = None


class StandardsPublic(BaseModel):
    id: str
    name: str
    version: int
    firm_id: str | None
    standards: Standards
    created_at: datetime
    updated_at: datetime
