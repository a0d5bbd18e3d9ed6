from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from services.common.bounds import Email, Name, SearchQuery, Url
from services.common.codes import CountryCode
from services.registry.schemas import RecordPublic, RecordQuery, Strict, partial


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
    website: Url | None = None
    contact_email: Email | None = None


class AgencyCreate(AgencyFields):
    """A new implementing agency (admins only)."""


AgencyUpdate = partial(AgencyCreate, "AgencyUpdate")


class AgencyPublic(RecordPublic, AgencyFields):
    pass


class AgencyQuery(RecordQuery):
    country: CountryCode | None = None
    q: SearchQuery | None = Field(default=None, description="Text in the name")
