"""Requests for quotation: invitations, answers, deadlines, awards, and the linkages they move.

A request moves draft -> open -> closed -> awarded, or to cancelled from any of the
first three. "Closed" is also what an open request is once its deadline has passed:
reads show it at once, and the next write records it (``settle_deadline``).

Linkages follow without hand-typing: opening a request moves each invited supplier's
linkage (of the request's shortlist) to ``contacted``, a bid to ``qualified``, an
award to ``contracted``. A final no-bid, no answer, a lost award or a cancellation
drop it with a note saying why, unless it already went further off-platform.

A network listed in the shortlist's consortia is invited like a firm, with the members
the shortlist counted; its award names each member's part of the awarded quantity
(the listed shares by default), and the linkage it moves carries them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pydantic_core
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.common.changefeed import ChangeOp
from services.common.errors import Conflict, FieldError, ValidationFailed, field_error, invalid_field
from services.common.ids import new_id
from services.common.principal import Principal
from services.matching.catalogue.catalogue import Catalogue
from services.matching.catalogue.store import CatalogueStore
from services.matching.linkages.schemas import STAGE_ORDER, MemberShare, Stage, SupplierKind, linkage_public
from services.matching.linkages.suppliers import Listed, listed_suppliers
from services.matching.ownership import owner_key
from services.matching.publish import publish
from services.matching.requests.access import BrokerDirectory
from services.matching.requests.schemas import (
    AnswerFields,
    AnswerPublic,
    Award,
    DeliveryPublic,
    InvitationPublic,
    InvitationStatus,
    InviteFromShortlist,
    InviteTopOf,
    RequestPublic,
    RequestStatus,
    StatusEvent,
)
from services.matching.shortlists.schemas import GapPublic
from services.matching.shortlists.service import create_shortlist, standards_of
from services.matching.tables import BuyerRequest, Invitation, InvitationCluster, InvitationMember, Linkage, Shortlist

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
) -> tuple[str, list[Listed]]:
    """The shortlist a request invites from and the invited suppliers: chosen firms or
    networks of a stored shortlist, or the top firms of a fresh one (and its ranked
    consortia when it asks include_consortia)."""
    if isinstance(invite, InviteFromShortlist):
        shortlist = await session.get(Shortlist, invite.shortlist_id)
        if shortlist is None or shortlist.owner != owner_key(principal):
            raise invalid_field("invite.shortlist_id", f"no shortlist of yours with id {invite.shortlist_id!r}")
        listed = listed_suppliers(shortlist.result)
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
        return shortlist.id, [listed[s] for s in invite.supplier_ids]
    request = invite.shortlist.model_copy(update={"limit": invite.top, "include_development": False})
    standards, version = await standards_of(session, principal, request)
    built = await create_shortlist(
        session,
        catalogue,
        principal=principal,
        request=request,
        standards=standards,
        standards_id=request.standards_id,
        standards_version=version,
    )
    listed = listed_suppliers(pydantic_core.from_json(built.document))
    invited = list(listed.values())  # firms first, then consortia, each by rank
    if not invited:
        raise invalid_field("invite.shortlist", "no supplier meets these standards", "no_suppliers")
    return built.id, invited


async def replace_invitations(
    session: AsyncSession,
    suppliers: CatalogueStore,
    registry: BrokerDirectory,
    row: BuyerRequest,
    invited: Sequence[Listed],
    now: datetime,
) -> None:
    """Make ``invited`` the request's invitations, with each supplier's agency and clusters
    (a firm's from the catalogue, a network's from the registry) and a network's members."""
    old = select(col(Invitation.id)).where(col(Invitation.request_id) == row.id)
    await session.execute(delete(InvitationCluster).where(col(InvitationCluster.invitation_id).in_(old)))
    await session.execute(delete(InvitationMember).where(col(InvitationMember.invitation_id).in_(old)))
    await session.execute(delete(Invitation).where(col(Invitation.request_id) == row.id))
    firm_ids = [i.supplier_id for i in invited if i.kind is SupplierKind.firm]
    records = await asyncio.to_thread(suppliers.records, firm_ids)
    sides: dict[str, tuple[str, str | None, list[str]]] = {}  # name, agency, clusters
    for listed in invited:
        if listed.kind is SupplierKind.firm and listed.supplier_id in records:
            record = records[listed.supplier_id]
            sides[listed.supplier_id] = (record.name, record.agency_id, list(record.cluster_ids))
        elif listed.kind is SupplierKind.network:
            network = await registry.network(listed.supplier_id)
            if network is not None and network.get("status") == "active":
                cluster = network.get("cluster_id")
                sides[listed.supplier_id] = (network["name"], network.get("agency_id"), [cluster] if cluster else [])
    gone = [n for n, listed in enumerate(invited) if listed.supplier_id not in sides]
    if gone:
        raise ValidationFailed(
            "Some suppliers are no longer in the catalogue",
            errors=[
                field_error(
                    f"invite.supplier_ids.{n}",
                    f"is no longer {'an active network' if invited[n].kind is SupplierKind.network else 'a supplier'}",
                    "not_supplier",
                )
                for n in gone
            ],
        )
    for listed in invited:
        name, agency_id, clusters = sides[listed.supplier_id]
        invitation = Invitation(
            id=new_id("inv"),
            request_id=row.id,
            supplier_id=listed.supplier_id,
            supplier_name=name,
            supplier_agency_id=agency_id,
            supplier_kind=listed.kind.value,
            ranking=listed.ranking,
            members=listed.members,
            status=InvitationStatus.invited.value,
            created_at=now,
        )
        session.add(invitation)
        session.add_all(InvitationCluster(invitation_id=invitation.id, cluster_id=c) for c in clusters)
        session.add_all(
            InvitationMember(invitation_id=invitation.id, firm_id=m["firm_id"]) for m in listed.members or ()
        )
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
        gap_member_id=(gap or {}).get("member_id"),
        answer=answer_public(invitation),
        awarded_quantity=invitation.awarded_quantity,
        supplier_kind=SupplierKind(invitation.supplier_kind),
        members=_members(invitation.members),
        awarded_members=_members(invitation.awarded_members),
    )


