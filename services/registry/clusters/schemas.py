from __future__ import annotations

from pydantic import Field

from services.common.bounds import Count, FreeText, Name, RecordId, SearchQuery, Share, line
from services.common.codes import CountryCode, IsicCode, SubdivisionCode
from services.registry.schemas import CreateBase, Place, RecordPublic, RecordQuery, partial


class ClusterFields(CreateBase, Place):
    name: Name
    sector_isic: IsicCode = Field(description="ISIC Rev.4 code of the cluster's main sector")
    description: FreeText | None = None
    programme_id: RecordId | None = None
    large_firms: Count | None = None
    smes: Count | None = Field(default=None, description="Small and medium enterprises")
    retail_points: Count | None = None
    jobs: Count | None = None
    regional_employment_share: Share | None = Field(
        default=None, description="Share of the region's employment, 0 to 1"
    )


class ClusterCreate(ClusterFields):
    """A new cluster."""


ClusterUpdate = partial(ClusterCreate, "ClusterUpdate")


class ClusterPublic(RecordPublic, ClusterFields):
    agency_id: str


class ClusterQuery(RecordQuery):
    country: CountryCode | None = None
    subdivision: SubdivisionCode | None = None
    isic: line(4) | None = Field(default=None, description="ISIC code or prefix of the sector")  # type: ignore[valid-type]
    programme_id: RecordId | None = None
    agency_id: RecordId | None = None
    q: SearchQuery | None = Field(default=None, description="Text in the name or description")
