from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from services.common.codes import CountryCode
from services.common.pagination import ListQuery
from services.registry.schemas import Name, RecordPublic, Strict, partial


class AgencyKind(StrEnum):
    government = "government"
    development_agency = "development_agency"
    chamber_of_commerce = "chamber_of_commerce"
    international_organisation = "international_organisation"
    ngo = "ngo"
    other = "other"


class AgencyFields(Strict):
    name: Name
    country: CountryCode
    kind: AgencyKind = AgencyKind.government
    website: str | None = Field(default=None, max_length=300)
    contact_email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AgencyCreate(AgencyFields):
    """A new implementing agency (admins only)."""


AgencyUpdate = partial(AgencyCreate, "AgencyUpdate")


class AgencyPublic(RecordPublic, AgencyFields):
    pass


class AgencyQuery(ListQuery):
    country: CountryCode | None = None
    q: str | None = Field(default=None, max_length=100, description="Text in the name")
