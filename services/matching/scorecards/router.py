"""``/v1/scorecards``: buyers score deliveries, suppliers appeal, agencies decide.

A scorecard counts in its supplier's performance unless it is under appeal or was
voided; each change that alters what counts recomputes the supplier's observed
performance (``performance.py``) and publishes it on the change feed, from which the
registry records it on the firm and the catalogue ranks by it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.common.bounds import RecordId
from services.common.changefeed import PendingChange, record_changes
from services.common.deps import SessionDep, version_etag
from services.common.errors import PROBLEM_RESPONSES, Conflict, Forbidden, NotFound
from services.common.idempotency import IdempotencyDep
from services.common.ids import new_id
from services.common.pagination import Page, fetch_page, sortable
from services.common.principal import Principal, PrincipalDep, Role
from services.matching.catalogue.store import CatalogueStore
from services.matching.deps import BrokersDep, NowDep, SuppliersDep
from services.matching.linkages.schemas import Stage
from services.matching.ownership import can_read, readable_rows, writable
from services.matching.publish import publish
from services.matching.requests.access import BrokerDirectory, supplier_side
from services.matching.scorecards.performance import Observation, observed_performance
from services.matching.scorecards.schemas import (
    COUNTING,
    Appeal,
    AppealCreate,
    Decision,
    DecisionCreate,
    DecisionOutcome,
    ScorecardCreate,
    ScorecardKind,
    ScorecardPublic,
    ScorecardQuery,
    ScorecardStatus,
)
from services.matching.tables import OUTBOX, Linkage, Scorecard, SupplierPerformance

APPEAL_DAYS = 30  # a supplier appeals a scorecard within this many days of its recording

# The fields this service's lists sort by (``sort``; see services/common/pagination.py).
SCORECARD_SORTS = sortable(Scorecard, "created_at", "updated_at", "status")
router = APIRouter(tags=["scorecards"], responses=PROBLEM_RESPONSES)


def _public(row: Scorecard) -> ScorecardPublic:
    return ScorecardPublic(
        id=row.id,
        linkage_id=row.linkage_id,
        supplier_id=row.supplier_id,
        buyer_firm_id=row.firm_id,
        kind=ScorecardKind(row.kind),
        details=row.details,
        observed_on=row.observed_on,
        quality=row.quality,
        on_time=row.on_time,
        status=ScorecardStatus(row.status),
        counts=row.status in COUNTING,
        appeal=Appeal.model_validate(row.appeal) if row.appeal else None,
        decision=Decision.model_validate(row.decision) if row.decision else None,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _record_performance(session: AsyncSession, supplier_id: str, supplier_agency_id: str | None) -> None:
    """Recompute the supplier's observed performance; publish it when it changed."""
    counting = await session.scalars(
        select(Scorecard).where(col(Scorecard.supplier_id) == supplier_id, col(Scorecard.status).in_(COUNTING))
    )
    body = observed_performance([Observation(s.observed_on, s.quality, s.on_time, buyer=s.owner) for s in counting])
    row = await session.get(SupplierPerformance, supplier_id, with_for_update=True)
    if row is None:
        row = SupplierPerformance(supplier_id=supplier_id, supplier_agency_id=supplier_agency_id, body=body, version=1)
        session.add(row)
    elif row.body == body:
        return
    else:
        row.body = body
        row.version += 1
    await session.flush()
    change = PendingChange(
        entity="supplier_performance",
        entity_id=supplier_id,
        op="deleted" if body is None else "updated",
        version=row.version,
        agency_id=supplier_agency_id,
        data=body,
    )
    await record_changes(session, OUTBOX, [change])


async def _supplier_may_act(
    principal: Principal, row: Scorecard, brokers: BrokerDirectory, suppliers: CatalogueStore
) -> tuple[bool, bool]:
    """Whether ``principal`` may act for the scorecard's supplier, and whether on its behalf."""
    side = await supplier_side(principal, brokers)
    if side is None:
        return False, False
    if side.anyone:
        return True, True
    if side.firm_id is not None:
        return side.firm_id == row.supplier_id, False
    if side.agency_id != row.supplier_agency_id:
        return False, False
    if side.clusters is None:
        return True, True
    records = await asyncio.to_thread(suppliers.records, [row.supplier_id])
    record = records.get(row.supplier_id)
    return record is not None and bool(side.clusters & set(record.cluster_ids)), True


