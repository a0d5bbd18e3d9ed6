"""``/v1/shortlists``: request a shortlist, and read past ones with their explanations."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import Text, bindparam, cast, select

from services.common.bounds import RecordId
from services.common.deps import SessionDep
from services.common.errors import PROBLEM_RESPONSES
from services.common.idempotency import IdempotencyDep
from services.common.jsontext import json_response, with_members
from services.common.pagination import Page, PageParamsDep, fetch_page, sortable
from services.common.principal import PrincipalDep
from services.matching.deps import CatalogueDep
from services.matching.ownership import readable, readable_rows, require_writer
from services.matching.shortlists.schemas import ShortlistPublic, ShortlistRequest
from services.matching.shortlists.service import SHORTLISTS, build_shortlist, public_of, standards_of, store_shortlists
from services.matching.tables import Shortlist

# A shortlist's owner columns and its stored JSON as text: not parsed, validated and rendered again.
STORED_SHORTLIST = select(
    SHORTLISTS.c.id,
    SHORTLISTS.c.owner,
    SHORTLISTS.c.agency_id,
    cast(SHORTLISTS.c.result, Text).label("result"),
    cast(SHORTLISTS.c.request, Text).label("request"),
).where(SHORTLISTS.c.id == bindparam("id"))
# The fields this service's lists sort by (``sort``; see services/common/pagination.py).
SHORTLIST_SORTS = sortable(Shortlist, "created_at")
router = APIRouter(prefix="/v1/shortlists", tags=["shortlists"], responses=PROBLEM_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=ShortlistPublic,
    operation_id="create_shortlist",
    summary="Request a supplier shortlist",
    description="The exact top suppliers under the buyer standards, each with every criterion's value, "
    "weight and contribution; optionally the development candidates and their gaps.",
)
async def request_shortlist(
    request: Request,
    body: ShortlistRequest,
    session: SessionDep,
    principal: PrincipalDep,
    catalogue: CatalogueDep,
    idempotency: IdempotencyDep,
) -> Response:
    require_writer(principal)
    standards, version = await standards_of(session, principal, body)
    shortlist = await build_shortlist(
        catalogue,
        principal=principal,
        request=body,
        standards=standards,
        standards_id=body.standards_id,
        standards_version=version,
    )
    if idempotency.key is None:
        # Committed with the other shortlists of the moment, before this answer is sent. The
        # request's transaction (reads of saved standards, if any) ends first: on SQLite it
        # holds the write lock.
        if session.in_transaction():
            await session.commit()
        await request.app.state.shortlist_writes.write(shortlist)
    else:
        # With its Idempotency-Key record, in the request's own transaction: both or neither.
        await store_shortlists(session, [shortlist])
    # The body is the bytes stored: no response-model validation or encoding again.
    return await idempotency.respond(201, shortlist.document, {"Location": f"/v1/shortlists/{shortlist.id}"})


@router.get("", response_model=Page[ShortlistPublic], operation_id="list_shortlists", summary="List your shortlists")
async def list_shortlists(session: SessionDep, principal: PrincipalDep, page: PageParamsDep) -> Response:
    statement = select(Shortlist)
    visible = readable_rows(principal, Shortlist)
    if visible is not None:
        statement = statement.where(visible)
    rows = await fetch_page(session, statement, key=Shortlist.id, params=page, sorts=SHORTLIST_SORTS)
    return json_response(rows.map(public_of))  # rendered once, not validated again as the response model


@router.get(
    "/{shortlist_id}",
    response_model=ShortlistPublic,
    operation_id="read_shortlist",
    summary="A past shortlist, as it was returned",
)
async def read_shortlist(shortlist_id: RecordId, session: SessionDep, principal: PrincipalDep) -> Response:
    row = (await session.execute(STORED_SHORTLIST, {"id": shortlist_id})).one_or_none()
    readable(principal, row, "shortlist", shortlist_id)
    assert row is not None
    # The JSON stored when it was made, as it is: the same bytes as the answer to the POST.
    return json_response(with_members(row.result.encode(), {"request": row.request.encode()}))
