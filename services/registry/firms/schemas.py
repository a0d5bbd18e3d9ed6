from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from services.common.codes import CountryCode, HsCode, IsicCode, SubdivisionCode
from services.common.pagination import ListQuery
from services.registry.schemas import (
    CreateBase,
    DistinctList,
    Name,
    Place,
    RecordId,
    RecordPublic,
    Strict,
    Text,
    partial,
    rule_broken,
)


class FirmRole(StrEnum):
    supplier = "supplier"
    lead_firm = "lead_firm"


class SizeClass(StrEnum):
    micro = "micro"
    small = "small"
    medium = "medium"
    large = "large"


class NationalId(Strict):
    scheme: str = Field(min_length=1, max_length=40, description="e.g. RUC (Ecuador), GSTIN or UDYAM (India)")
    value: str = Field(min_length=1, max_length=60)


class Certification(Strict):
    scheme: str = Field(min_length=1, max_length=40, description="A code from /v1/certification-schemes")
    issuer: str | None = Field(default=None, max_length=200, description="Certification body")
    certificate_number: str | None = Field(default=None, max_length=100)
    valid_from: date | None = None
    valid_until: date | None = None

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise rule_broken(type(self).__name__, [(("valid_until",), "valid_until is before valid_from")])
        return self

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


class FirmFields(CreateBase, Place):
    name: Name
    national_ids: Annotated[list[NationalId], Field(max_length=10)] = []
    roles: DistinctList(FirmRole, 2) = Field(min_length=1)  # type: ignore[valid-type]
    size_class: SizeClass
    employees: int | None = Field(default=None, ge=0)
    isic_codes: DistinctList(IsicCode, 20) = Field(min_length=1, description="ISIC Rev.4 codes of its activities")  # type: ignore[valid-type]
    hs_codes: DistinctList(HsCode, 200) = Field(default=[], description="HS codes of the products it makes")  # type: ignore[valid-type]
    certifications: Annotated[list[Certification], Field(max_length=50)] = []
    monthly_capacity: float | None = Field(default=None, ge=0, description="Output per month, in capacity_unit")
    capacity_unit: str | None = Field(default=None, min_length=1, max_length=30, description="e.g. pieces, kg, m2")
    quality_score: float | None = Field(default=None, ge=0, le=1, description="0 to 1, from buyer audits")
    on_time_delivery_rate: float | None = Field(default=None, ge=0, le=1, description="Share of orders on time")
    capabilities: Text | None = Field(default=None, description="What the firm can make and do, in words")
    street: str | None = Field(default=None, max_length=300)
    locality: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=20)
    cluster_ids: DistinctList(RecordId, 20) = []  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _capacity_has_unit(self) -> Self:
        if (self.monthly_capacity is None) != (self.capacity_unit is None):
            missing = "capacity_unit" if self.capacity_unit is None else "monthly_capacity"
            raise rule_broken(type(self).__name__, [((missing,), "monthly_capacity and capacity_unit go together")])
        return self


class FirmCreate(FirmFields):
    """A new firm."""


FirmUpdate = partial(FirmCreate, "FirmUpdate")


class FirmPublic(RecordPublic, FirmFields):
    agency_id: str


class FirmQuery(ListQuery):
    country: CountryCode | None = None
    subdivision: SubdivisionCode | None = None
    size_class: SizeClass | None = None
    role: FirmRole | None = None
    isic: str | None = Field(default=None, max_length=4, description="ISIC code or prefix")
    hs: str | None = Field(default=None, max_length=6, description="HS code or prefix")
    certification: str | None = Field(
        default=None, max_length=40, description="Holds a certificate of this scheme valid today"
    )
    cluster_id: str | None = None
    agency_id: str | None = None
    q: str | None = Field(default=None, max_length=100, description="Text in the name or capabilities")
