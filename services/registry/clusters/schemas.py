from __future__ import annotations

from pydantic import Field

from services.common.codes import CountryCode, IsicCode, SubdivisionCode
from services.common.pagination import ListQuery
from services.registry.schemas import CreateBase, Name, Place, RecordId, RecordPublic, Text, partial


class ClusterFields(CreateBase, Place):
    name: Name
    sector_isic: IsicCode = Field(description="ISIC Rev.4 code of the cluster's main sector")
    description: Text | None = None
    programme_id: RecordId | None = None
    large_firms: int | None = Field(default=None, ge=0)
    smes: int | None = Field(default=None, ge=0, description="Small and medium enterprises")
    retail_points: int | None = Field(default=None, ge=0)
    jobs: int | None = Field(default=None, ge=0)
    regional_employment_share: float | None = Field(
        default=None, ge=0, le=1, description="Share of the region's employment, 0 to 1"
    )


class ClusterCreate(ClusterFields):
    """A new cluster."""


ClusterUpdate = partial(ClusterCreate, "ClusterUpdate")


class ClusterPublic(RecordPublic, ClusterFields):
    agency_id: str


class ClusterQuery(ListQuery):
    country: CountryCode | None = None
    subdivision: SubdivisionCode | None = None
    isic: str | None = Field(default=None, max_length=4, description="ISIC code or prefix of the sector")
    programme_id: str | None = None
    agency_id: str | None = None
    q: str | None = Field(default=None, max_length=100, description="Text in the name or description")
