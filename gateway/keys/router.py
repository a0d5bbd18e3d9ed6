"""Endpoints for API keys: create, list, rotate, revoke (admins: every key; agencies:
their own agency's, as ``gateway.keys.access`` says)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from gateway.auth import KeyManagerDep
from gateway.keys import access, service
from gateway.keys.owners import key_agency
from gateway.keys.schemas import ApiKeyCreate, ApiKeyIssued, ApiKeyPublic
from gateway.tables import ApiKey
from services.common.bounds import RecordId
from services.common.deps import SessionDep
from services.common.errors import PROBLEM_RESPONSES
from services.common.pagination import Page, PageParamsDep, fetch_page, sortable

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], responses=PROBLEM_RESPONSES)


def _issued(row: ApiKey, key: str) -> ApiKeyIssued:
    return ApiKeyIssued.model_validate(ApiKeyPublic.model_validate(row).model_dump() | {"key": key})


@router.post(
    "",
    operation_id="create_api_key",
    status_code=201,
    response_model=ApiKeyIssued,
    summary="Create an API key (shown once)",
    responses={503: PROBLEM_RESPONSES[409] | {"description": "The registry cannot say whether the owner exists"}},
)
async def create_key(
    body: ApiKeyCreate, request: Request, session: SessionDep, issuer: KeyManagerDep, response: Response
) -> ApiKeyIssued:
    access.check_may_issue(issuer, body)
    agency_id = await key_agency(request.app.state.forwarder, body, issuer=issuer, request_id=request.state.request_id)
    row, key = await service.issue_key(
        session, body.model_copy(update={"agency_id": agency_id}), created_by=issuer.subject
    )
    response.headers["Location"] = f"/v1/api-keys/{row.id}"
    response.headers["Cache-Control"] = "no-store"
    return _issued(row, key)


@router.get("", operation_id="list_api_keys", response_model=Page[ApiKeyPublic], summary="List API keys")
async def list_keys(
    session: SessionDep,
    issuer: KeyManagerDep,
    page: PageParamsDep,
    agency_id: Annotated[RecordId | None, Query()] = None,
    include_revoked: bool = False,
) -> Page[ApiKeyPublic]:
    statement = select(ApiKey)
    agency_id = access.check_may_list(issuer, agency_id)
    if agency_id is not None:
        statement = statement.where(ApiKey.agency_id == agency_id)  # type: ignore[arg-type]
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
    sorts = sortable(ApiKey, "name", "created_at")
    rows = await fetch_page(session, statement, key=ApiKey.id, params=page, sorts=sorts)
    return rows.map(ApiKeyPublic.model_validate)


@router.get("/{key_id}", operation_id="read_api_key", response_model=ApiKeyPublic, summary="Read an API key's grants")
async def read_key(key_id: RecordId, session: SessionDep, issuer: KeyManagerDep) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(access.visible(issuer, await service.get_key(session, key_id)))


@router.post(
    "/{key_id}/rotate",
    operation_id="rotate_api_key",
    status_code=201,
    response_model=ApiKeyIssued,
    summary="Issue a replacement key; the old one expires after a grace period",
)
async def rotate_key(
    key_id: RecordId,
    request: Request,
    session: SessionDep,
    issuer: KeyManagerDep,
    response: Response,
    grace_seconds: Annotated[int, Query(ge=0, le=30 * 86400)] = 3600,
) -> ApiKeyIssued:
    access.manageable(issuer, await service.get_key(session, key_id))
    row, key = await service.rotate_key(
        session, key_id, created_by=issuer.subject, grace=timedelta(seconds=grace_seconds)
    )
    request.app.state.authenticator.forget(key_id)
    response.headers["Cache-Control"] = "no-store"
    return _issued(row, key)


@router.delete("/{key_id}", operation_id="revoke_api_key", status_code=204, summary="Revoke an API key at once")
async def revoke_key(key_id: RecordId, request: Request, session: SessionDep, issuer: KeyManagerDep) -> Response:
    access.manageable(issuer, await service.get_key(session, key_id))
    await service.revoke_key(session, key_id)
    request.app.state.authenticator.forget(key_id)
    return Response(status_code=204)
