from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field, ValidationInfo, field_validator

from services.common.bounds import Count, Day, FreeText, Name, RecordId, SearchQuery
from services.common.codes import CountryCode
from services.registry.schemas import CreateBase, Place, RecordPublic, RecordQuery, Strict, partial


class ActivityKind(StrEnum):
    training = "training"
    awareness_event = "awareness_event"
    diffusion_event = "diffusion_event"
    workshop = "workshop"
    exposure_visit = "exposure_visit"
    trade_fair = "trade_fair"
    policy_dialogue = "policy_dialogue"
    other = "other"


class Participants(Strict):
    """How many took part, by group."""

    entrepreneurs: Count = 0
    brokers: Count = 0
    policy_makers: Count = 0
    private_sector_leaders: Count = 0
    academics: Count = 0
    other: Count = 0


class ActivityFields(CreateBase, Place):
    title: Name
    kind: ActivityKind
    start_date: Day
    end_date: Day | None = Field(default=None, description="Last day, for activities longer than a day")
    programme_id: RecordId | None = None
    cluster_id: RecordId | None = None
    participants: Participants = Field(default_factory=Participants)
    women_participants: Count | None = Field(default=None, description="Women among the participants")
    description: FreeText | None = None

    @field_validator("end_date")
    @classmethod
    def _not_before_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start_date: date | None = info.data.get("start_date")  # absent when start_date itself failed
        if value is not None and start_date is not None and value < start_date:
            raise ValueError(f"end_date is before start_date ({start_date})")
        return value

    @field_validator("women_participants")
    @classmethod
    def _among_participants(cls, value: int | None, info: ValidationInfo) -> int | None:
        participants: Participants | None = info.data.get("participants")  # absent when it failed itself
        total = sum(participants.model_dump().values()) if participants is not None else None
        if value is not None and total is not None and value > total:
            raise ValueError(f"is more than the {total} participants")
        return value


class ActivityCreate(ActivityFields):
    """A new activity."""


ActivityUpdate = partial(ActivityCreate, "ActivityUpdate")


class ActivityPublic(RecordPublic, ActivityFields):
    agency_id: str


class ActivityQuery(RecordQuery):
    kind: ActivityKind | None = None
    programme_id: RecordId | None = None
    cluster_id: RecordId | None = None
    country: CountryCode | None = None
    agency_id: RecordId | None = None
    q: SearchQuery | None = Field(default=None, description="Text in the title or description")
