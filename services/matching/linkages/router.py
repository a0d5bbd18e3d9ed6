"""``/v1/linkages``: what came of a shortlist, stage by stage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlmodel import col

from services.common.bounds import RecordId
from services.common.deps import IfMatchHeader, SessionDep, check_if_match, version_etag
from services.common.errors import (
    PROBLEM_RESPONSES,
    Conflict,
    invalid_field,
)
from services.common.idempotency import IdempotencyDep
from services.common.ids import new_id
from services.common.pagination import Page, fetch_page, sortable
from services.common.principal import PrincipalDep
from services.matching.linkages.schemas import (
    STAGE_ORDER,
    LinkageCreate,
    LinkagePublic,
    LinkageQuery,
    LinkageUpdate,
    Stage,
    linkage_public,
)
from services.matching.linkages.suppliers import listed_suppliers
from services.matching.ownership import readable, readable_rows, writable
from services.matching.publish import publish
from services.matching.tables import Linkage, Shortlist

# The fields this service's lists sort by (``sort``; see services/common/pagination.py).
LINKAGE_SORTS = sortable(Linkage, "created_at", "updated_at", "stage")
router = APIRouter(prefix="/v1/linkages", tags=["linkages"], responses=PROBLEM_RESPONSES)


def _etag(row: Linkage) -> str:
    return version_etag(row.version)


# A stage is reached, not planned: its day may not be after today anywhere on earth
# (UTC+14 is the latest clock), so a user east of UTC can still date it by their own calendar.
LATEST_UTC_OFFSET = timedelta(hours=14)


def _stage_day(on: date | None, now: datetime) -> date:
    """The day a stage was reached: ``on``, or today (UTC); 422 when ``on`` is still to come."""
    if on is None:
        return now.date()
    latest = (now + LATEST_UTC_OFFSET).date()
    if on > latest:
        raise invalid_field("on", f"is in the future (latest accepted today: {latest.isoformat()})", "in_future")
    return on


def _check_move(current: Stage, target: Stage) -> None:
    if current is Stage.dropped:
        raise Conflict("A dropped linkage stays dropped; record a new one from a new shortlist")
    if target is not Stage.dropped and STAGE_ORDER.index(target) <= STAGE_ORDER.index(current):
        raise Conflict(f"A linkage moves forward: it is '{current}', so '{target}' is not a next stage")


@router.post(
    "",
    status_code=201,
    response_model=LinkagePublic,
    operation_id="create_linkage",
    summary="Record a linkage with a shortlisted supplier",
)
async def create_linkage(
    body: LinkageCreate, session: SessionDep, principal: PrincipalDep, idempotency: IdempotencyDep
) -> Response:
    shortlist = writable(principal, await session.get(Shortlist, body.shortlist_id), "shortlist", body.shortlist_id)
    assert isinstance(shortlist, Shortlist)
    listed = listed_suppliers(shortlist.result)
    if body.supplier_id not in listed:
        raise invalid_field("supplier_id", "is not among that shortlist's suppliers", "not_shortlisted")
    existing = await session.scalar(
        select(col(Linkage.id)).where(
            col(Linkage.shortlist_id) == body.shortlist_id, col(Linkage.supplier_id) == body.supplier_id
        )
    )
    if existing is not None:
        raise Conflict(f"Linkage {existing} already records this supplier for this shortlist")
    now = datetime.now(UTC)
    on = _stage_day(body.on, now)
    history = [{"stage": Stage.proposed.value, "on": on.isoformat(), "note": None}]
    if body.stage is not Stage.proposed:
        history.append({"stage": body.stage.value, "on": on.isoformat(), "note": None})
    row = Linkage(
        id=new_id("lnk"),
        owner=shortlist.owner,
        firm_id=shortlist.firm_id,
        agency_id=shortlist.agency_id,
        created_at=now,
        updated_at=now,
        shortlist_id=body.shortlist_id,
        supplier_id=body.supplier_id,
        supplier_kind=listed[body.supplier_id].kind.value,
        members=listed[body.supplier_id].members,
        stage=body.stage.value,
        history=history,
        development_actions=[a.model_dump(mode="json") for a in body.development_actions],
        gap=listed[body.supplier_id].item.get("gap"),
        notes=body.notes,
        version=1,
    )
    session.add(row)
    await session.flush()
    public = linkage_public(row)
    await publish(session, "linkage", row, public)
    return await idempotency.respond(201, public, {"ETag": _etag(row), "Location": f"/v1/linkages/{row.id}"})


@router.get("", response_model=Page[LinkagePublic], operation_id="list_linkages", summary="List your linkages")
async def list_linkages(
    request: Request, session: SessionDep, principal: PrincipalDep, query: Annotated[LinkageQuery, Query()]
) -> Page[LinkagePublic]:
    params = query.page_params(request.app.state.settings)
    statement = select(Linkage)
    visible = readable_rows(principal, Linkage)
    if visible is not None:
        statement = statement.where(visible)
    for name in ("shortlist_id", "supplier_id", "supplier_kind", "stage"):
        value = getattr(query, name)
        if value is not None:
            statement = statement.where(getattr(Linkage, name) == value)
    rows = await fetch_page(session, statement, key=Linkage.id, params=params, sorts=LINKAGE_SORTS)
    return rows.map(linkage_public)


@router.get("/{linkage_id}", response_model=LinkagePublic, operation_id="read_linkage", summary="Read a linkage")
async def read_linkage(
    linkage_id: RecordId, response: Response, session: SessionDep, principal: PrincipalDep
) -> LinkagePublic:
    row = readable(principal, await session.get(Linkage, linkage_id), "linkage", linkage_id)
    assert isinstance(row, Linkage)
    response.headers["ETag"] = _etag(row)
    return linkage_public(row)


@router.patch(
    "/{linkage_id}",
    response_model=LinkagePublic,
    operation_id="update_linkage",
    summary="Move a linkage to its next stage, or change its development actions",
)
async def update_linkage(
    linkage_id: RecordId,
    body: LinkageUpdate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchHeader = None,
) -> LinkagePublic:
    row = writable(principal, await session.get(Linkage, linkage_id, with_for_update=True), "linkage", linkage_id)
    assert isinstance(row, Linkage)
    check_if_match(if_match, row.version, "linkage")
    now = datetime.now(UTC)
    if body.stage is not None and body.stage.value != row.stage:
        _check_move(Stage(row.stage), body.stage)
        on = _stage_day(body.on, now)
        last = max(event["on"] for event in row.history)
        if on.isoformat() < last:
            raise invalid_field("on", f"is before the previous stage change ({last})", "before_previous")
        row.history = [*row.history, {"stage": body.stage.value, "on": on.isoformat(), "note": body.note}]
        row.stage = body.stage.value
    if body.development_actions is not None:
        row.development_actions = [a.model_dump(mode="json") for a in body.development_actions]
    if body.notes is not None:
        row.notes = body.notes
    row.version += 1
    row.updated_at = now
    await session.flush()
    public = linkage_public(row)
    await publish(session, "linkage", row, public, op="updated", version=row.version)
    response.headers["ETag"] = _etag(row)
    return public
