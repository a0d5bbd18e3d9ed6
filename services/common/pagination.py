"""Cursor pagination: ``limit``, ``cursor``, ``sort`` and ``count`` in; ``items``,
``next_cursor`` and (when asked) ``total`` out.

The cursor is an opaque base64url token holding the sort key of the last item
returned (its id and, under a ``sort``, its value of the sorted field); the next page
is the keyset after it, ``(value, id) > (last value, last id)``, so pages stay stable
while records are added and every list costs an index range scan. Each list names
the fields it may be sorted by; ties always break by id, so the order is total.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Column, ColumnElement, Row, Select, Table, and_, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bounds import Cursor, QueryCount, has_control_character
from services.common.errors import invalid_field

T = TypeVar("T")
U = TypeVar("U")

# Marks a ``limit`` that ``make_page_params`` checks: the OpenAPI document states its
# bounds from the service's settings (``services.common.openapi``).
PAGE_LIMIT_EXTENSION = "x-page-limit"
_LIMIT_DESCRIPTION = "Items per page."
_CURSOR_DESCRIPTION = "The next_cursor of the previous page."
_SORT_DESCRIPTION = (
    "Order of the list: a field name, with `-` before it for descending (e.g. `name`, `-updated_at`). "
    "Each list's fields are in docs/api.md (and a 422 naming `sort` lists them); ties break by id. "
    "Absent: by id (firm searches with `q`: by relevance). Keep it unchanged while following cursors."
)
_COUNT_DESCRIPTION = "true: the page also carries `total`, the number of items in the whole (filtered) list."
PageLimit = Annotated[
    QueryCount | None, Field(description=_LIMIT_DESCRIPTION, json_schema_extra={PAGE_LIMIT_EXTENSION: True})
]
PageCursor = Annotated[Cursor | None, Field(description=_CURSOR_DESCRIPTION)]
SortField = Annotated[str, StringConstraints(max_length=41, pattern=r"^-?[a-z][a-z0-9_]*$")]
PageSort = Annotated[SortField | None, Field(description=_SORT_DESCRIPTION)]
PageCount = Annotated[bool, Field(description=_COUNT_DESCRIPTION)]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = None
    total: int | None = Field(default=None, description="Items in the whole list; only when asked with count=true")

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        """The same page with each item converted (e.g. rows to their public model)."""
        return Page[U](items=[convert(item) for item in self.items], next_cursor=self.next_cursor, total=self.total)


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: str | None  # the decoded cursor: the last key (id) of the previous page
    sort: str | None = None  # as asked, e.g. "-updated_at"; None: the list's default order
    count: bool = False
    after_value: Any = None  # the cursor's value of the sorted field (JSON: dates as ISO strings)
    cursor_sort: str | None = None  # the order the cursor was made under


@dataclass(frozen=True)
class SortKey:
    """A list order other than by id: an SQL expression, ties broken by id ascending."""

    name: str  # as a cursor records it, e.g. "-name" or "relevance"
    expression: ColumnElement[Any]
    descending: bool = False


def _encode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_cursor(key: str, sort: str | None = None, value: Any = None) -> str:
    """The cursor after the item of id ``key`` (and ``value`` of the order ``sort``)."""
    if sort is None:
        return _encode({"k": key})
    if isinstance(value, datetime | date):
        value = value.isoformat()
    return _encode({"k": key, "s": sort, "v": value})


def _bad_cursor() -> Exception:
    return invalid_field("cursor", "not a cursor returned by this API", "invalid_cursor", "query")


def _decode(cursor: str) -> tuple[str, str | None, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = payload["k"]
        sort = payload.get("s")
        value = payload.get("v")
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _bad_cursor() from exc
    if not isinstance(key, str) or has_control_character(key):
        raise _bad_cursor()
    if sort is not None and (not isinstance(sort, str) or not isinstance(value, str | int | float)):
        raise _bad_cursor()
    return key, sort, value


def decode_cursor(cursor: str) -> str:
    """The id a cursor resumes after."""
    return _decode(cursor)[0]


def make_page_params(
    settings: Any, limit: int | None, cursor: str | None, sort: str | None = None, count: bool = False
) -> PageParams:
    """Validate ``limit`` against the service's maximum and decode ``cursor``.

    ``sort`` is checked against the list's fields by ``fetch_page``, which knows them.
    """
    if limit is None:
        limit = settings.page_size_default
    if not 1 <= limit <= settings.page_size_max:
        raise invalid_field("limit", f"must be between 1 and {settings.page_size_max}", "out_of_range", "query")
    if not cursor:
        return PageParams(limit=limit, after=None, sort=sort, count=count)
    key, cursor_sort, value = _decode(cursor)
    return PageParams(limit=limit, after=key, sort=sort, count=count, after_value=value, cursor_sort=cursor_sort)


class ListQuery(BaseModel):
    """Query parameters of every list; lists with filters extend it.

    Unknown query parameters are refused (422) rather than silently ignored, so a
    misspelt filter never returns an unfiltered list.
    """

    model_config = ConfigDict(extra="forbid")

    limit: PageLimit = None
    cursor: PageCursor = None
    sort: PageSort = None
    count: PageCount = False

    def page_params(self, settings: Any) -> PageParams:
        return make_page_params(settings, self.limit, self.cursor, self.sort, self.count)


async def page_params(
    request: Request,
    limit: Annotated[
        QueryCount | None, Query(description=_LIMIT_DESCRIPTION, json_schema_extra={PAGE_LIMIT_EXTENSION: True})
    ] = None,
    cursor: Annotated[Cursor | None, Query(description=_CURSOR_DESCRIPTION)] = None,
    sort: Annotated[SortField | None, Query(description=_SORT_DESCRIPTION)] = None,
    count: Annotated[bool, Query(description=_COUNT_DESCRIPTION)] = False,
) -> PageParams:
    return make_page_params(request.app.state.settings, limit, cursor, sort, count)


PageParamsDep = Annotated[PageParams, Depends(page_params)]


def sortable(table: Any, *names: str) -> dict[str, Any]:
    """A list's ``sorts`` from its table's columns (each NOT NULL, so the keyset is total)."""
    return {name: getattr(table, name) for name in names}


def sort_key(params: PageParams, key: Any, sorts: Mapping[str, Any]) -> SortKey | None:
    """The order ``params`` asks for among the list's ``sorts`` (field name: column or
    expression; ``id`` is always offered). None means by ``key`` ascending.

    An unknown field is a 422 naming ``sort`` and listing the fields; a cursor made
    under another order is a 422 naming ``cursor``.
    """
    chosen = None
    if params.sort is not None and params.sort != "id":
        field = params.sort.removeprefix("-")
        offered = {"id": key, **sorts}
        if field not in offered:
            allowed = ", ".join(sorted(offered))
            raise invalid_field(
                "sort", f"cannot sort by '{field}'; this list sorts by: {allowed}", "invalid_sort", "query"
            )
        chosen = SortKey(params.sort, offered[field], params.sort.startswith("-"))
    if params.after is not None and params.cursor_sort != (chosen.name if chosen else None):
        raise invalid_field("cursor", "this cursor was made under another sort", "invalid_cursor", "query")
    return chosen


def _cursor_value(order: SortKey, value: Any) -> Any:
    """The cursor's JSON value as the sorted expression's Python type (dates come as ISO text)."""
    column_type = order.expression.type
    column_type = getattr(column_type, "impl_instance", column_type)  # a TypeDecorator: what it stores
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return value
    try:
        if python_type is datetime and isinstance(value, str):
            return datetime.fromisoformat(value)
        if python_type is date and isinstance(value, str):
            return date.fromisoformat(value)
    except ValueError as exc:
        raise _bad_cursor() from exc
    if python_type in (int, float) and not isinstance(value, int | float):
        raise _bad_cursor()
    if python_type is str and not isinstance(value, str):
        raise _bad_cursor()
    return value


@functools.cache
def _model_columns(table: Table, model: type[BaseModel]) -> tuple[tuple[str, ...], tuple[Column[Any], ...]]:
    """The field names of ``model`` and the columns of ``table`` holding them, in field order."""
    missing = [name for name in model.model_fields if name not in table.c]
    if missing:
        raise TypeError(f"{model.__name__} has fields that are not columns of {table.name}: {', '.join(missing)}")
    return tuple(model.model_fields), tuple(table.c[name] for name in model.model_fields)


def _as_model(statement: Select[Any], key: Any, model: type[BaseModel] | None) -> Select[Any]:
    """``statement`` selecting only the columns of ``key``'s table that ``model`` shows."""
    if model is None:
        return statement
    return statement.with_only_columns(*_model_columns(key.table, model)[1])


