"""``/v1/requests`` and ``/v1/invitations``: buyers' requests for quotation and suppliers' answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import and_, or_, select
from sqlmodel import col

from services.common.bounds import RecordId
from services.common.deps import IfMatchHeader, SessionDep, check_if_match, version_etag
from services.common.errors import PROBLEM_RESPONSES, Conflict, NotFound, ValidationFailed, field_error, invalid_field
from services.common.idempotency import IdempotencyDep
from services.common.ids import new_id
from services.common.pagination import Page, fetch_page, sortable
from services.common.principal import Principal, PrincipalDep
from services.matching.deps import BrokersDep, CatalogueDep, NowDep, SuppliersDep
from services.matching.ownership import owner_key, readable_rows, require_writer
from services.matching.requests import service
from services.matching.requests.access import (
    BrokerDirectory,
    SupplierSide,
    not_found,
    reads_as_buyer,
    supplier_side,
    writes_as_buyer,
)
from services.matching.requests.schemas import (
    AnswerCreate,
    AnswerFields,
    AnswerPublic,
    AwardCreate,
    Cancellation,
    Extension,
    InvitationQuery,
    MessageCreate,
    MessagePublic,
    MessageQuery,
    RequestCreate,
    RequestPublic,
    RequestQuery,
    RequestStatus,
    RequestUpdate,
    check_request_fields,
)
from services.matching.tables import BuyerRequest, Invitation, RequestMessage

# The fields this service's lists sort by (``sort``; see services/common/pagination.py).
REQUEST_SORTS = sortable(BuyerRequest, "title", "respond_by", "status", "created_at", "updated_at")
INVITATION_SORTS = sortable(Invitation, "created_at", "status")
MESSAGE_SORTS = sortable(RequestMessage, "created_at")
router = APIRouter(tags=["requests"], responses=PROBLEM_RESPONSES)


def _etag(row: BuyerRequest) -> str:
    return version_etag(row.version)


async def _buyer_row(session: SessionDep, principal: Principal, request_id: str) -> BuyerRequest:
    """The request, locked, for a change by its buyer; 404 for anyone else."""
    require_writer(principal)
    row = await session.get(BuyerRequest, request_id, with_for_update=True)
    if row is None or not writes_as_buyer(principal, row):
        raise not_found(request_id)
    return row


async def _supplier_view(
    session: SessionDep, principal: Principal, brokers: BrokerDirectory, row: BuyerRequest | None, request_id: str
) -> tuple[BuyerRequest, SupplierSide, list[Invitation]]:
    """The request and the invitations ``principal`` may act on; 404 unless it may act on one."""
    side = await supplier_side(principal, brokers)
    if row is None or side is None or row.status == RequestStatus.draft:
        raise not_found(request_id)
    invitations = list(
        await session.scalars(
            select(Invitation)
            .where(col(Invitation.request_id) == row.id, side.invitations())
            .order_by(col(Invitation.supplier_id))
        )
    )
    if not invitations:
        raise not_found(request_id)
    return row, side, invitations


async def _invitation_to_answer(
    session: SessionDep,
    principal: Principal,
    brokers: BrokerDirectory,
    request_id: str,
    supplier_id: str | None,
    *,
    now: NowDep,
) -> tuple[BuyerRequest, Invitation, SupplierSide]:
    """The open request and the invitation of ``supplier_id`` that ``principal`` may answer."""
    row = await session.get(BuyerRequest, request_id, with_for_update=True)
    row, side, invitations = await _supplier_view(session, principal, brokers, row, request_id)
    if supplier_id is None:
        if side.firm_id is None:
            raise invalid_field("supplier_id", "name the supplier you answer for", "missing")
        supplier_id = side.firm_id
    invitation = next((i for i in invitations if i.supplier_id == supplier_id), None)
    if invitation is None:
        raise NotFound(f"Request '{request_id}' has no invitation of yours for supplier '{supplier_id}'")
    status = service.effective_status(row, now)
    if status is not RequestStatus.open:
        raise Conflict(f"Request {row.id} is {status}: answers were accepted until {row.respond_by.isoformat()}")
    return row, invitation, side


# --- the buyer's side ----------------------------------------------------------------------


@router.post(
    "/v1/requests",
    status_code=201,
    response_model=RequestPublic,
    operation_id="create_request",
    summary="Write a request for quotation (a draft) and choose whom it invites",
)
async def create_request(
    body: RequestCreate,
    session: SessionDep,
    principal: PrincipalDep,
    catalogue: CatalogueDep,
    suppliers: SuppliersDep,
    brokers: BrokersDep,
    idempotency: IdempotencyDep,
    now: NowDep,
) -> Response:
    require_writer(principal)
    shortlist_id, invited = await service.invitations_for(session, catalogue, principal=principal, invite=body.invite)
    row = BuyerRequest(
        id=new_id("rfq"),
        owner=owner_key(principal),
        firm_id=principal.firm_id,
        agency_id=principal.agency_id,
        created_at=now,
        updated_at=now,
        shortlist_id=shortlist_id,
        status=RequestStatus.draft.value,
        history=[],
        title=body.title,
        description=body.description,
        quantity=body.quantity,
        unit=body.unit,
        delivery=body.delivery.model_dump(mode="json", exclude_none=True),
        needed_by=body.needed_by,
        respond_by=body.respond_by,
        target_price=body.target_price,
        currency=body.currency,
    )
    service.record_status(row, RequestStatus.draft, at=now, by=principal.subject, note=None)
    session.add(row)
    await session.flush()
    await service.replace_invitations(session, suppliers, brokers, row, invited, now)
    public = await service.publish_request(session, row, now, op="created")
    return await idempotency.respond(201, public, {"ETag": _etag(row), "Location": f"/v1/requests/{row.id}"})


@router.get(
    "/v1/requests",
    response_model=Page[RequestPublic],
    operation_id="list_requests",
    summary="List your requests (as the buyer)",
)
async def list_requests(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    query: Annotated[RequestQuery, Query()],
    now: NowDep,
) -> Page[RequestPublic]:
    params = query.page_params(request.app.state.settings)
    statement = select(BuyerRequest)
    visible = readable_rows(principal, BuyerRequest)
    if visible is not None:
        statement = statement.where(visible)
    if query.status is RequestStatus.open:
        statement = statement.where(col(BuyerRequest.status) == "open", col(BuyerRequest.respond_by) > now)
    elif query.status is RequestStatus.closed:
        statement = statement.where(
            or_(
                col(BuyerRequest.status) == "closed",
                and_(col(BuyerRequest.status) == "open", col(BuyerRequest.respond_by) <= now),
            )
        )
    elif query.status is not None:
        statement = statement.where(col(BuyerRequest.status) == query.status.value)
    rows = await fetch_page(session, statement, key=BuyerRequest.id, params=params, sorts=REQUEST_SORTS)
    return Page(
        items=[service.request_public(r, await service.invitations_of(session, r.id), now) for r in rows.items],
        next_cursor=rows.next_cursor,
        total=rows.total,
    )


@router.get(
    "/v1/requests/{request_id}",
    response_model=RequestPublic,
    operation_id="read_request",
    summary="Read a request: every answer side by side for the buyer, its own invitation for a supplier",
)
async def read_request(
    request_id: RecordId,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
    now: NowDep,
) -> RequestPublic:
    row = await session.get(BuyerRequest, request_id)
    if row is not None and reads_as_buyer(principal, row):
        invitations = await service.invitations_of(session, row.id)
    else:
        row, _, invitations = await _supplier_view(session, principal, brokers, row, request_id)
    response.headers["ETag"] = _etag(row)
    return service.request_public(row, invitations, now)


@router.patch(
    "/v1/requests/{request_id}",
    response_model=RequestPublic,
    operation_id="update_request",
    summary="Change a draft request (If-Match); an open one is extended or cancelled instead",
)
async def update_request(
    request_id: RecordId,
    body: RequestUpdate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    catalogue: CatalogueDep,
    suppliers: SuppliersDep,
    brokers: BrokersDep,
    now: NowDep,
    if_match: IfMatchHeader = None,
) -> RequestPublic:
    row = await _buyer_row(session, principal, request_id)
    check_if_match(if_match, row.version, "request")
    if row.status != RequestStatus.draft:
        raise Conflict(
            f"Request {row.id} is {service.effective_status(row, now)}: only a draft changes; "
            "extend or cancel an open request"
        )
    changes = body.model_dump(exclude_unset=True, exclude={"invite"})
    merged = RequestUpdate.model_validate(
        {f: getattr(row, f) for f in ("target_price", "currency", "needed_by", "respond_by")}
        | {k: v for k, v in changes.items() if k in ("target_price", "currency", "needed_by", "respond_by")}
    )
    try:
        check_request_fields(merged)
    except ValidationError as exc:
        raise ValidationFailed(
            "The changes do not fit the request",
            errors=[field_error(".".join(map(str, e["loc"])), e["msg"], "rule") for e in exc.errors()],
        ) from None
    for name in changes:
        value = getattr(body, name)
        setattr(row, name, value.model_dump(mode="json", exclude_none=True) if name == "delivery" else value)
    if body.invite is not None:
        shortlist_id, invited = await service.invitations_for(
            session, catalogue, principal=principal, invite=body.invite
        )
        row.shortlist_id = shortlist_id
        await service.replace_invitations(session, suppliers, brokers, row, invited, now)
    row.version += 1
    row.updated_at = now
    public = await service.publish_request(session, row, now)
    response.headers["ETag"] = _etag(row)
    return public


async def _transition(
    request_id: str, session: SessionDep, principal: Principal, now: NowDep, if_match: str | None
) -> BuyerRequest:
    """The buyer's request, locked, at the version the buyer read, with a passed deadline recorded."""
    row = await _buyer_row(session, principal, request_id)
    check_if_match(if_match, row.version, "request")
    await service.settle_deadline(session, row, now)
    return row


