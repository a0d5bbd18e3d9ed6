"""Request and response bodies of programme results frameworks (``/v1/results``)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from services.common.bounds import Amount, Code, Day, has_control_character
from services.reporting.indicators.schemas import FeedFreshness, Number

MAX_TARGETS = 20
Value = Amount


def _one_line(value: str) -> str:
    if has_control_character(value):
        raise ValueError("must be one line without control characters")
    return value


Statement = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_one_line)]
Verification = Annotated[str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_one_line)]
PeriodLabel = Annotated[str, StringConstraints(min_length=1, max_length=40), AfterValidator(_one_line)]


class Level(StrEnum):
    """The level of the logframe a result sits at."""

    impact = "impact"
    outcome = "outcome"
    output = "output"


LEVELS = tuple(Level)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Baseline(Strict):
    value: Value = Field(description="The indicator's value before the programme acted (its unit's)")
    date: Day = Field(description="The day the baseline was measured, YYYY-MM-DD")


class Target(Strict):
    label: PeriodLabel = Field(description="The year or milestone, e.g. 2026 or mid-term")
    start: Day | None = Field(
        default=None,
        alias="from",
        description="First day of the period the actual is measured over (open: since the first record, "
        "so a flow counts cumulatively)",
    )
    end: Day = Field(alias="to", description="Last day of the period")
    value: Value = Field(description="The target value at the period's end")


Targets = Annotated[list[Target], Field(min_length=1, max_length=MAX_TARGETS)]


def _periods_valid(targets: list[Target] | None) -> list[Target] | None:
    if targets is None:
        return None
    labels: set[str] = set()
    for i, target in enumerate(targets):
        if target.label in labels:
            raise ValueError(f"targets.{i}: the label '{target.label}' is used twice")
        labels.add(target.label)
        if target.start is not None and target.start > target.end:
            raise ValueError(f"targets.{i}: from ({target.start}) is after to ({target.end})")
    return targets


class ResultIndicatorCreate(Strict):
    """An indicator of the programme's results framework."""

    indicator: Code = Field(description="An indicator key of /v1/indicators/definitions")
    level: Level
    statement: Statement = Field(description="The impact, outcome or output statement the indicator measures")
    baseline: Baseline
    targets: Targets = Field(description="Targets by year or milestone; each label once")
    means_of_verification: Verification = Field(description="Where the figures come from and how they are checked")

    _targets = field_validator("targets")(_periods_valid)


class ResultIndicatorUpdate(Strict):
    """Fields to change; ``targets`` replaces every target. The indicator itself cannot change."""

    level: Level | None = None
    statement: Statement | None = None
    baseline: Baseline | None = None
    targets: Targets | None = None
    means_of_verification: Verification | None = None

    _targets = field_validator("targets")(_periods_valid)

    @field_validator("level", "statement", "baseline", "targets", "means_of_verification", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, not null: every framework indicator has one")
        return value


class TargetPublic(BaseModel):
    label: str
    start: date | None = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    value: float


class ResultIndicatorPublic(BaseModel):
    id: str
    programme_id: str
    agency_id: str
    indicator: str
    label: str = Field(description="The indicator's label in /v1/indicators/definitions")
    unit: str
    level: Level
    statement: str
    baseline: Baseline
    targets: list[TargetPublic]
    means_of_verification: str
    version: int = Field(description='Send it as If-Match ("3") to change or delete the indicator')
    created_at: datetime
    updated_at: datetime


class PeriodResult(BaseModel):
    label: str
    start: date | None = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    target: float
    actual: Number = Field(
        description="The indicator over the period for the programme's records, up to today for a period "
        "still running; null for a period not begun (or an indicator undefined on it)"
    )
    measured_to: date | None = Field(description="The last day the actual covers (null when not measured)")
    breakdown: dict[str, Number] | None = Field(
        default=None, description="The actual by category, for an indicator defined with a breakdown"
    )
    share_achieved: Number = Field(
        description="(actual - baseline) / (target - baseline), rounded to 4 places; null when the actual is "
        "null or the target equals the baseline"
    )


class IndicatorResults(ResultIndicatorPublic):
    periods: list[PeriodResult]


class ProgrammePublic(BaseModel):
    id: str
    name: str
    agency_id: str
    country: str
    start_date: date
    end_date: date | None


class ResultsPublic(BaseModel):
    programme: ProgrammePublic
    as_of: datetime | None = Field(description="The time of the last change applied from any feed")
    freshness: dict[str, FeedFreshness]
    indicators: list[IndicatorResults] = Field(description="By level (impact, outcome, output), then as created")