def _members(members: list[dict[str, Any]] | None) -> list[MemberShare] | None:
    return None if members is None else [MemberShare.model_validate(m) for m in members]


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
    ``dropped`` only drops one that has not reached ``contracted``. A network's linkage takes
    the invitation's members, as awarded once it is."""
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
            supplier_kind=invitation.supplier_kind,
            members=invitation.awarded_members or invitation.members,
            request_id=row.id,
            stage=stage.value,
            history=[{"stage": Stage.proposed.value, "on": on.isoformat(), "note": None}, event],
            development_actions=[],
            gap=invitation.ranking.get("gap"),
            version=1,
        )
        session.add(linkage)
        await session.flush()
        await publish(session, "linkage", linkage, linkage_public(linkage))
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
    if invitation.awarded_members is not None and stage is Stage.contracted:
        linkage.members = invitation.awarded_members
    linkage.version += 1
    linkage.updated_at = now
    await session.flush()
    await publish(session, "linkage", linkage, linkage_public(linkage), op="updated", version=linkage.version)


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


def answer_document(
    answer: AnswerFields, principal: Principal, on_behalf: bool, member_id: str | None = None
) -> dict[str, Any]:
    return AnswerFields.model_validate(answer.model_dump(include=set(AnswerFields.model_fields))).model_dump(
        mode="json"
    ) | {
        "submitted_by": principal.subject,
        "submitted_by_role": principal.role.value,
        "on_behalf": on_behalf,
        "member_id": member_id,
    }


async def record_answer(
    session: AsyncSession,
    row: BuyerRequest,
    invitation: Invitation,
    answer: AnswerFields,
    *,
    principal: Principal,
    on_behalf: bool,
    now: datetime,
    member_id: str | None = None,
) -> None:
    check_answer(row, answer)
    invitation.answer = answer_document(answer, principal, on_behalf, member_id)
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
    awards: Sequence[Award],
    *,
    principal: Principal,
    note: str | None,
    now: datetime,
) -> None:
    """Award quantities to bidders; the other bidders are told they were not awarded.
    A network's award names its members' parts (``member_awards``)."""
    invitations = {i.supplier_id: i for i in await invitations_of(session, row.id)}
    errors: list[FieldError] = []
    seen: set[str] = set()
    members: dict[str, list[dict[str, Any]]] = {}
    for n, award in enumerate(awards):
        supplier_id, quantity = award.supplier_id, award.quantity
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
        if invitation is not None:
            parts, problems = member_awards(invitation, award, f"awards.{n}")
            errors += problems
            if parts is not None:
                members[supplier_id] = parts
        seen.add(supplier_id)
    total = sum(a.quantity for a in awards)
    if total > row.quantity:
        errors.append(
            field_error("awards", f"total {total:g} is above the request's quantity {row.quantity:g}", "above_quantity")
        )
    if errors:
        raise ValidationFailed("The award does not fit the answers", errors=errors)
    record_status(row, RequestStatus.awarded, at=now, by=principal.subject, note=note)
    awarded = {a.supplier_id: a.quantity for a in awards}
    for invitation in invitations.values():
        if invitation.supplier_id in awarded:
            invitation.status = InvitationStatus.awarded.value
            invitation.awarded_quantity = awarded[invitation.supplier_id]
            invitation.awarded_members = members.get(invitation.supplier_id)
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


# Members' parts must add up to the network's quantity within this (float sums of decimals).
SHARE_TOLERANCE = 1e-9


def member_awards(
    invitation: Invitation, award: Award, where: str
) -> tuple[list[dict[str, Any]] | None, list[FieldError]]:
    """A network's members with their share and quantity of ``award``: as given, or by the
    shares its shortlist listed; None for a firm. The errors, each at its field."""
    if invitation.supplier_kind != SupplierKind.network.value:
        if award.members is not None:
            return None, [field_error(f"{where}.members", "only a network's award names members", "not_network")]
        return None, []
    listed = {m["firm_id"]: m for m in invitation.members or ()}
    if award.members is None:
        return [
            {"firm_id": m["firm_id"], "name": m["name"], "share": m["share"], "quantity": m["share"] * award.quantity}
            for m in listed.values()
        ], []
    errors: list[FieldError] = []
    for m, member in enumerate(award.members):
        if member.firm_id not in listed:
            errors.append(
                field_error(f"{where}.members.{m}.firm_id", "is not a member of that consortium", "not_member")
            )
        elif any(other.firm_id == member.firm_id for other in award.members[:m]):
            errors.append(field_error(f"{where}.members.{m}.firm_id", "is listed twice", "duplicate"))
    total = sum(member.quantity for member in award.members)
    if abs(total - award.quantity) > SHARE_TOLERANCE * max(1.0, award.quantity):
        errors.append(
            field_error(
                f"{where}.members",
                f"the members' quantities add up to {total:g}, not the {award.quantity:g} awarded",
                "shares_total",
            )
        )
    if errors:
        return None, errors
    return [
        {
            "firm_id": member.firm_id,
            "name": listed[member.firm_id]["name"],
            "share": member.quantity / award.quantity,
            "quantity": member.quantity,
        }
        for member in award.members
    ], []
