"""``/v1/events`` and ``/v1/event-types``: the events a key may read, in order, and their catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bounds import Cursor, QueryCount, line
from services.common.errors import PROBLEM_RESPONSES, invalid_field
from services.common.logsignal import poll_log
from services.common.pagination import PAGE_LIMIT_EXTENSION, make_page_params
from services.common.principal import Principal, PrincipalDep
from services.events.catalogue import EVENT_TYPES, check_types
from services.events.cursor import decode_cursor, encode_cursor
from services.events.schemas import EventPage, EventPublic, EventTypePublic
from services.events.tables import EVENTS
from services.events.visibility import readable_events

router = APIRouter(tags=["events"], responses=PROBLEM_RESPONSES)
MAX_WAIT_SECONDS = 8.0  # under the gateway's default deadline for an answer (10 s)
TypesFilter = line(2000)


async def head(session: AsyncSession) -> int:
    """The highest ``seq`` committed (0 when empty). Every ``seq`` below it is committed
    or never will be (writers take ``lock_sequence``), so it is a safe place to resume."""
    return int(await session.scalar(select(func.max(EVENTS.c.seq))) or 0)


async def read_events(
    session: AsyncSession, principal: Principal, *, after: int, limit: int, types: list[str] | None
) -> tuple[list[EventPublic], int]:
    """Up to ``limit`` events after ``after`` that ``principal`` reads, and the position to resume at."""
    end = await head(session)  # first: events committed while the page is read are left for the next call
    statement = (
        select(EVENTS.c.seq, EVENTS.c.id, EVENTS.c.type, EVENTS.c.created_at, EVENTS.c.data)
        .where(EVENTS.c.seq > after, EVENTS.c.seq <= end, readable_events(principal, EVENTS))
        .order_by(EVENTS.c.seq)
        .limit(limit)
    )
    if types is not None:
        statement = statement.where(EVENTS.c.type.in_(types))
    rows = (await session.execute(statement)).all()
    items = [EventPublic(id=r.id, type=r.type, created_at=r.created_at, data=r.data) for r in rows]
    position = rows[-1].seq if len(rows) == limit else max(after, end)
    return items, position


def _types(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise invalid_field("types", "name at least one event type, or leave it out", "empty", "query")
    return check_types(names, "types")


@router.get(
    "/v1/events",
    response_model=EventPage,
    operation_id="list_events",
    summary="Events your key may read, in order",
    description="The events of records your key may read through the API, oldest first. Keep `next_cursor` and "
    "pass it as `after` to read on: it survives restarts and is tied to your key's tenant (another "
    "tenant's cursor is a 400). With `wait` the call long-polls: it answers as soon as an event is "
    "there, or empty after `wait` seconds.",
)
async def list_events(
    request: Request,
    principal: PrincipalDep,
    after: Annotated[
        Cursor | None, Query(description="The next_cursor of the previous page; absent: from the start.")
    ] = None,
    types: Annotated[
        TypesFilter | None,  # type: ignore[valid-type]
        Query(description="Comma-separated event types (GET /v1/event-types); absent: every type."),
    ] = None,
    limit: Annotated[
        QueryCount | None, Query(description="Items per page.", json_schema_extra={PAGE_LIMIT_EXTENSION: True})
    ] = None,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for an event.")] = 0,
) -> EventPage:
    settings: Any = request.app.state.settings
    secret = settings.principal_secret.get_secret_value()
    page = make_page_params(settings, limit, None)
    wanted = _types(types)
    position = decode_cursor(after, principal, secret) if after else 0

    async def read() -> EventPage:
        nonlocal position
        async with request.app.state.read_sessionmaker() as session:
            items, position = await read_events(session, principal, after=position, limit=page.limit, types=wanted)
        return EventPage(items=items, next_cursor=encode_cursor(position, principal, secret))

    return await poll_log(
        request.app.state.engine, read, found=lambda events: bool(events.items), wait=wait, gone=request.is_disconnected
    )


@router.get(
    "/v1/events/cursor",
    response_model=EventPage,
    operation_id="read_events_cursor",
    summary="A cursor at the end of the events log, now",
    description="To sync from zero: take this cursor first, then list the records you need, then read "
    "`GET /v1/events?after=` the cursor: nothing that changed while you listed is missed. "
    "`items` is always empty.",
)
async def events_cursor(request: Request, principal: PrincipalDep) -> EventPage:
    secret = request.app.state.settings.principal_secret.get_secret_value()
    async with request.app.state.read_sessionmaker() as session:
        end = await head(session)
    return EventPage(items=[], next_cursor=encode_cursor(end, principal, secret))


@router.get(
    "/v1/event-types",
    response_model=list[EventTypePublic],
    operation_id="list_event_types",
    summary="The event catalogue",
    description="Every event type, what it means, what its data holds and who may read it.",
)
async def list_event_types(_principal: PrincipalDep) -> list[EventTypePublic]:
    return [
        EventTypePublic(type=t.name, description=t.description, source=t.source, audience=t.audience.value)
        for t in EVENT_TYPES
    ]
