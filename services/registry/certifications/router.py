"""The certification vocabulary: everyone reads it, admins extend it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import col

from services.common.changefeed import PendingChange, record_changes
from services.common.deps import SessionDep
from services.common.errors import PROBLEM_RESPONSES, Conflict
from services.common.idempotency import IdempotencyDep
from services.common.pagination import Page, PageParamsDep, fetch_page, sortable
from services.common.principal import Principal, PrincipalDep, Role, require_roles
from services.registry.certifications.models import CertificationScheme
from services.registry.certifications.schemas import CertificationSchemeCreate, CertificationSchemePublic
from services.registry.tables import metadata

router = APIRouter(prefix="/v1/certification-schemes", tags=["certification schemes"], responses=PROBLEM_RESPONSES)


@router.get(
    "",
    operation_id="list_certification_schemes",
    response_model=Page[CertificationSchemePublic],
    summary="List certification schemes",
)
async def list_schemes(
    session: SessionDep, _principal: PrincipalDep, page: PageParamsDep
) -> Page[CertificationSchemePublic]:
    rows = await fetch_page(
        session,
        select(CertificationScheme),
        key=col(CertificationScheme.code),
        params=page,
        sorts=sortable(CertificationScheme, "name", "created_at"),
    )
    return rows.map(CertificationSchemePublic.model_validate)


@router.post(
    "",
    operation_id="create_certification_scheme",
    status_code=201,
    response_model=CertificationSchemePublic,
    summary="Add a certification scheme",
)
async def create_scheme(
    request: Request,
    body: CertificationSchemeCreate,
    session: SessionDep,
    _admin: Annotated[Principal, Depends(require_roles(Role.admin))],
    idempotency: IdempotencyDep,
) -> Response:
    if await session.get(CertificationScheme, body.code) is not None:
        raise Conflict(f"Certification scheme '{body.code}' exists already")
    row = CertificationScheme(**body.model_dump(), created_at=datetime.now(UTC))
    session.add(row)
    await session.flush()
    public = CertificationSchemePublic.model_validate(row)
    await record_changes(
        session,
        metadata.tables["outbox"],
        [
            PendingChange(
                entity="certification_scheme",
                entity_id=row.code,
                op="created",
                version=1,
                agency_id=None,
                data=public.model_dump(mode="json"),
            )
        ],
    )
    return await idempotency.respond(201, public, {"Location": f"{request.url.path}/{row.code}"})


async def unknown_schemes(session: SessionDep, codes: set[str]) -> set[str]:
    """The codes in ``codes`` that are not in the vocabulary."""
    if not codes:
        return set()
    known = set(
        (
            await session.scalars(select(col(CertificationScheme.code)).where(col(CertificationScheme.code).in_(codes)))
        ).all()
    )
    return codes - known
