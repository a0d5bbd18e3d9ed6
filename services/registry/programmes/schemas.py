from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from services.common.bounds import Amount, FreeText, Name, RecordId, SearchQuery, rule_broken
from services.common.codes import CountryCode, CurrencyCode
from services.registry.schemas import CreateBase, RecordPublic, RecordQuery, partial


class Phase(StrEnum):
    """The three stages of a cluster programme: pilots, scaling up, national policy."""

    pilot = "pilot"
    upscaling = "upscaling"
    national_policy = "national_policy"


class ProgrammeFields(CreateBase):
    name: Name
    country: CountryCode
    phase: Phase
    budget_amount: Amount | None = None
    budget_currency: CurrencyCode | None = None
    start_date: date
    end_date: date | None = None
    description: FreeText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.end_date and self.end_date < self.start_date:
            raise rule_broken(type(self).__name__, [(("end_date",), "end_date is before start_date")])
        if (self.budget_amount is None) != (self.budget_currency is None):
            missing = "budget_currency" if self.budget_currency is None else "budget_amount"
            raise rule_broken(type(self).__name__, [((missing,), "budget_amount and budget_currency go together")])
        return self


class ProgrammeCreate(ProgrammeFields):
    """A new programme."""


ProgrammeUpdate = partial(ProgrammeCreate, "ProgrammeUpdate")


class ProgrammePublic(RecordPublic, ProgrammeFields):
    agency_id: str


class ProgrammeQuery(RecordQuery):
    country: CountryCode | None = None
    phase: Phase | None = None
    agency_id: RecordId | None = None
    q: SearchQuery | None = Field(default=None, description="Text in the name or description")
