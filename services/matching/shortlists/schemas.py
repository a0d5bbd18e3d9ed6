"""The shortlist request (inline or saved buyer standards) and response."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, Field, model_validator
from pydantic import Strict as Strict_

from services.common.bounds import Day, Flag, RecordId, Version
from services.matching.standards.schemas import HardConstraints, SoftCriteria, Strict, check_units


class ShortlistRequest(Strict):
    """Either inline standards, or a saved standards record (optionally at a version)."""

    standards_id: RecordId | None = None
    standards_version: Version | None = None
    constraints: HardConstraints | None = None
    criteria: SoftCriteria | None = None
    limit: Annotated[int, Strict_(), Field(ge=1, le=200)] = 20
    include_development: Flag = Field(default=False, description="Also return development candidates")
    development_limit: Annotated[int, Strict_(), Field(ge=1, le=200)] = 20
    include_consortia: Flag | None = Field(
        default=None,
        description="Also rank consortia (active horizontal networks answering together); "
        "default: the saved standards' include_consortia, false for inline standards",
    )
    consortium_limit: Annotated[int, Strict_(), Field(ge=1, le=100)] = 10
    on_date: Day | None = Field(default=None, description="Date certificates must be valid on (today by default)")

    @model_validator(mode="after")
    def _source(self) -> Self:
        if self.standards_id is not None and (self.constraints is not None or self.criteria is not None):
            raise ValueError("give either standards_id or inline constraints/criteria, not both")
        if self.standards_version is not None and self.standards_id is None:
            raise ValueError("standards_version needs standards_id")
        # Inline standards obey the rules of saved ones (422 here, not a failure building them later).
        check_units(self.constraints, self.criteria)
        return self


class CriterionScore(BaseModel):
    criterion: str
    value: float = Field(description="The criterion's value for this supplier, 0 to 1")
    weight: float = Field(description="Its normalised weight in this shortlist")
    contribution: float = Field(description="weight x value, rounded; the contributions add up to the score")
    basis: str | None = Field(
        default=None,
        description="Where the value comes from, for performance: 'N scorecards from M buyers' "
        "(buyers' delivery scorecards) or 'declared' (the firm's own figures)",
    )


class GapPublic(BaseModel):
    kind: str = Field(description="certification or capacity")
    scheme: str | None = None
    required_monthly_capacity: float | None = None
    available_monthly_capacity: float | None = None


class CertificateHeld(BaseModel):
    scheme: str
    valid_until: date | None = Field(description="The expiry of the longest-running valid certificate; null: none")


class SupplierCard(BaseModel):
    """What a portal needs to draw the supplier's card without reading the firm."""

    distance_km: float | None = Field(
        description="Great-circle distance from the standards' point; null without a point or coordinates"
    )
    certificates: list[CertificateHeld] = Field(
        description="The required and preferred schemes the supplier holds valid on the shortlist's date"
    )
    matched_words: list[str] = Field(
        description="Words of the standards' description that the supplier's capabilities or name contain, "
        "as the description writes them"
    )
    monthly_capacity: float | None
    capacity_unit: str | None = Field(description="Lowercased, as matching compares units")


class ShortlistItem(BaseModel):
    rank: int
    supplier_id: str
    name: str
    score: float
    criteria: list[CriterionScore]
    gap: GapPublic | None = None
    card: SupplierCard | None = Field(default=None, description="Absent on shortlists stored before cards existed")


class ConsortiumGapPublic(GapPublic):
    member_id: str | None = Field(default=None, description="The member lacking the certification")


class ConsortiumMember(BaseModel):
    firm_id: str
    name: str
    share: float = Field(
        description="Its weight in the consortium's means: its capacity over the consortium's in the standards' unit "
        "(equal shares without a unit or capacities)"
    )
    contribution: float = Field(
        description="Its part of the score: share x its weighted text, certifications, performance"
    )
    monthly_capacity: float | None
    capacity_unit: str | None = Field(description="Lowercased, as matching compares units")
    values: dict[str, float] = Field(description="Its own value of each criterion, 0 to 1")


class ConsortiumItem(BaseModel):
    """A network whose counted members together meet the standards, scored as one supplier."""

    rank: int
    network_id: str
    name: str
    score: float
    criteria: list[CriterionScore] = Field(
        description="text, certifications, performance: share-weighted means of the members'; proximity: the "
        "farthest member's; capacity: the members' total over the target"
    )
    monthly_capacity: float = Field(description="The counted members' total in the standards' unit (0 without one)")
    members: list[ConsortiumMember] = Field(description="The members counted, largest share first")
    gap: ConsortiumGapPublic | None = None


class ConsortiaPublic(BaseModel):
    eligible_count: int
    items: list[ConsortiumItem]
    development_count: int | None
    development: list[ConsortiumItem] | None


class ShortlistPublic(BaseModel):
    id: str
    created_at: datetime
    standards_id: str | None
    standards_version: int | None
    catalogue_version: str
    on_date: date
    weights: dict[str, float]
    eligible_count: int
    items: list[ShortlistItem]
    development_count: int | None
    development: list[ShortlistItem] | None
    consortia: ConsortiaPublic | None = Field(default=None, description="When asked for (include_consortia)")
    took_ms: float
    request: dict[str, Any]
