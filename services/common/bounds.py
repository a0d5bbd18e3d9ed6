"""The bounds of what API input may hold: one set of annotated types for every service.

A value past these bounds is a 422 naming the field, never a database error: integers
fit the 32-bit columns they are stored in, floats are finite and within what their
meaning allows (so sums and products of them stay finite too), and text holds no
control characters (NUL is refused by PostgreSQL; the others only corrupt logs,
exports and displays), nor lone surrogates (which no database can encode). Free text
(descriptions, notes) may have line breaks and tabs; every other text is one line.

Request bodies are strict about types (``Strict()``): ``true`` or ``"12"`` is not a
count. Query parameters arrive as text, so their types (``Query*``) keep the bounds
but not the strictness, and so do bulk imports, which validate file cells (``"12"``)
with ``model_validate(..., strict=False)``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

INT32_MAX = 2**31 - 1  # PostgreSQL INTEGER, the type of every count column
MAX_QUANTITY = 1e12  # capacities per month, in any unit: far above any plant
MAX_AMOUNT = 1e15  # money, in any currency: above any programme's budget
MAX_WEIGHT = 1e6  # relative weights: any ratio that matters, and their sum stays finite
ID_PATTERN = r"^[A-Za-z0-9_-]+$"  # ids are ``prefix_ULID`` (services.common.ids)

_LINE_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FREE_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _refuse(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found is not None:
            raise PydanticCustomError(
                "control_character",
                "{what} may not hold the control character {character}",
                {"what": what, "character": f"U+{ord(found.group()):04X}"},
            )
        return value

    return AfterValidator(check)


_ONE_LINE = _refuse(_LINE_FORBIDDEN, "one line of text")
_FREE = _refuse(_FREE_TEXT_FORBIDDEN, "text")


def has_control_character(value: str) -> bool:
    """Whether ``value`` holds a character no line of text may (a decoded cursor, a header)."""
    return _LINE_FORBIDDEN.search(value) is not None


def line(max_length: int, min_length: int = 0) -> object:
    """One line of text of at most ``max_length`` characters: no control characters at all."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length), _ONE_LINE]


# --- text

Name = Annotated[str, StringConstraints(min_length=1, max_length=200), _ONE_LINE]
FreeText = Annotated[str, StringConstraints(max_length=5000), _FREE]  # descriptions, capabilities: lines and tabs
Note = Annotated[str, StringConstraints(max_length=4000), _FREE]
Code = Annotated[str, StringConstraints(min_length=1, max_length=40), _ONE_LINE]  # scheme codes, tags
RecordId = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=ID_PATTERN)]
SearchQuery = Annotated[str, StringConstraints(max_length=100), _ONE_LINE]
Cursor = Annotated[str, StringConstraints(max_length=500, pattern=r"^[A-Za-z0-9_=-]*$")]  # base64url
Url = Annotated[str, StringConstraints(max_length=300), _ONE_LINE]
Email = Annotated[
    str, StringConstraints(max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), _ONE_LINE
]  # the pattern's \s does not cover every control character

# --- numbers in request bodies (strict: no "12", no true)

Count = Annotated[int, Strict(), Field(ge=0, le=INT32_MAX)]
Version = Annotated[int, Strict(), Field(ge=1, le=INT32_MAX)]
Quantity = Annotated[float, Strict(), Field(ge=0, le=MAX_QUANTITY, allow_inf_nan=False)]
PositiveQuantity = Annotated[float, Strict(), Field(gt=0, le=MAX_QUANTITY, allow_inf_nan=False)]
Amount = Annotated[float, Strict(), Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]
Share = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
Weight = Annotated[float, Strict(), Field(ge=0, le=MAX_WEIGHT, allow_inf_nan=False)]
Latitude = Annotated[float, Strict(), Field(ge=-90, le=90, allow_inf_nan=False, description="WGS84 latitude")]
Longitude = Annotated[float, Strict(), Field(ge=-180, le=180, allow_inf_nan=False, description="WGS84 longitude")]
Flag = Annotated[bool, Strict()]

# --- numbers in query strings (text by nature: bounded, not strict)

QueryCount = Annotated[int, Field(ge=0, le=INT32_MAX)]
QueryShare = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


def _iso_date(value: Any) -> Any:
    # Lax parsing reads a number (0, "0") as a Unix time: a date is YYYY-MM-DD text (or,
    # from a spreadsheet cell, already a date), in bodies and query strings alike.
    if isinstance(value, date) or (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        return value
    raise PydanticCustomError("date_format", "Must be a date as YYYY-MM-DD")


FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)  # room for any programme, and for periods around it


def _day_in_range(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise PydanticCustomError(
            "date_range", "Must be a date from {first} to {last}", {"first": str(FIRST_DAY), "last": str(LAST_DAY)}
        )
    return value


Day = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_day_in_range)]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:
    # As for dates: lax parsing would read a number as a Unix time, and a time without
    # an offset is ambiguous; a moment is RFC 3339 text with its offset.
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise PydanticCustomError(
        "datetime_format", "Must be an RFC 3339 date-time with its offset, e.g. 2026-12-07T02:00:00Z"
    )


def _moment_in_range(value: datetime) -> datetime:
    first, last = (datetime.combine(day, datetime.min.time(), UTC) for day in (FIRST_DAY, LAST_DAY))
    if not first <= value <= last:
        raise PydanticCustomError(
            "datetime_range",
            "Must be a moment from {first} to {last}",
            {"first": str(FIRST_DAY), "last": str(LAST_DAY)},
        )
    return value.astimezone(UTC)


Moment = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_moment_in_range)]  # RFC 3339, in UTC


class StrictInput(BaseModel):
    """API input: unknown fields are refused, not ignored (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def rule_broken(model: str, problems: list[tuple[tuple[str | int, ...], str]], value: object = None) -> ValidationError:
    """Errors of a cross-field rule, each located at the field it is about.

    Raised inside a model validator, pydantic reports these errors at their own
    locations (e.g. ``members.2.role``), so a 422 names the field, not the model.
    """
    details = [
        InitErrorDetails(type=PydanticCustomError("rule", "{reason}", {"reason": reason}), loc=loc, input=value)
        for loc, reason in problems
    ]
    return ValidationError.from_exception_data(model, details)