async def _transitioned(session: SessionDep, row: BuyerRequest, response: Response, now: NowDep) -> RequestPublic:
    row.version += 1
    row.updated_at = now
    public = await service.publish_request(session, row, now)
    response.headers["ETag"] = _etag(row)
    return public


@router.post(
    "/v1/requests/{request_id}/open",
    response_model=RequestPublic,
    operation_id="open_request",
    summary="Send a draft to its invited suppliers (If-Match); their linkages become 'contacted'",
)
async def open_request(
    request_id: RecordId,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    now: NowDep,
    if_match: IfMatchHeader = None,
) -> RequestPublic:
    row = await _transition(request_id, session, principal, now, if_match)
    await service.open_request(session, row, principal=principal, now=now)
    return await _transitioned(session, row, response, now)


@router.post(
    "/v1/requests/{request_id}/extend",
    response_model=RequestPublic,
    operation_id="extend_request",
    summary="Move an open request's deadline later (If-Match)",
)
async def extend_request(
    request_id: RecordId,
    body: Extension,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    now: NowDep,
    if_match: IfMatchHeader = None,
) -> RequestPublic:
    row = await _transition(request_id, session, principal, now, if_match)
    if row.status != RequestStatus.open:
        raise Conflict(f"Request {row.id} is {row.status}; only an open request is extended")
    if body.respond_by <= row.respond_by:
        raise invalid_field("respond_by", f"is not later than the current deadline ({row.respond_by.isoformat()})")
    if row.needed_by < body.respond_by.date():
        raise invalid_field("respond_by", f"is after needed_by ({row.needed_by})", "after_needed_by")
    old = row.respond_by
    row.respond_by = body.respond_by
    note = f"deadline moved from {old.isoformat()}" + (f": {body.note}" if body.note else "")
    service.record_status(row, RequestStatus.open, at=now, by=principal.subject, note=note)
    return await _transitioned(session, row, response, now)


