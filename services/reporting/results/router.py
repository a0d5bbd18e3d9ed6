"""``/v1/results``: programme results frameworks (baselines, targets, means of verification)
and the results against them, as JSON, a logframe CSV/XLSX and IATI 2.03 results XML."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bounds import Code, RecordId
from services.common.csvtext import csv_download
from services.common.deps import IfMatchHeader, SessionDep, check_if_match, version_etag
from services.common.errors import PROBLEM_RESPONSES, Conflict, invalid_field
from services.common.idempotency import IdempotencyDep
from services.common.ids import new_id
from services.common.openapi import file_response
from services.common.principal import Principal, Role, require_roles
from services.common.xlsxtext import XLSX_MEDIA_TYPE, xlsx_download
from services.reporting.deps import AppDep, ReaderDep, today
from services.reporting.indicators.definitions import BY_KEY
from services.reporting.results import service
from services.reporting.results.logframe import iati_xml, logframe_table
from services.reporting.results.schemas import (
    ResultIndicatorCreate,
    ResultIndicatorPublic,
    ResultIndicatorUpdate,
    ResultsPublic,
)
from services.reporting.tables import Agency, ResultIndicator, table_of

router = APIRouter(prefix="/v1/results", tags=["results"], responses=PROBLEM_RESPONSES)
WriterDep = Annotated[Principal, Depends(require_roles(Role.admin, Role.agency))]
IATI_MEDIA_TYPE = "application/xml"


class LogframeFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


def _location(programme_id: str, indicator_id: str) -> str:
    return f"/v1/results/{programme_id}/indicators/{indicator_id}"


def _known_indicator(key: str) -> None:
    if key not in BY_KEY:
        raise invalid_field(
            "indicator", f"'{key}' is not an indicator (see /v1/indicators/definitions)", "unknown_indicator"
        )


@router.post(
    "/{programme_id}/indicators",
    status_code=201,
    response_model=ResultIndicatorPublic,
    operation_id="create_result_indicator",
    summary="Add an indicator to a programme's results framework",
    description="The programme's agency (or an admin) chooses an indicator of `/v1/indicators/definitions`, "
    "the result it measures (level and statement), its baseline, targets per year or milestone and its means "
    "of verification. Each indicator appears once per programme (409 otherwise). Honours `Idempotency-Key`.",
)
async def create_result_indicator(
    programme_id: RecordId,
    body: ResultIndicatorCreate,
    session: SessionDep,
    principal: WriterDep,
    idempotency: IdempotencyDep,
) -> Response:
    programme = await service.programme_for(session, principal, programme_id)
    _known_indicator(body.indicator)
    now = datetime.now(UTC)
    row = ResultIndicator(
        id=new_id("rin"),
        programme_id=programme.id,
        agency_id=programme.agency_id,
        indicator=body.indicator,
        level=body.level.value,
        statement=body.statement,
        baseline_value=body.baseline.value,
        baseline_date=body.baseline.date,
        means_of_verification=body.means_of_verification,
        version=1,
        created_at=now,
        updated_at=now,
    )
    await _insert(session, row)
    targets = await service.replace_targets(session, row.id, [], body.targets)
    public = service.public(service.Framework(row, targets))
    headers = {"ETag": version_etag(row.version), "Location": _location(programme.id, row.id)}
    return await idempotency.respond(201, public, headers)


async def _insert(session: AsyncSession, row: ResultIndicator) -> None:
    existing = await session.scalar(
        select(ResultIndicator.id).where(  # type: ignore[call-overload]
            ResultIndicator.programme_id == row.programme_id, ResultIndicator.indicator == row.indicator
        )
    )
    conflict = Conflict(f"Programme '{row.programme_id}' already has indicator '{row.indicator}' in its framework")
    if existing is not None:
        raise conflict
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:  # the same indicator added concurrently
        raise conflict from None


@router.patch(
    "/{programme_id}/indicators/{indicator_id}",
    response_model=ResultIndicatorPublic,
    operation_id="update_result_indicator",
    summary="Change a framework indicator (its level, statement, baseline, targets or means of verification)",
    description="`targets`, when given, replaces every target. Requires `If-Match` with the indicator's version.",
)
async def update_result_indicator(
    programme_id: RecordId,
    indicator_id: RecordId,
    body: ResultIndicatorUpdate,
    response: Response,
    session: SessionDep,
    principal: WriterDep,
    if_match: IfMatchHeader = None,
) -> ResultIndicatorPublic:
    await service.programme_for(session, principal, programme_id)
    framework = await service.one(session, programme_id, indicator_id)
    row = framework.row
    check_if_match(if_match, row.version, "framework indicator")
    if body.level is not None:
        row.level = body.level.value
    if body.statement is not None:
        row.statement = body.statement
    if body.baseline is not None:
        row.baseline_value, row.baseline_date = body.baseline.value, body.baseline.date
    if body.means_of_verification is not None:
        row.means_of_verification = body.means_of_verification
    targets = framework.targets
    if body.targets is not None:
        targets = await service.replace_targets(session, row.id, framework.targets, body.targets)
    row.version += 1
    row.updated_at = datetime.now(UTC)
    await session.flush()
    response.headers["ETag"] = version_etag(row.version)
    return service.public(service.Framework(row, targets))


@router.delete(
    "/{programme_id}/indicators/{indicator_id}",
    status_code=204,
    response_class=Response,
    operation_id="delete_result_indicator",
    summary="Remove an indicator from a programme's results framework",
    description="Requires `If-Match` with the indicator's version.",
)
async def delete_result_indicator(
    programme_id: RecordId,
    indicator_id: RecordId,
    session: SessionDep,
    principal: WriterDep,
    if_match: IfMatchHeader = None,
) -> Response:
    await service.programme_for(session, principal, programme_id)
    framework = await service.one(session, programme_id, indicator_id)
    check_if_match(if_match, framework.row.version, "framework indicator")
    await service.replace_targets(session, framework.row.id, framework.targets, [])
    await session.delete(framework.row)
    return Response(status_code=204)


@router.get(
    "/{programme_id}",
    response_model=ResultsPublic,
    operation_id="read_programme_results",
    summary="A programme's results against its framework",
    description="For each framework indicator: its baseline, and per period the target, the actual (the "
    "indicator over the period for the programme's records) and the share achieved, "
    "(actual - baseline) / (target - baseline).",
)
async def read_programme_results(
    programme_id: RecordId, app: AppDep, session: SessionDep, principal: ReaderDep
) -> ResultsPublic:
    return await service.results_body(app, session, principal, programme_id)


@router.get(
    "/{programme_id}/logframe.{file_type}",
    operation_id="export_programme_logframe",
    summary="A programme's results in the logframe layout, as CSV or XLSX",
    response_class=Response,
    responses=file_response("The logframe", "text/csv", XLSX_MEDIA_TYPE),
    description="One row per framework indicator (impact, outcome, output): level, statement, indicator, "
    "means of verification, baseline; then per period its target, actual and share achieved.",
)
async def export_programme_logframe(
    programme_id: RecordId, file_type: LogframeFormat, app: AppDep, session: SessionDep, principal: ReaderDep
) -> Response:
    body = await service.results_body(app, session, principal, programme_id)
    header, rows = logframe_table(body)
    if file_type is LogframeFormat.csv:
        return csv_download(header, rows, f"logframe-{programme_id}.csv")
    return xlsx_download([("logframe", header, rows)], f"logframe-{programme_id}.xlsx")


OrgRef = Annotated[
    Code | None,
    Query(description="The reporting organisation's IATI identifier (the programme's agency id when absent)"),
]
OrgType = Annotated[
    str,
    Query(pattern=r"^[0-9]{2}$", description="IATI OrganisationType code of the reporting organisation"),
]


@router.get(
    "/{programme_id}/iati.xml",
    operation_id="export_programme_iati_results",
    summary="A programme's results framework as IATI 2.03 activity XML",
    response_class=Response,
    responses=file_response("An iati-activities document", IATI_MEDIA_TYPE),
    description="One `iati-activity` for the programme with a `result` per framework indicator: baseline, and "
    "per period target and actual.",
)
async def export_programme_iati_results(
    programme_id: RecordId,
    app: AppDep,
    session: SessionDep,
    principal: ReaderDep,
    reporting_org_ref: OrgRef = None,
    reporting_org_type: OrgType = "90",
) -> Response:
    body = await service.results_body(app, session, principal, programme_id)
    agencies = table_of(Agency)
    name: Any = await session.scalar(select(agencies.c.name).where(agencies.c.id == body.programme.agency_id))
    org_ref = reporting_org_ref or body.programme.agency_id
    xml = iati_xml(body, str(name or body.programme.agency_id), org_ref, reporting_org_type, today())
    return Response(
        xml,
        media_type=IATI_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="iati-results-{programme_id}.xml"'},
    )
