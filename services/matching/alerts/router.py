"""An alert on saved buyer standards: turned on (or changed) with PUT, read, turned off with DELETE.

Only the standards' owner (or an admin) may change it; whoever may read the standards may
read it; anyone else gets 404, as for the standards themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response

from services.common.bounds import RecordId
from services.common.deps import SessionDep
from services.common.errors import PROBLEM_RESPONSES, NotFound
from services.common.principal import PrincipalDep
from services.matching.alerts.schemas import AlertPublic, AlertSettings
from services.matching.ownership import readable, writable
from services.matching.publish import publish
from services.matching.tables import BuyerStandard, StandardsAlert

router = APIRouter(prefix="/v1/buyer-standards", tags=["buyer standards"], responses=PROBLEM_RESPONSES)
ENTITY = "standards_alert"  # on matching's feed, so every replica's reverse matching learns of it


def _public(row: StandardsAlert) -> AlertPublic:
    return AlertPublic(
        standards_id=row.standards_id,
        min_score=row.min_score,
        top_n=row.top_n,
        enabled_at=row.enabled_at,
        updated_at=row.updated_at,
    )


@router.put(
    "/{standards_id}/alert",
    response_model=AlertPublic,
    operation_id="put_buyer_standards_alert",
    summary="Turn on (or change) the alert of buyer standards: a standards.match event for each supplier "
    "that newly meets them",
)
async def put_alert(
    standards_id: RecordId, body: AlertSettings, session: SessionDep, principal: PrincipalDep
) -> AlertPublic:
    standards = writable(
        principal, await session.get(BuyerStandard, standards_id, with_for_update=True), "buyer standards", standards_id
    )
    assert isinstance(standards, BuyerStandard)
    now = datetime.now(UTC)
    row = await session.get(StandardsAlert, standards_id)
    created = row is None
    if row is None:
        row = StandardsAlert(standards_id=standards_id, enabled_at=now, updated_at=now)
    row.min_score, row.top_n, row.updated_at = body.min_score, body.top_n, now
    session.add(row)
    await session.flush()
    public = _public(row)
    await publish(session, ENTITY, standards, public, op="created" if created else "updated")
    return public


@router.get(
    "/{standards_id}/alert",
    response_model=AlertPublic,
    operation_id="read_buyer_standards_alert",
    summary="Read the alert of buyer standards (404 when it is off)",
)
async def read_alert(standards_id: RecordId, session: SessionDep, principal: PrincipalDep) -> AlertPublic:
    readable(principal, await session.get(BuyerStandard, standards_id), "buyer standards", standards_id)
    row = await session.get(StandardsAlert, standards_id)
    if row is None:
        raise NotFound(f"Buyer standards '{standards_id}' have no alert")
    return _public(row)


@router.delete(
    "/{standards_id}/alert",
    status_code=204,
    operation_id="delete_buyer_standards_alert",
    summary="Turn the alert of buyer standards off",
)
async def delete_alert(standards_id: RecordId, session: SessionDep, principal: PrincipalDep) -> Response:
    standards = writable(
        principal, await session.get(BuyerStandard, standards_id, with_for_update=True), "buyer standards", standards_id
    )
    assert isinstance(standards, BuyerStandard)
    row = await session.get(StandardsAlert, standards_id)
    if row is None:
        raise NotFound(f"Buyer standards '{standards_id}' have no alert")
    public = _public(row)
    await session.delete(row)
    await publish(session, ENTITY, standards, public, op="deleted")
    return Response(status_code=204)
