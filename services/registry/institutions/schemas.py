from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from services.common.codes import CountryCode, SubdivisionCode
from services.common.pagination import ListQuery
from services.registry.schemas import CreateBase, DistinctList, Name, Place, RecordId, RecordPublic, Text, partial


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
    description: Text | None = None
    website: str | None = Field(default=None, max_length=300)


class InstitutionCreate(InstitutionFields):
    """A new support institution."""


InstitutionUpdate = partial(InstitutionCreate, "InstitutionUpdate")


class InstitutionPublic(RecordPublic, InstitutionFields):
    agency_id: str


class InstitutionQuery(ListQuery):
    kind: InstitutionKind | None = None
    country: CountryCode | None = None
    subdivision: SubdivisionCode | None = None
    cluster_id: str | None = None
    agency_id: str | None = None
    q: str | None = Field(default=None, max_length=100, description="Text in the name or description")