def _reads_as_buyer(principal: Principal, row: Scorecard) -> bool:
    return can_read(principal, row)


async def _readable(
    session: AsyncSession,
    principal: Principal,
    scorecard_id: str,
    brokers: BrokerDirectory,
    suppliers: CatalogueStore,
    *,
    lock: bool = False,
) -> tuple[Scorecard, bool, bool]:
    """The scorecard, whether ``principal`` reads it as the supplier's side, and on its behalf."""
    row = await session.get(Scorecard, scorecard_id, with_for_update=lock)
    if row is not None:
        as_supplier, on_behalf = await _supplier_may_act(principal, row, brokers, suppliers)
        if as_supplier or _reads_as_buyer(principal, row):
            return row, as_supplier, on_behalf
    raise NotFound(f"No scorecard with id '{scorecard_id}'")


@router.post(
    "/v1/linkages/{linkage_id}/scorecards",
    status_code=201,
    response_model=ScorecardPublic,
    operation_id="create_scorecard",
    summary="Score a delivery or a period of a contracted or active linkage",
)
async def create_scorecard(
    linkage_id: RecordId,
    body: ScorecardCreate,
    session: SessionDep,
    principal: PrincipalDep,
    suppliers: SuppliersDep,
    brokers: BrokersDep,
    idempotency: IdempotencyDep,
    now: NowDep,
) -> Response:
    linkage = writable(principal, await session.get(Linkage, linkage_id), "linkage", linkage_id)
    assert isinstance(linkage, Linkage)
    if linkage.stage not in (Stage.contracted, Stage.active):
        raise Conflict(f"Linkage {linkage.id} is {linkage.stage}; deliveries are scored once it is contracted")
    if linkage.supplier_kind == "network":  # a consortium: its agency, as the registry records it now
        network = await brokers.network(linkage.supplier_id)
        supplier_agency_id = network.get("agency_id") if network else None
    else:
        records = await asyncio.to_thread(suppliers.records, [linkage.supplier_id])
        record = records.get(linkage.supplier_id)
        supplier_agency_id = record.agency_id if record else None
    quality, on_time = body.figures()
    row = Scorecard(
        id=new_id("sc"),
        owner=linkage.owner,
        firm_id=linkage.firm_id,
        agency_id=linkage.agency_id,
        created_at=now,
        updated_at=now,
        linkage_id=linkage.id,
        supplier_id=linkage.supplier_id,
        supplier_agency_id=supplier_agency_id,
        kind=body.kind.value,
        details=body.model_dump(mode="json", exclude_none=True, exclude={"kind"}),
        observed_on=body.observed_on,
        quality=quality,
        on_time=on_time,
        status=ScorecardStatus.settled.value,
    )
    session.add(row)
    await session.flush()
    public = _public(row)
    await publish(session, "scorecard", row, public)
    await _record_performance(session, row.supplier_id, row.supplier_agency_id)
    headers = {"ETag": version_etag(row.version), "Location": f"/v1/scorecards/{row.id}"}
    return await idempotency.respond(201, public, headers)


@router.get(
    "/v1/scorecards",
    response_model=Page[ScorecardPublic],
    operation_id="list_scorecards",
    summary="Scorecards you recorded, or of the suppliers you act for",
)
async def list_scorecards(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
    suppliers: SuppliersDep,
    query: Annotated[ScorecardQuery, Query()],
) -> Page[ScorecardPublic]:
    params = query.page_params(request.app.state.settings)
    statement = select(Scorecard)
    visible = readable_rows(principal, Scorecard)
    if visible is not None:
        mine = visible
        side = await supplier_side(principal, brokers)
        if side is None:
            statement = statement.where(mine)
        elif side.firm_id is not None:
            statement = statement.where(or_(mine, col(Scorecard.supplier_id) == side.firm_id))
        elif side.clusters is None:
            statement = statement.where(or_(mine, col(Scorecard.supplier_agency_id) == side.agency_id))
        else:  # a broker: one supplier at a time, one it works with
            if query.supplier_id is None:
                raise Forbidden("A broker lists the scorecards of one supplier: give supplier_id")
            records = await asyncio.to_thread(suppliers.records, [query.supplier_id])
            record = records.get(query.supplier_id)
            if record is None or record.agency_id != side.agency_id or not side.clusters & set(record.cluster_ids):
                return Page(items=[], next_cursor=None)
    for name in ("supplier_id", "linkage_id", "status"):
        value = getattr(query, name)
        if value is not None:
            statement = statement.where(getattr(Scorecard, name) == value)
    rows = await fetch_page(session, statement, key=Scorecard.id, params=params, sorts=SCORECARD_SORTS)
    return rows.map(_public)