def _items(rows: Sequence[Row[Any]], key: Any, model: type[BaseModel] | None, whole_rows: bool) -> list[Any]:
    if model is not None:
        # From a dict of the row's values: pydantic validates a dict about twice as fast as
        # it reads the attributes of a row, and there is no ORM object to build first.
        names = _model_columns(key.table, model)[0]
        return [model.model_validate(dict(zip(names, row, strict=False))) for row in rows]
    return list(rows) if whole_rows else [row[0] for row in rows]


async def fetch_page(
    session: AsyncSession,
    statement: Select[Any],
    *,
    key: Any,  # a unique, indexed column attribute
    params: PageParams,
    sorts: Mapping[str, Any] | None = None,
    whole_rows: bool = False,
    model: type[BaseModel] | None = None,
) -> Page[Any]:
    """Run ``statement`` one page at a time: by the unique ``key`` column, or by the field
    ``params.sort`` names among ``sorts``, ties broken by ``key``.

    The page's items are the statement's first entity (e.g. ORM rows), or with
    ``whole_rows`` the result rows (a Core ``select(table)``), or with ``model`` that
    model validated from the columns of ``key``'s table named as its fields (every field
    must be one; the statement's own columns are replaced): a page to render with no ORM
    objects built. Its ``total`` is set when ``params.count`` asks for it.
    """
    order = sort_key(params, key, sorts or {})
    total = None
    if params.count:
        counted = select(func.count()).select_from(statement.order_by(None).subquery())
        total = int(await session.scalar(counted) or 0)
    statement = _as_model(statement, key, model)
    if order is None:
        if params.after is not None:
            statement = statement.where(key > params.after)
        statement = statement.order_by(key)
    else:
        expression = order.expression
        if params.after is not None:
            value = _cursor_value(order, params.after_value)
            beyond = expression < value if order.descending else expression > value
            statement = statement.where(or_(beyond, and_(expression == value, key > params.after)))
        statement = statement.add_columns(expression).order_by(
            expression.desc() if order.descending else expression.asc(), key
        )
    results = list((await session.execute(statement.limit(params.limit + 1))).all())
    next_cursor = None
    if len(results) > params.limit:
        results = results[: params.limit]
        last = results[-1]
        last_key = getattr(last, key.key) if whole_rows or model is not None else getattr(last[0], key.key)
        next_cursor = encode_cursor(last_key) if order is None else encode_cursor(last_key, order.name, last[-1])
    return Page(items=_items(results, key, model, whole_rows), next_cursor=next_cursor, total=total)