@router.post(
    "/v1/requests/{request_id}/close",
    response_model=RequestPublic,
    operation_id="close_request",
    summary="Stop taking answers before the deadline (If-Match), to award sooner",
)
async def close_request(
    request_id: RecordId,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    now: NowDep,
    if_match: IfMatchHeader = None,
) -> RequestPublic:
    row = await _transition(request_id, session, principal, now, if_match)
    if row.status != RequestStatus.open:
        raise Conflict(f"Request {row.id} is {row.status}; only an open request is closed")
    await service.close_request(session, row, at=now, by=principal.subject, note="closed early", now=now)
    return await _transitioned(session, row, response, now)


@router.post(
    "/v1/requests/{request_id}/cancel",
    response_model=RequestPublic,
    operation_id="cancel_request",
    summary="Cancel a request that is not awarded (If-Match); its suppliers' linkages are dropped",
)
async def cancel_request(
    request_id: RecordId,
    body: Cancellation,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    now: NowDep,
    if_match: IfMatchHeader = None,
) -> RequestPublic:
    row = await _transition(request_id, session, principal, now, if_match)
    await service.cancel_request(session, row, principal=principal, reason=body.reason, now=now)
    return await _transitioned(session, row, response, now)


@router.post(
    "/v1/requests/{request_id}/awards",
    response_model=RequestPublic,
    operation_id="award_request",
    summary="Award a closed request to one or more bidders, with quantities (If-Match)",
    description="A network's award names its members' parts (members), adding up to its quantity; "
    "by default each member gets the share its shortlist listed.",
)
async def award_request(
    request_id: RecordId,
    body: AwardCreate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    now: NowDep,
    if_match: IfMatchHeader = None,
) -> RequestPublic:
    row = await _transition(request_id, session, principal, now, if_match)
    if row.status != RequestStatus.closed:
        hint = " (close it, or wait for its deadline)" if row.status == RequestStatus.open else ""
        raise Conflict(f"Request {row.id} is {row.status}; only a closed request is awarded{hint}")
    await service.award_request(session, row, body.awards, principal=principal, note=body.note, now=now)
    return await _transitioned(session, row, response, now)