@router.get(
    "/v1/scorecards/{scorecard_id}",
    response_model=ScorecardPublic,
    operation_id="read_scorecard",
    summary="Read a scorecard (its buyer, or its supplier's side)",
)
async def read_scorecard(
    scorecard_id: RecordId,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
    suppliers: SuppliersDep,
) -> ScorecardPublic:
    row, _, _ = await _readable(session, principal, scorecard_id, brokers, suppliers)
    response.headers["ETag"] = version_etag(row.version)
    return _public(row)


@router.post(
    "/v1/scorecards/{scorecard_id}/appeal",
    response_model=ScorecardPublic,
    operation_id="appeal_scorecard",
    summary=f"Appeal a scorecard once, within {APPEAL_DAYS} days (the supplier, or its agency or broker)",
)
async def appeal_scorecard(
    scorecard_id: RecordId,
    body: AppealCreate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
    suppliers: SuppliersDep,
    now: NowDep,
) -> ScorecardPublic:
    row, as_supplier, on_behalf = await _readable(session, principal, scorecard_id, brokers, suppliers, lock=True)
    if not as_supplier:
        raise Forbidden("Only the supplier's side appeals a scorecard")
    if row.appeal is not None:
        raise Conflict(f"Scorecard {row.id} was appealed on {row.appeal['at'][:10]}; it is appealed once")
    if now > row.created_at + timedelta(days=APPEAL_DAYS):
        raise Conflict(f"Scorecard {row.id} was recorded more than {APPEAL_DAYS} days ago")
    row.appeal = {
        "reason": body.reason,
        "at": now.isoformat(),
        "by": principal.subject,
        "by_role": principal.role.value,
        "on_behalf": on_behalf,
    }
    return await _changed(session, row, ScorecardStatus.under_appeal, response, now)


@router.post(
    "/v1/scorecards/{scorecard_id}/decision",
    response_model=ScorecardPublic,
    operation_id="decide_scorecard_appeal",
    summary="Decide an appeal: uphold the scorecard or void it (the supplier's agency, or an admin)",
)
async def decide_appeal(
    scorecard_id: RecordId,
    body: DecisionCreate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    brokers: BrokersDep,
    suppliers: SuppliersDep,
    now: NowDep,
) -> ScorecardPublic:
    row, _, _ = await _readable(session, principal, scorecard_id, brokers, suppliers, lock=True)
    deciders = principal.is_admin or (principal.role is Role.agency and principal.agency_id == row.supplier_agency_id)
    if not deciders:
        raise Forbidden("The supplier's agency or an admin decides an appeal")
    if row.status != ScorecardStatus.under_appeal:
        raise Conflict(f"Scorecard {row.id} is {row.status}, not under appeal")
    row.decision = {"outcome": body.outcome.value, "note": body.note, "at": now.isoformat(), "by": principal.subject}
    status = ScorecardStatus.upheld if body.outcome is DecisionOutcome.upheld else ScorecardStatus.voided
    return await _changed(session, row, status, response, now)


async def _changed(
    session: AsyncSession, row: Scorecard, status: ScorecardStatus, response: Response, now: datetime
) -> ScorecardPublic:
    row.status = status.value
    row.version += 1
    row.updated_at = now
    await session.flush()
    public = _public(row)
    await publish(session, "scorecard", row, public, op="updated", version=row.version)
    await _record_performance(session, row.supplier_id, row.supplier_agency_id)
    response.headers["ETag"] = version_etag(row.version)
    return public
