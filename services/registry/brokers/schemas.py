from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from services.common.bounds import Day, Email, Name, RecordId, SearchQuery, line
from services.common.codes import CountryCode
from services.registry.schemas import CreateBase, DistinctList, RecordPublic, RecordQuery, partial

Language = Annotated[line(35, 2), Field(description="A language tag, e.g. es, en, hi")]  # type: ignore[valid-type]


class BrokerStatus(StrEnum):
    """What a broker has completed: training, then certification."""

    trained = "trained"
    certified = "certified"


class BrokerFields(CreateBase):
    name: Name
    email: Email | None = None
    country: CountryCode
    organisation: Name | None = Field(default=None, description="Employer")
    trained_on: Day | None = Field(default=None, description="When the broker completed training")
    certified_on: Day | None = Field(default=None, description="When certified; requires trained_on, not before it")
    cluster_ids: DistinctList(RecordId, 50) = Field(  # type: ignore[valid-type]
        default=[], description="Clusters the broker works in"
    )
    languages: DistinctList(Language, 20) = []  # type: ignore[valid-type]

    @field_validator("certified_on")
    @classmethod
    def _certified_after_training(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is None or "trained_on" not in info.data:  # trained_on itself failed: reported there
            return value
        trained_on: Day | None = info.data["trained_on"]
        if trained_on is None:
            raise ValueError("certification requires trained_on")
        if value < trained_on:
            raise ValueError(f"certified_on is before trained_on ({trained_on})")
        return value


class BrokerCreate(BrokerFields):
    """A new cluster development agent."""


BrokerUpdate = partial(BrokerCreate, "BrokerUpdate")


class BrokerPublic(RecordPublic, BrokerFields):
    agency_id: str


class BrokerQuery(RecordQuery):
    country: CountryCode | None = None
    cluster_id: RecordId | None = None
    status: BrokerStatus | None = Field(
        default=None, description="trained: has a training date (certified brokers included); certified: is certified"
    )
    agency_id: RecordId | None = None
    q: SearchQuery | None = Field(default=None, description="Text in the name or organisation")