def page_in_memory(items: Sequence[T], key: Callable[[T], str], params: PageParams) -> Page[T]:
    """One page of a fixed, ordered list held in memory (e.g. a classification): the same
    ``limit``, ``cursor`` and ``count`` as every list; its order is its own (no ``sort``)."""
    if params.sort is not None:
        raise invalid_field("sort", "this list comes in its own order; it takes no sort", "invalid_sort", "query")
    start = 0
    if params.after is not None:
        if params.cursor_sort is not None:
            raise _bad_cursor()
        keys = [key(item) for item in items]
        if params.after not in keys:
            raise _bad_cursor()
        start = keys.index(params.after) + 1
    chosen = list(items[start : start + params.limit])
    more = start + params.limit < len(items)
    return Page(
        items=chosen,
        next_cursor=encode_cursor(key(chosen[-1])) if more and chosen else None,
        total=len(items) if params.count else None,
    )


@dataclass(frozen=True)
class Tiers:
    """An order by relevance tiers: the rows meeting each condition in turn (the first
    condition the best), each tier by id. Tier by tier, a page stops reading as soon as
    it is full, so the first page of a broad search costs no more than a narrow one.

    The conditions need not exclude each other: a row counts in its best tier only.
    """

    conditions: tuple[ColumnElement[bool], ...]
    name: str = "relevance"  # as cursors record it


async def fetch_tiered_page(
    session: AsyncSession,
    statement: Select[Any],
    *,
    key: Any,
    params: PageParams,
    tiers: Tiers,
    model: type[BaseModel] | None = None,
) -> Page[Any]:
    """``fetch_page`` in the order of ``tiers`` (used when the list's ``sort`` is not given):
    the cursor holds the tier and the id of the last item. Its items are the statement's
    first entity, or as in ``fetch_page``, ``model`` validated from the row's columns."""
    if params.after is not None and (params.cursor_sort != tiers.name or not isinstance(params.after_value, int)):
        raise invalid_field("cursor", "this cursor was made under another sort", "invalid_cursor", "query")
    total = None
    if params.count:
        counted = select(func.count()).select_from(statement.order_by(None).subquery())
        total = int(await session.scalar(counted) or 0)
    start = 0 if params.after is None else params.after_value
    if not 0 <= start < len(tiers.conditions):
        raise _bad_cursor()
    statement = _as_model(statement, key, model)
    found: list[tuple[Row[Any], int]] = []
    for tier in range(start, len(tiers.conditions)):
        better = [not_(condition) for condition in tiers.conditions[:tier]]
        narrowed = statement.where(tiers.conditions[tier], *better)
        if tier == start and params.after is not None:
            narrowed = narrowed.where(key > params.after)
        wanted = params.limit + 1 - len(found)
        rows = (await session.execute(narrowed.order_by(key).limit(wanted))).all()
        found += [(row, tier) for row in rows]
        if len(found) > params.limit:
            break
    next_cursor = None
    if len(found) > params.limit:
        found = found[: params.limit]
        row, tier = found[-1]
        last_key = getattr(row, key.key) if model is not None else getattr(row[0], key.key)
        next_cursor = encode_cursor(last_key, tiers.name, tier)
    return Page(items=_items([row for row, _ in found], key, model, False), next_cursor=next_cursor, total=total)
