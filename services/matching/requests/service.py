"""Requests for quotation: invitations, answers, deadlines, awards, and the linkages they move.

A request moves draft -> open -> closed -> awarded, or to cancelled from any of the
first three. "Closed" is also what an open request is once its deadline has passed:
reads show it at once, and the next write records it (``settle_deadline``).

Linkages follow without hand-typing: opening a request moves each invited supplier's
linkage (of the request's shortlist) to ``contacted``, a bid to ``qualified``, an
award to ``contracted``. A final no-bid, no answer, a lost award or a cancellation
drop it with a note saying why, unless it already went further off-platform.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.common.changefeed import ChangeOp
from services.common.errors import Conflict, FieldError, ValidationFailed, field_error, invalid_field
from services.common.ids import new_id
from services.common.principal import Principal
from services.matching.catalogue.catalogue import Catalogue
from services.matching.catalogue.store import CatalogueStore
from services.matching.linkages.schemas import STAGE_ORDER, LinkagePublic, Stage
from services.matching.ownership import owner_key
from services.matching.publish import publish
from services.matching.requests.schemas import (
    AnswerFields,
    AnswerPublic,
    DeliveryPublic,
    InvitationPublic,
    InvitationStatus,
    InviteFromShortlist,
    InviteTopOf,
    RequestPublic,
    RequestStatus,
    StatusEvent,
)
from services.matching.shortlists.schemas import GapPublic, ShortlistItem
from services.matching.shortlists.service import create_shortlist, standards_of
from services.matching.tables import BuyerRequest, Invitation, InvitationCluster, Linkage, Shortlist

FINAL_ANSWERS = {InvitationStatus.no_bid: "no bid", InvitationStatus.invited: "no answer by the deadline"}


def effective_status(row: BuyerRequest, now: datetime) -> RequestStatus:
    """The status as users see it: an open request past its deadline is closed."""
    status = RequestStatus(row.status)
    if status is RequestStatus.open and now >= row.respond_by:
        return RequestStatus.closed
    return status


def record_status(row: BuyerRequest, status: RequestStatus, *, at: datetime, by: str, note: str | None) -> None:
    row.status = status.value
    row.history = [*row.history, {"status": status.value, "at": at.isoformat(), "by": by, "note": note}]


# --- invitations -------------------------------------------------------------------------


async def invitations_for(
    session: AsyncSession,
    catalogue: Catalogue,
    *,
    principal: Principal,
    invite: InviteFromShortlist | InviteTopOf,
) -> tuple[str, list[tuple[ShortlistItem, bool]]]:
    """The shortlist a request invites from and the invited items (with whether each is a
    development candidate): chosen items of a stored shortlist, or the top of a fresh one."""
    if isinstance(invite, InviteFromShortlist):
        shortlist = await session.get(Shortlist, invite.shortlist_id)
        if shortlist is None or shortlist.owner != owner_key(principal):
            raise invalid_field("invite.shortlist_id", f"no shortlist of yours with id {invite.shortlist_id!r}")
        listed = {i["supplier_id"]: (i, False) for i in shortlist.result.get("items", [])}
        listed |= {i["supplier_id"]: (i, True) for i in (shortlist.result.get("development") or [])}
        errors = [
            field_error(f"invite.supplier_ids.{n}", "is not among that shortlist's suppliers", "not_shortlisted")
            for n, supplier_id in enumerate(invite.supplier_ids)
            if supplier_id not in listed
        ]
        errors += [
            field_error(f"invite.supplier_ids.{n}", "is listed twice", "duplicate")
            for n, supplier_id in enumerate(invite.supplier_ids)
            if supplier_id in invite.supplier_ids[:n]
        ]
        if errors:
            raise ValidationFailed("Some invited suppliers cannot be invited", errors=errors)
        chosen = [listed[s] for s in invite.supplier_ids]
        return shortlist.id, [(ShortlistItem.model_validate(item), development) for item, development in chosen]
    request = invite.shortlist.model_copy(update={"limit": invite.top, "include_development": False})
    standards, version = await standards_of(session, principal, request)
    row, document = await create_shortlist(
        session,
        catalogue,
        principal=principal,
        request=request,
        standards=standards,
        standards_id=request.standards_id,
        standards_version=version,
    )
    if not document["items"]:
        raise invalid_field("invite.shortlist", "no supplier meets these standards", "no_suppliers")
    return row.id, [(ShortlistItem.model_validate(item), False) for item in document["items"]]


async def replace_invitations(
    session: AsyncSession,
    suppliers: CatalogueStore,
    row: BuyerRequest,
    invited: Sequence[tuple[ShortlistItem, bool]],
    now: datetime,
) -> None:
    """Make ``invited`` the request's invitations, with each supplier's agency and clusters."""
    old = select(col(Invitation.id)).where(col(Invitation.request_id) == row.id)
    await session.execute(delete(InvitationCluster).where(col(InvitationCluster.invitation_id).in_(old)))
    await session.execute(delete(Invitation).where(col(Invitation.request_id) == row.id))
    ids = [item.supplier_id for item, _ in invited]
    records = await asyncio.to_thread(suppliers.records, ids)
    gone = [n for n, supplier_id in enumerate(ids) if supplier_id not in records]
    if gone:
        raise ValidationFailed(
            "Some suppliers are no longer in the catalogue",
            errors=[field_error(f"invite.supplier_ids.{n}", "is no longer a supplier", "not_supplier") for n in gone],
        )
    for item, development in invited:
        record = records[item.supplier_id]
        invitation = Invitation(
            id=new_id("inv"),
            request_id=row.id,
            supplier_id=item.supplier_id,
            supplier_name=record.name,
            supplier_agency_id=record.agency_id,
            ranking=item.model_dump(mode="json") | {"development": development},
            status=InvitationStatus.invited.value,
            created_at=now,
        )
        session.add(invitation)
        session.add_all(InvitationCluster(invitation_id=invitation.id, cluster_id=c) for c in record.cluster_ids)
    await session.flush()


async def invitations_of(session: AsyncSession, request_id: str) -> list[Invitation]:
    rows = await session.scalars(select(Invitation).where(col(Invitation.request_id) == request_id))
    return sorted(rows, key=lambda i: (bool(i.ranking.get("development")), int(i.ranking["rank"]), i.supplier_id))


# --- public documents --------------------------------------------------------------------


def answer_public(invitation: Invitation) -> AnswerPublic | None:
    if invitation.answer is None or invitation.answered_at is None:
        return None
    return AnswerPublic.model_validate(
        invitation.answer
        | {"supplier_id": invitation.supplier_id, "version": invitation.answer_version}
        | {"submitted_at": invitation.answered_at}
    )


def invitation_public(invitation: Invitation) -> InvitationPublic:
    ranking = invitation.ranking
    gap = ranking.get("gap")
    return InvitationPublic(
        supplier_id=invitation.supplier_id,
        name=invitation.supplier_name,
        status=InvitationStatus(invitation.status),
        rank=ranking["rank"],
        development=bool(ranking.get("development")),
        score=ranking["score"],
        criteria=ranking["criteria"],
        gap=GapPublic.model_validate(gap) if gap else None,
        answer=answer_public(invitation),
        awarded_quantity=invitation.awarded_quantity,
    )


def request_public(row: BuyerRequest, invitations: Sequence[Invitation], now: datetime) -> RequestPublic:
    return RequestPublic(
        id=row.id,
        title=row.title,
        description=row.description,
        quantity=row.quantity,
        unit=row.unit,
        delivery=DeliveryPublic.model_validate(row.delivery),
        needed_by=row.needed_by,
        respond_by=row.respond_by,
        target_price=row.target_price,
        currency=row.currency,
        status=effective_status(row, now),
        buyer_firm_id=row.firm_id,
        shortlist_id=row.shortlist_id,
        invitations=[invitation_public(i) for i in invitations],
        history=[StatusEvent.model_validate(e) for e in row.history],
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def publish_request(
    session: AsyncSession, row: BuyerRequest, now: datetime, op: ChangeOp = "updated"
) -> RequestPublic:
    """Record the request's change (the buyer's view, every invitation included) and return that view."""
    await session.flush()
    public = request_public(row, await invitations_of(session, row.id), now)
    await publish(session, "request", row, public, op=op, version=row.version)
    return public


# --- linkages ----------------------------------------------------------------------------


async def move_linkage(
    session: AsyncSession,
    row: BuyerRequest,
    invitation: Invitation,
    stage: Stage,
    *,
    on: date,
    note: str,
    now: datetime,
) -> None:
    """Create or advance the linkage of this shortlist and supplier to ``stage``, never back;
    ``dropped`` only drops one that has not reached ``contracted``."""
    linkage = await session.scalar(
        select(Linkage)
        .where(col(Linkage.shortlist_id) == row.shortlist_id, col(Linkage.supplier_id) == invitation.supplier_id)
        .with_for_update()
    )
    event = {"stage": stage.value, "on": on.isoformat(), "note": note}
    if linkage is None:
        if stage is Stage.dropped:
            return  # never contacted: nothing to drop
        linkage = Linkage(
            id=new_id("lnk"),
            owner=row.owner,
            firm_id=row.firm_id,
            agency_id=row.agency_id,
            created_at=now,
            updated_at=now,
            shortlist_id=row.shortlist_id,
            supplier_id=invitation.supplier_id,
            request_id=row.id,
            stage=stage.value,
            history=[{"stage": Stage.proposed.value, "on": on.isoformat(), "note": None}, event],
            development_actions=[],
            gap=invitation.ranking.get("gap"),
            version=1,
        )
        session.add(linkage)
        await session.flush()
        await publish(session, "linkage", linkage, _linkage_public(linkage))
        return
    current = Stage(linkage.stage)
    if current is Stage.dropped:
        return
    if stage is Stage.dropped:
        if STAGE_ORDER.index(current) >= STAGE_ORDER.index(Stage.contracted):
            return
    elif STAGE_ORDER.index(stage) <= STAGE_ORDER.index(current):
        return
    last = max(e["on"] for e in linkage.history)
    event["on"] = max(last, event["on"])  # a history never goes back in time
    linkage.history = [*linkage.history, event]
    linkage.stage = stage.value
    linkage.request_id = row.id
    linkage.version += 1
    linkage.updated_at = now
    await session.flush()
    await publish(session, "linkage", linkage, _linkage_public(linkage), op="updated", version=linkage.version)


def _linkage_public(row: Linkage) -> LinkagePublic:
    return LinkagePublic.model_validate(row, from_attributes=True)


# --- transitions -------------------------------------------------------------------------


async def open_request(session: AsyncSession, row: BuyerRequest, *, principal: Principal, now: datetime) -> None:
    if row.status != RequestStatus.draft:
        raise Conflict(f"Request {row.id} is {effective_status(row, now)}; only a draft can be opened")
    if row.respond_by <= now:
        raise invalid_field("respond_by", "is in the past; set a later deadline before opening", "in_the_past")
    record_status(row, RequestStatus.open, at=now, by=principal.subject, note=None)
    for invitation in await invitations_of(session, row.id):
        await move_linkage(
            session, row, invitation, Stage.contacted, on=now.date(), note=f"invited to request {row.id}", now=now
        )


async def settle_deadline(session: AsyncSession, row: BuyerRequest, now: datetime) -> None:
    """Record the close of an open request whose deadline has passed (what reads already show)."""
    if row.status == RequestStatus.open and now >= row.respond_by:
        await close_request(session, row, at=row.respond_by, by="deadline", note="the deadline passed", now=now)


async def close_request(
    session: AsyncSession, row: BuyerRequest, *, at: datetime, by: str, note: str | None, now: datetime
) -> None:
    """No more answers: unanswered and no-bid invitations are final, their linkages dropped."""
    record_status(row, RequestStatus.closed, at=at, by=by, note=note)
    for invitation in await invitations_of(session, row.id):
        status = InvitationStatus(invitation.status)
        if status in FINAL_ANSWERS:
            if status is InvitationStatus.invited:
                invitation.status = InvitationStatus.no_answer.value
            await move_linkage(
                session,
                row,
                invitation,
                Stage.dropped,
                on=at.date(),
                note=f"{FINAL_ANSWERS[status]} to request {row.id}",
                now=now,
            )


async def cancel_request(
    session: AsyncSession, row: BuyerRequest, *, principal: Principal, reason: str, now: datetime
) -> None:
    status = effective_status(row, now)
    if status in (RequestStatus.awarded, RequestStatus.cancelled):
        raise Conflict(f"Request {row.id} is {status} and can no longer be cancelled")
    was_sent = status is not RequestStatus.draft
    record_status(row, RequestStatus.cancelled, at=now, by=principal.subject, note=reason)
    for invitation in await invitations_of(session, row.id):
        invitation.status = InvitationStatus.cancelled.value
        if was_sent:
            await move_linkage(
                session,
                row,
                invitation,
                Stage.dropped,
                on=now.date(),
                note=f"request {row.id} cancelled: {reason}",
                now=now,
            )


def check_answer(row: BuyerRequest, answer: AnswerFields) -> None:
    """422 for an answer that does not fit the request."""
    errors: list[FieldError] = []
    if answer.currency is not None and row.currency is not None and answer.currency != row.currency:
        errors.append(field_error("currency", f"quotes for this request are in {row.currency}", "currency"))
    if answer.capacity_offered is not None and answer.capacity_offered > row.quantity:
        errors.append(
            field_error(
                "capacity_offered", f"is above the quantity requested ({row.quantity:g} {row.unit})", "above_quantity"
            )
        )
    if errors:
        raise ValidationFailed("The answer does not fit the request", errors=errors)


def answer_document(answer: AnswerFields, principal: Principal, on_behalf: bool) -> dict[str, Any]:
    return AnswerFields.model_validate(answer.model_dump(include=set(AnswerFields.model_fields))).model_dump(
        mode="json"
    ) | {"submitted_by": principal.subject, "submitted_by_role": principal.role.value, "on_behalf": on_behalf}


async def record_answer(
    session: AsyncSession,
    row: BuyerRequest,
    invitation: Invitation,
    answer: AnswerFields,
    *,
    principal: Principal,
    on_behalf: bool,
    now: datetime,
) -> None:
    check_answer(row, answer)
    invitation.answer = answer_document(answer, principal, on_behalf)
    invitation.answer_version += 1
    invitation.answered_at = now
    invitation.status = (InvitationStatus.bid if answer.kind == "bid" else InvitationStatus.no_bid).value
    if invitation.status == InvitationStatus.bid:
        await move_linkage(
            session, row, invitation, Stage.qualified, on=now.date(), note=f"bid on request {row.id}", now=now
        )
    await session.flush()


async def award_request(
    session: AsyncSession,
    row: BuyerRequest,
    awards: Sequence[tuple[str, float]],
    *,
    principal: Principal,
    note: str | None,
    now: datetime,
) -> None:
    """Award quantities to bidders; the other bidders are told they were not awarded."""
    invitations = {i.supplier_id: i for i in await invitations_of(session, row.id)}
    errors: list[FieldError] = []
    seen: set[str] = set()
    for n, (supplier_id, quantity) in enumerate(awards):
        invitation = invitations.get(supplier_id)
        if invitation is None:
            errors.append(field_error(f"awards.{n}.supplier_id", "was not invited to this request", "not_invited"))
        elif invitation.status != InvitationStatus.bid:
            errors.append(field_error(f"awards.{n}.supplier_id", "did not bid", "no_bid"))
        elif supplier_id in seen:
            errors.append(field_error(f"awards.{n}.supplier_id", "is awarded twice", "duplicate"))
        else:
            offered = (invitation.answer or {}).get("capacity_offered")
            if offered is not None and quantity > offered:
                errors.append(
                    field_error(f"awards.{n}.quantity", f"is above the capacity it offered ({offered:g})", "above_bid")
                )
        seen.add(supplier_id)
    total = sum(quantity for _, quantity in awards)
    if total > row.quantity:
        errors.append(
            field_error("awards", f"total {total:g} is above the request's quantity {row.quantity:g}", "above_quantity")
        )
    if errors:
        raise ValidationFailed("The award does not fit the answers", errors=errors)
    record_status(row, RequestStatus.awarded, at=now, by=principal.subject, note=note)
    awarded = dict(awards)
    for invitation in invitations.values():
        if invitation.supplier_id in awarded:
            invitation.status = InvitationStatus.awarded.value
            invitation.awarded_quantity = awarded[invitation.supplier_id]
            await move_linkage(
                session,
                row,
                invitation,
                Stage.contracted,
                on=now.date(),
                note=f"awarded {awarded[invitation.supplier_id]:g} {row.unit} in request {row.id}",
                now=now,
            )
        elif invitation.status == InvitationStatus.bid:
            invitation.status = InvitationStatus.not_awarded.value
            await move_linkage(
                session,
                row,
                invitation,
                Stage.dropped,
                on=now.date(),
                note=f"not awarded in request {row.id}",
                now=now,
            )