# --- the supplier's side -------------------------------------------------------------------


def _answer_headers(row: BuyerRequest, invitation: Invitation) -> dict[str, str]:
    return {
        "ETag": version_etag(invitation.answer_version),
        "Location": f"/v1/requests/{row.id}/answers/{invitation.supplier_id}",
    }


@router.post(
    "/v1/requests/{request_id}/answers",
    status_code=201,
    response_model=AnswerPublic,
    operation_id="answer_request",
    summary="Answer an invitation once, before the deadline: a bid or a no-bid",
    description="A supplier answers for itself; its agency or a broker working in its cluster may answer "
    "on its behalf (supplier_id required), and the answer records who submitted it. For an invited network, "
    "the own key of a member firm answers too (supplier_id: the network's), recorded as member_id.",
)
async def answer_request(
    request_id: RecordId,
    body: AnswerCreate,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
    idempotency: IdempotencyDep,
    now: NowDep,
) -> Response:
    row, invitation, side = await _invitation_to_answer(
        session, principal, brokers, request_id, body.supplier_id, now=now
    )
    if invitation.answer is not None:
        raise Conflict(
            f"Supplier {invitation.supplier_id} has answered request {row.id}; "
            f"revise it with PUT /v1/requests/{row.id}/answers/{invitation.supplier_id} and If-Match"
        )
    await service.record_answer(
        session,
        row,
        invitation,
        body,
        principal=principal,
        on_behalf=side.on_behalf(invitation.supplier_id),
        now=now,
        member_id=side.member_of(invitation),
    )
    await service.publish_request(session, row, now)
    answer = service.answer_public(invitation)
    assert answer is not None
    return await idempotency.respond(201, answer, _answer_headers(row, invitation))


@router.put(
    "/v1/requests/{request_id}/answers/{supplier_id}",
    response_model=AnswerPublic,
    operation_id="revise_answer",
    summary="Revise an answer before the deadline (If-Match with the answer's ETag)",
)
async def revise_answer(
    request_id: RecordId,
    supplier_id: RecordId,
    body: AnswerFields,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
    now: NowDep,
    if_match: IfMatchHeader = None,
) -> AnswerPublic:
    row, invitation, side = await _invitation_to_answer(session, principal, brokers, request_id, supplier_id, now=now)
    if invitation.answer is None:
        raise NotFound(f"Supplier {supplier_id} has not answered request {row.id}; POST its answer first")
    check_if_match(if_match, invitation.answer_version, "answer")
    await service.record_answer(
        session,
        row,
        invitation,
        body,
        principal=principal,
        on_behalf=side.on_behalf(supplier_id),
        now=now,
        member_id=side.member_of(invitation),
    )
    await service.publish_request(session, row, now)
    answer = service.answer_public(invitation)
    assert answer is not None
    response.headers.update(_answer_headers(row, invitation))
    return answer


@router.get(
    "/v1/requests/{request_id}/answers/{supplier_id}",
    response_model=AnswerPublic,
    operation_id="read_answer",
    summary="Read one supplier's answer (the buyer, or that supplier's side)",
)
async def read_answer(
    request_id: RecordId,
    supplier_id: RecordId,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
) -> AnswerPublic:
    row = await session.get(BuyerRequest, request_id)
    if row is not None and reads_as_buyer(principal, row):
        invitations = await service.invitations_of(session, row.id)
    else:
        row, _, invitations = await _supplier_view(session, principal, brokers, row, request_id)
    invitation = next((i for i in invitations if i.supplier_id == supplier_id), None)
    answer = service.answer_public(invitation) if invitation is not None else None
    if invitation is None or answer is None:
        raise NotFound(f"No answer of supplier '{supplier_id}' to request '{request_id}'")
    response.headers.update(_answer_headers(row, invitation))
    return answer


