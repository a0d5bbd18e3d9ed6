"""Buyer standards: saved, versioned requirements a lead firm requests shortlists from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError
from sqlalchemy import select

from services.common.bounds import INT32_MAX, RecordId
from services.common.deps import IfMatchHeader, SessionDep, check_if_match, version_etag
from services.common.errors import (
    PROBLEM_RESPONSES,
    NotFound,
    ValidationFailed,
    field_error,
)
from services.common.idempotency import IdempotencyDep
from services.common.ids import new_id
from services.common.pagination import Page, PageParamsDep, fetch_page, sortable
from services.common.principal import PrincipalDep
from services.matching.deps import CatalogueDep
from services.matching.ownership import owner_key, readable, readable_rows, require_writer, writable
from services.matching.publish import publish
from services.matching.standards.schemas import Standards, StandardsCreate, StandardsPublic, StandardsUpdate
from services.matching.standards.service import check_schemes
from services.matching.tables import BuyerStandard, BuyerStandardVersion

# The fields this service's lists sort by (``sort``; see services/common/pagination.py).
STANDARDS_SORTS = sortable(BuyerStandard, "name", "created_at", "updated_at")
router = APIRouter(prefix="/v1/buyer-standards", tags=["buyer standards"], responses=PROBLEM_RESPONSES)


def _public(row: BuyerStandard | BuyerStandardVersion, firm_id: str | None, updated_at: datetime) -> StandardsPublic:
    version = row.version
    standards_id = row.id if isinstance(row, BuyerStandard) else row.standards_id
    return StandardsPublic(
        id=standards_id,
        name=row.name,
        version=version,
        firm_id=firm_id,
        standards=Standards.model_validate(row.body),
        created_at=row.created_at,
        updated_at=updated_at,
    )


def _etag(row: BuyerStandard) -> str:
    return version_etag(row.version)


@router.post(
    "",
    status_code=201,
    response_model=StandardsPublic,
    operation_id="create_buyer_standards",
    summary="Save buyer standards",
)
async def create_standards(
    body: StandardsCreate,
    session: SessionDep,
    principal: PrincipalDep,
    catalogue: CatalogueDep,
    idempotency: IdempotencyDep,
) -> Response:
    require_writer(principal)
    check_schemes(body, catalogue.schemes)
    now = datetime.now(UTC)
    standards = Standards.model_validate(body.model_dump(exclude={"name"}))
    row = BuyerStandard(
        id=new_id("bst"),
        owner=owner_key(principal),
        firm_id=principal.firm_id,
        agency_id=principal.agency_id,
        created_at=now,
        updated_at=now,
        name=body.name,
        version=1,
        body=standards.model_dump(mode="json"),
    )
    session.add(row)
    session.add(BuyerStandardVersion(standards_id=row.id, version=1, name=row.name, body=row.body, created_at=now))
    await session.flush()
    public = _public(row, row.firm_id, now)
    await publish(session, "buyer_standards", row, public)
    return await idempotency.respond(201, public, {"ETag": _etag(row), "Location": f"/v1/buyer-standards/{row.id}"})


@router.get(
    "", response_model=Page[StandardsPublic], operation_id="list_buyer_standards", summary="List your buyer standards"
)
async def list_standards(session: SessionDep, principal: PrincipalDep, page: PageParamsDep) -> Page[StandardsPublic]:
    statement = select(BuyerStandard)
    visible = readable_rows(principal, BuyerStandard)
    if visible is not None:
        statement = statement.where(visible)
    rows = await fetch_page(session, statement, key=BuyerStandard.id, params=page, sorts=STANDARDS_SORTS)
    return rows.map(lambda r: _public(r, r.firm_id, r.updated_at))


@router.get(
    "/{standards_id}",
    response_model=StandardsPublic,
    operation_id="read_buyer_standards",
    summary="Read buyer standards, the current or a past version",
)
async def read_standards(
    standards_id: RecordId,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> StandardsPublic:
    row = readable(principal, await session.get(BuyerStandard, standards_id), "buyer standards", standards_id)
    assert isinstance(row, BuyerStandard)
    response.headers["ETag"] = _etag(row)
    if version is None or version == row.version:
        return _public(row, row.firm_id, row.updated_at)
    past = await session.get(BuyerStandardVersion, (standards_id, version))
    if past is None:
        raise NotFound(f"Buyer standards '{standards_id}' have no version {version}")
    return _public(past, row.firm_id, past.created_at)


@router.patch(
    "/{standards_id}",
    response_model=StandardsPublic,
    operation_id="update_buyer_standards",
    summary="Change buyer standards (a new version; past versions stay readable)",
)
async def update_standards(
    standards_id: RecordId,
    body: StandardsUpdate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    catalogue: CatalogueDep,
    if_match: IfMatchHeader = None,
) -> StandardsPublic:
    row = writable(
        principal, await session.get(BuyerStandard, standards_id, with_for_update=True), "buyer standards", standards_id
    )
    assert isinstance(row, BuyerStandard)
    check_if_match(if_match, row.version, "buyer standards")
    merged = dict(row.body)
    for part in ("constraints", "criteria"):
        change = getattr(body, part)
        if change is not None:
            merged[part] = dict(merged.get(part, {})) | change.model_dump(mode="json", exclude_unset=True)
    if body.include_consortia is not None:
        merged["include_consortia"] = body.include_consortia
    try:
        standards = Standards.model_validate(merged)
    except ValidationError as exc:
        raise ValidationFailed(
            "The change leaves the standards invalid",
            errors=[
                field_error(".".join(str(p) for p in e["loc"]), str(e["msg"]), str(e["type"])) for e in exc.errors()
            ],
        ) from None
    check_schemes(standards, catalogue.schemes)
    now = datetime.now(UTC)
    row.version += 1
    row.name = body.name or row.name
    row.body = standards.model_dump(mode="json")
    row.updated_at = now
    session.add(
        BuyerStandardVersion(standards_id=row.id, version=row.version, name=row.name, body=row.body, created_at=now)
    )
    await session.flush()
    public = _public(row, row.firm_id, now)
    await publish(session, "buyer_standards", row, public, op="updated", version=row.version)
    response.headers["ETag"] = _etag(row)
    return public
