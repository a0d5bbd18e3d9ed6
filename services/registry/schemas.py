"""Schema pieces every registry resource shares."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from services.common.bounds import Latitude, Longitude, Moment, RecordId, StrictInput, rule_broken
from services.common.codes import CountryCode, SubdivisionCode, subdivision_country
from services.common.pagination import ListQuery


def _distinct(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def DistinctList(item: object, max_items: int = 100) -> object:  # noqa: N802 - reads as a type
    """A list of ``item`` without repeats (repeats are dropped, order kept)."""
    return Annotated[list[item], Field(max_length=max_items), AfterValidator(_distinct)]  # type: ignore[valid-type]


Strict = StrictInput  # every registry input model's base


class RecordQuery(ListQuery):
    """Query parameters of every registry list."""

    updated_since: Moment | None = Field(
        default=None,
        description="Only records created or changed at or after this moment (RFC 3339, e.g. "
        "2026-12-07T02:00:00Z): to sync incrementally. Deletions are not listed; follow the "
        "`*.deleted` events of GET /v1/events for them.",
    )


class CreateBase(Strict):
    agency_id: RecordId | None = Field(
        default=None, description="Owning agency; only an admin may set it (agencies own what they create)."
    )


class Place(BaseModel):
    """Country, subdivision and coordinates, checked against each other."""

    country: CountryCode
    subdivision: SubdivisionCode | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None

    @field_validator("subdivision")
    @classmethod
    def _in_country(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator, so that the error names the field; country is declared
        # first, so it is in info.data whenever it is valid itself.
        country = info.data.get("country")
        if value and country and subdivision_country(value) != country:
            raise ValueError(f"subdivision {value} is not in country {country}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.latitude is None) != (self.longitude is None):
            missing = "longitude" if self.longitude is None else "latitude"
            raise rule_broken(type(self).__name__, [((missing,), "latitude and longitude go together")])
        return self


class RecordPublic(BaseModel):
    """What every registry record shows besides its own fields."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    agency_id: str
    version: int
    created_at: datetime
    updated_at: datetime


def partial(model: type[BaseModel], name: str) -> type[BaseModel]:
    """The PATCH schema of ``model``: every field optional, unknown fields refused.

    Constraints and cross-field rules are not repeated here: the registry merges a
    patch into the stored record and validates the result with ``model`` itself.
    """
    fields = {
        field: (info.annotation | None, Field(default=None, description=info.description))  # type: ignore[operator]
        for field, info in model.model_fields.items()
        if field != "agency_id"
    }
    return create_model(name, __base__=Strict, __doc__=f"Fields of {model.__name__} to change.", **fields)  # type: ignore[call-overload, no-any-return]
