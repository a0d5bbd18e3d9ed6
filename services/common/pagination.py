"""Cursor pagination: ``limit`` and ``cursor`` in, ``items`` and ``next_cursor`` out.

The cursor is an opaque base64url token holding the sort key of the last item
returned; the next page is ``key > last`` (keyset pagination), so pages stay
stable while records are added and every list costs an index range scan.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bounds import Cursor, QueryCount, has_control_character
from services.common.errors import invalid_field

T = TypeVar("T")

# Marks a ``limit`` that ``make_page_params`` checks: the OpenAPI document states its
# bounds from the service's settings (``services.common.openapi``).
PAGE_LIMIT_EXTENSION = "x-page-limit"
_LIMIT_DESCRIPTION = "Items per page."
_CURSOR_DESCRIPTION = "The next_cursor of the previous page."
PageLimit = Annotated[
    QueryCount | None, Field(description=_LIMIT_DESCRIPTION, json_schema_extra={PAGE_LIMIT_EXTENSION: True})
]
PageCursor = Annotated[Cursor | None, Field(description=_CURSOR_DESCRIPTION)]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: str | None  # the decoded cursor: the last key of the previous page


def encode_cursor(key: str) -> str:
    raw = json.dumps({"k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = payload["k"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise invalid_field("cursor", "not a cursor returned by this API", "invalid_cursor", "query") from exc
    if not isinstance(key, str) or has_control_character(key):
        raise invalid_field("cursor", "not a cursor returned by this API", "invalid_cursor", "query")
    return key


def make_page_params(settings: Any, limit: int | None, cursor: str | None) -> PageParams:
    """Validate ``limit`` against the service's maximum and decode ``cursor``."""
    if limit is None:
        limit = settings.page_size_default
    if not 1 <= limit <= settings.page_size_max:
        raise invalid_field("limit", f"must be between 1 and {settings.page_size_max}", "out_of_range", "query")
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


class ListQuery(BaseModel):
    """Query parameters of every list; lists with filters extend it.

    Unknown query parameters are refused (422) rather than silently ignored, so a
    misspelt filter never returns an unfiltered list.
    """

    model_config = ConfigDict(extra="forbid")

    limit: PageLimit = None
    cursor: PageCursor = None


def page_params(
    request: Request,
    limit: Annotated[
        QueryCount | None, Query(description=_LIMIT_DESCRIPTION, json_schema_extra={PAGE_LIMIT_EXTENSION: True})
    ] = None,
    cursor: Annotated[Cursor | None, Query(description=_CURSOR_DESCRIPTION)] = None,
) -> PageParams:
    return make_page_params(request.app.state.settings, limit, cursor)


PageParamsDep = Annotated[PageParams, Depends(page_params)]


async def fetch_page(
    session: AsyncSession,
    statement: Select[Any],
    *,
    key: Any,  # a unique, indexed column attribute
    params: PageParams,
) -> tuple[list[Any], str | None]:
    """Run ``statement`` ordered by the unique ``key`` column, one page at a time."""
    if params.after is not None:
        statement = statement.where(key > params.after)
    rows = list((await session.scalars(statement.order_by(key).limit(params.limit + 1))).all())
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(getattr(rows[-1], key.key))
    return rows, None
