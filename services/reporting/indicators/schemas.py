"""Query parameters and response bodies of the reporting API."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.common.bounds import Code, Day, RecordId
from services.common.codes import CountryCode, IsicCode, SubdivisionCode
from services.common.pagination import PageCount, PageCursor, PageLimit, PageSort

Number = int | float | None


class Granularity(StrEnum):
    month = "month"
    quarter = "quarter"


def _blank_is_absent(schema: dict[str, Any]) -> None:
    """The documented form of ``ScopeQuery._empty_is_absent``: a blank value is accepted (as no filter)."""
    blank = {"type": "string", "pattern": r"^\s*$"}
    if "anyOf" not in schema:  # the value's own schema becomes one branch, its metadata stays
        schema["anyOf"] = [{k: schema.pop(k) for k in list(schema) if k not in ("title", "description", "default")}]
    schema["anyOf"].append(blank)


class ScopeQuery(BaseModel):
    """Filters every reporting read takes. Unknown parameters are refused (422), so a
    misspelt filter never returns unfiltered figures; empty values (as a plain HTML form
    sends them) mean "not filtered"."""

    model_config = ConfigDict(extra="forbid")

    programme_id: RecordId | None = Field(
        default=None, json_schema_extra=_blank_is_absent, description="A programme's id"
    )
    country: CountryCode | None = Field(
        default=None, json_schema_extra=_blank_is_absent, description="ISO 3166-1 alpha-2"
    )
    subdivision: SubdivisionCode | None = Field(
        default=None, json_schema_extra=_blank_is_absent, description="ISO 3166-2, e.g. IN-TN"
    )
    cluster_id: RecordId | None = Field(default=None, json_schema_extra=_blank_is_absent, description="A cluster's id")
    sector: IsicCode | None = Field(
        default=None,
        json_schema_extra=_blank_is_absent,
        description="ISIC Rev.4 code or prefix of the cluster's sector",
    )
    agency_id: RecordId | None = Field(
        default=None, json_schema_extra=_blank_is_absent, description="Owning agency (admins and viewers)"
    )
    start: Day | None = Field(
        default=None,
        json_schema_extra=_blank_is_absent,
        alias="from",
        description="First day of the period, YYYY-MM-DD (open when absent)",
    )
    end: Day | None = Field(
        default=None,
        json_schema_extra=_blank_is_absent,
        alias="to",
        description="Last day of the period, YYYY-MM-DD (today when absent)",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() == "":
            return None
        if isinstance(value, list):
            return [v for v in value if not (isinstance(v, str) and v.strip() == "")]
        return value


class SeriesQuery(ScopeQuery):
    granularity: Granularity = Field(default=Granularity.month, description="month or quarter")
    indicator: list[Code] = Field(
        default=[], max_length=30, description="Indicators to include (repeat the parameter); all when absent"
    )


class ClusterListQuery(ScopeQuery):
    limit: PageLimit = None
    cursor: PageCursor = None
    sort: PageSort = None
    count: PageCount = False


class DashboardQuery(ScopeQuery):
    granularity: Granularity = Field(default=Granularity.month, description="Of the dashboard's series charts")


class FigurePublic(BaseModel):
    value: Number = Field(description="The indicator's value (null when undefined, e.g. a median of nothing)")
    breakdown: dict[str, Number] | None = Field(default=None, description="The value by category, when defined so")
    splits: dict[str, dict[str, Number]] | None = Field(
        default=None,
        description="Firm indicators: the firms counted by size_class (micro, small, medium, large) and by "
        "ownership (women_owned, women_led, youth_led: overlapping; other; not_recorded)",
    )


class FeedFreshness(BaseModel):
    status: Literal["ok", "unreachable", "starting"] = Field(
        description="ok: the last poll answered; unreachable: it failed (figures are as of last_change_at)"
    )
    position: int = Field(description="Sequence number of the last change applied")
    last_change_at: datetime | None = Field(description="When the last applied change was committed at its source")
    applied_at: datetime | None = Field(description="When the reporting service applied it")
    error: str | None = None


class FreshnessPublic(BaseModel):
    as_of: datetime | None = Field(description="The time of the last change applied from any feed")
    feeds: dict[str, FeedFreshness]


class PeriodPublic(BaseModel):
    start: date | None = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")


class IndicatorsPublic(BaseModel):
    filters: dict[str, str] = Field(description="The filters applied, including the caller's agency when forced")
    period: PeriodPublic
    as_of: datetime | None = Field(description="The time of the last change applied from any feed")
    freshness: dict[str, FeedFreshness]
    indicators: dict[str, FigurePublic]


class SeriesPeriod(BaseModel):
    label: str = Field(description="2024-03 or 2024-Q1")
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")


class SeriesValues(BaseModel):
    values: list[Number]
    breakdown: dict[str, list[Number]] | None = None


class SeriesPublic(BaseModel):
    filters: dict[str, str]
    granularity: Granularity
    periods: list[SeriesPeriod]
    as_of: datetime | None
    freshness: dict[str, FeedFreshness]
    series: dict[str, SeriesValues]


class DefinitionPublic(BaseModel):
    key: str
    label: str
    section: str
    unit: str
    kind: str = Field(description="stock (at the period's last day), flow (in the period) or cohort")
    counts: str = Field(description="What is counted")
    source: str = Field(description="From which records")
    date: str = Field(description="Which date places a record in a period")
    breakdown_by: str | None
    breakdown: list[str]
    splits: dict[str, list[str]] = Field(description="Firm indicators: the splits' categories by name")
    breakdown_unit: str = Field(description="What the breakdown's categories count (most often the unit)")


class ClusterFiguresPublic(BaseModel):
    id: str
    name: str
    programme_id: str | None
    country: str
    subdivision: str | None
    sector_isic: str
    latitude: float | None
    longitude: float | None
    jobs: int | None
    firms: int = Field(description="Firms of the cluster registered by the period's last day")
    horizontal_networks_active: int
    vertical_networks_active: int
    linkages_proposed: int = Field(description="Linkages with a supplier of the cluster proposed in the period")
    linkages_contracted: int = Field(description="Of those, reached contracted or active by the period's last day")