@router.get(
    "/v1/invitations",
    response_model=Page[RequestPublic],
    operation_id="list_invitations",
    summary="Requests you are invited to answer (a supplier, or its agency or broker)",
    description="One item per invitation: the request with that invitation only.",
)
async def list_invitations(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
    query: Annotated[InvitationQuery, Query()],
    now: NowDep,
) -> Page[RequestPublic]:
    params = query.page_params(request.app.state.settings)
    side = await supplier_side(principal, brokers)
    if side is None:
        return Page(items=[], next_cursor=None)
    statement = (
        select(Invitation)
        .join(BuyerRequest, col(BuyerRequest.id) == col(Invitation.request_id))
        .where(side.invitations(), col(BuyerRequest.status) != RequestStatus.draft.value)
    )
    if query.supplier_id is not None:
        statement = statement.where(col(Invitation.supplier_id) == query.supplier_id)
    if query.status is not None:
        statement = statement.where(col(Invitation.status) == query.status.value)
    invited = await fetch_page(session, statement, key=Invitation.id, params=params, sorts=INVITATION_SORTS)
    invitations = invited.items
    requests = {
        r.id: r
        for r in await session.scalars(
            select(BuyerRequest).where(col(BuyerRequest.id).in_({i.request_id for i in invitations}))
        )
    }
    return Page(
        items=[service.request_public(requests[i.request_id], [i], now) for i in invitations],
        next_cursor=invited.next_cursor,
        total=invited.total,
    )


# --- clarifications ------------------------------------------------------------------------


async def _thread(
    session: SessionDep,
    principal: Principal,
    brokers: BrokerDirectory,
    request_id: str,
    supplier_id: str | None,
    *,
    writing: bool,
) -> tuple[BuyerRequest, str, str]:
    """The request, the thread's supplier and the side ``principal`` writes on."""
    row = await session.get(BuyerRequest, request_id)
    buyer = row is not None and (writes_as_buyer if writing else reads_as_buyer)(principal, row)
    if row is not None and buyer:
        if supplier_id is None:
            raise invalid_field("supplier_id", "name the invited supplier whose thread this is", "missing")
        invited = await session.scalar(
            select(col(Invitation.id)).where(
                col(Invitation.request_id) == row.id, col(Invitation.supplier_id) == supplier_id
            )
        )
        if invited is None:
            raise invalid_field("supplier_id", "was not invited to this request", "not_invited")
        return row, supplier_id, "buyer"
    row, side, invitations = await _supplier_view(session, principal, brokers, row, request_id)
    supplier_id = supplier_id or side.firm_id
    if supplier_id is None:
        raise invalid_field("supplier_id", "name the supplier whose thread this is", "missing")
    if all(i.supplier_id != supplier_id for i in invitations):
        raise NotFound(f"Request '{request_id}' has no invitation of yours for supplier '{supplier_id}'")
    return row, supplier_id, "supplier"


@router.post(
    "/v1/requests/{request_id}/messages",
    status_code=201,
    response_model=MessagePublic,
    operation_id="post_request_message",
    summary="Ask or answer a clarification question (one thread per request and supplier)",
)
async def post_message(
    request_id: RecordId,
    body: MessageCreate,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
    idempotency: IdempotencyDep,
    now: NowDep,
) -> Response:
    row, supplier_id, side = await _thread(session, principal, brokers, request_id, body.supplier_id, writing=True)
    status = service.effective_status(row, now)
    if status not in (RequestStatus.open, RequestStatus.closed):
        raise Conflict(f"Request {row.id} is {status}: its threads take no more messages")
    message = RequestMessage(
        id=new_id("msg"),
        request_id=row.id,
        supplier_id=supplier_id,
        side=side,
        author=principal.subject,
        author_role=principal.role.value,
        body=body.body,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    public = MessagePublic.model_validate(message, from_attributes=True)
    return await idempotency.respond(201, public)


@router.get(
    "/v1/requests/{request_id}/messages",
    response_model=Page[MessagePublic],
    operation_id="list_request_messages",
    summary="Read a clarification thread, oldest first",
)
async def list_messages(
    request_id: RecordId,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
    query: Annotated[MessageQuery, Query()],
) -> Page[MessagePublic]:
    params = query.page_params(request.app.state.settings)
    row, supplier_id, _ = await _thread(session, principal, brokers, request_id, query.supplier_id, writing=False)
    statement = select(RequestMessage).where(
        col(RequestMessage.request_id) == row.id, col(RequestMessage.supplier_id) == supplier_id
    )
    messages = await fetch_page(session, statement, key=RequestMessage.id, params=params, sorts=MESSAGE_SORTS)
    return messages.map(lambda m: MessagePublic.model_validate(m, from_attributes=True))
