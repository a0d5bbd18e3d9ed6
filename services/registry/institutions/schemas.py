from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from services.common.bounds import FreeText, Name, RecordId, SearchQuery, Url
from services.common.codes import CountryCode, SubdivisionCode
from services.registry.schemas import CreateBase, DistinctList, Place, RecordPublic, RecordQuery, partial


class InstitutionKind(StrEnum):
    training_provider = "training_provider"
    business_development_services = "business_development_services"
    business_association = "business_association"
    university = "university"
    centre_of_excellence = "centre_of_excellence"
    local_government = "local_government"
    ngo = "ngo"
    financial_institution = "financial_institution"
    other = "other"


class InstitutionFields(CreateBase, Place):
    name: Name
    kind: InstitutionKind
    cluster_ids: DistinctList(RecordId, 50) = Field(  # type: ignore[valid-type]
        default=[], description="Clusters the institution supports"
    )
    description: FreeText | None = None
    website: Url | None = None


class InstitutionCreate(InstitutionFields):
    """A new support institution."""


InstitutionUpdate = partial(InstitutionCreate, "InstitutionUpdate")


class InstitutionPublic(RecordPublic, InstitutionFields):
    agency_id: str


class InstitutionQuery(RecordQuery):
    kind: InstitutionKind | None = None
    country: CountryCode | None = None
    subdivision: SubdivisionCode | None = None
    cluster_id: RecordId | None = None
    agency_id: RecordId | None = None
    q: SearchQuery | None = Field(default=None, description="Text in the name or description")
