"""Alerts on saved buyer standards, as the API reads and shows them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field
from pydantic import Strict as Strict_

from services.matching.shortlists.schemas import CriterionScore
from services.matching.standards.schemas import Strict

TOP_N_MAX = 200  # a shortlist's largest limit


class AlertSettings(Strict):
    """What counts as a supplier newly meeting the standards; both optional."""

    min_score: Annotated[float, Strict_(), Field(ge=0, le=1, allow_inf_nan=False)] | None = Field(
        default=None, description="Alert only when the supplier's score is at least this (0 to 1)"
    )
    top_n: Annotated[int, Strict_(), Field(ge=1, le=TOP_N_MAX)] | None = Field(
        default=None, description="Alert only when the supplier enters the standards' top N (exact, ties by id)"
    )


class AlertPublic(BaseModel):
    standards_id: str
    min_score: float | None
    top_n: int | None
    enabled_at: datetime = Field(description="Supplier changes from this moment on can raise the alert")
    updated_at: datetime


class StandardsMatchPublic(BaseModel):
    """A ``standards_match`` change on matching's feed: a supplier newly meets alerted standards."""

    id: str
    standards_id: str
    standards_version: int
    owner: str
    agency_id: str | None
    buyer_firm_id: str | None
    supplier_id: str
    supplier_name: str
    score: float
    rank: int | None = Field(description="Its rank in the standards' shortlist, when the alert asks for a top N")
    criteria: list[CriterionScore] = Field(description="The engine's explanation of the score")
    matched_at: datetime


class CertificateExpiringPublic(BaseModel):
    """A ``certificate_expiring`` change: a supplier in an ongoing linkage holds a certificate expiring soon."""

    id: str
    linkage_id: str
    owner: str
    agency_id: str | None
    buyer_firm_id: str | None
    supplier_id: str
    scheme: str
    valid_until: date
    days_ahead: int
