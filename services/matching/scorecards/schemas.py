"""Delivery scorecards, their appeals and the decisions on them."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, Field, model_validator

from services.common.bounds import Day, Note, PositiveQuantity, Quantity, RecordId, Share, line, rule_broken
from services.common.pagination import ListQuery
from services.matching.standards.schemas import Strict


class ScorecardKind(StrEnum):
    delivery = "delivery"  # one delivery: quantities and dates
    period = "period"  # an evaluation of a period: quality and on-time figures


class ScorecardStatus(StrEnum):
    settled = "settled"  # counts in the supplier's performance
    under_appeal = "under_appeal"  # does not count until decided
    upheld = "upheld"  # the appeal was turned down: counts
    voided = "voided"  # the appeal was granted: does not count


COUNTING = (ScorecardStatus.settled.value, ScorecardStatus.upheld.value)


class ScorecardCreate(Strict):
    """A delivery (quantity, accepted_quantity, due_on, delivered_on) or a period
    (period_start, period_end, quality, on_time)."""

    kind: ScorecardKind
    quantity: PositiveQuantity | None = Field(default=None, description="Delivered, in the request's unit")
    accepted_quantity: Quantity | None = Field(default=None, description="Of it, accepted at inspection")
    due_on: Day | None = None
    delivered_on: Day | None = None
    period_start: Day | None = None
    period_end: Day | None = None
    quality: Share | None = Field(default=None, description="The period's quality figure, 0 to 1")
    on_time: Share | None = Field(default=None, description="The period's share of deliveries on time")
    note: Note | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        delivery = ("quantity", "accepted_quantity", "due_on", "delivered_on")
        period = ("period_start", "period_end", "quality", "on_time")
        needed, foreign = (delivery, period) if self.kind is ScorecardKind.delivery else (period, delivery)
        problems: list[tuple[tuple[str | int, ...], str]] = [
            ((f,), f"a {self.kind} scorecard needs it") for f in needed if getattr(self, f) is None
        ]
        problems += [((f,), f"is not part of a {self.kind} scorecard") for f in foreign if getattr(self, f) is not None]
        if self.quantity is not None and self.accepted_quantity is not None and self.accepted_quantity > self.quantity:
            problems.append((("accepted_quantity",), "is above the quantity delivered"))
        if self.period_start and self.period_end and self.period_end < self.period_start:
            problems.append((("period_end",), "is before period_start"))
        if problems:
            raise rule_broken(type(self).__name__, problems)
        return self

    @property
    def observed_on(self) -> date:
        observed = self.delivered_on if self.kind is ScorecardKind.delivery else self.period_end
        assert observed is not None
        return observed

    def figures(self) -> tuple[float, float]:
        """(quality, on_time) in [0, 1]."""
        if self.kind is ScorecardKind.period:
            assert self.quality is not None and self.on_time is not None
            return self.quality, self.on_time
        assert self.quantity and self.accepted_quantity is not None and self.due_on and self.delivered_on
        return self.accepted_quantity / self.quantity, 1.0 if self.delivered_on <= self.due_on else 0.0


class AppealCreate(Strict):
    reason: line(1000, 1)  # type: ignore[valid-type]


class DecisionOutcome(StrEnum):
    upheld = "upheld"  # the scorecard stands
    voided = "voided"  # the scorecard is struck out


class DecisionCreate(Strict):
    outcome: DecisionOutcome
    note: line(1000) | None = None  # type: ignore[valid-type]


class Appeal(BaseModel):
    reason: str
    at: datetime
    by: str = Field(description="The key that appealed")
    by_role: str
    on_behalf: bool


class Decision(BaseModel):
    outcome: DecisionOutcome
    note: str | None
    at: datetime
    by: str


class ScorecardPublic(BaseModel):
    id: str
    linkage_id: str
    supplier_id: str
    buyer_firm_id: str | None
    kind: ScorecardKind
    details: dict[str, Any] = Field(description="As recorded")
    observed_on: date
    quality: float = Field(description="Accepted share, or the period's quality figure")
    on_time: float = Field(description="1 or 0 for a delivery, or the period's share")
    status: ScorecardStatus
    counts: bool = Field(description="Whether it counts in the supplier's performance now")
    appeal: Appeal | None
    decision: Decision | None
    version: int
    created_at: datetime
    updated_at: datetime


class ScorecardQuery(ListQuery):
    supplier_id: RecordId | None = None
    linkage_id: RecordId | None = None
    status: ScorecardStatus | None = None
