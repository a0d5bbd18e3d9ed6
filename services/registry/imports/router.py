"""``/v1/imports``: upload a file of firms or firm results, follow the job, download the rejected rows."""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from starlette.datastructures import UploadFile

from services.common.bounds import RecordId, SearchQuery
from services.common.csvtext import csv_download, csv_stream
from services.common.deps import SessionDep
from services.common.errors import (
    PROBLEM_RESPONSES,
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    invalid_field,
)
from services.common.idempotency import IdempotencyKeyHeader, begin_idempotent
from services.common.ids import new_id
from services.common.openapi import XLSX_MEDIA_TYPE, file_response
from services.common.pagination import ListQuery, Page, fetch_page, sortable
from services.common.principal import Principal, PrincipalDep, Role
from services.registry.agencies.models import Agency
from services.registry.duplicates.consumer import check_position
from services.registry.imports.files import ENCODINGS, ImportFile, resolve_mapping, template_rows, template_xlsx
from services.registry.imports.kinds import DEFAULT_KIND, KINDS
from services.registry.imports.models import ImportJob, ImportRowError

router = APIRouter(prefix="/v1/imports", tags=["imports"], responses=PROBLEM_RESPONSES)
CHUNK = 1024 * 1024
MEDIA_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "text/plain": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/json-lines": "ndjson",
    XLSX_MEDIA_TYPE: "xlsx",
}
EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".xlsx": "xlsx"}
Format = Literal["csv", "xlsx", "ndjson"]
Kind = Literal["firms", "firm_results"]  # the keys of kinds.KINDS
KindQuery = Annotated[
    Kind, Query(description="What the file holds: firms, or firm results (figures per firm and period)")
]


DELIMITER_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f-\x9f]$"  # one character; a tab, not a control character


class ImportProgress(BaseModel):
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    rows_skipped: int  # already imported: same national id, or the same row content, for this agency
    # The duplicate check follows the rows behind them (firms only): the counts below grow
    # after the job has completed, until ``duplicate_check`` is ``done``.
    rows_checked: int  # new firms checked for duplicates so far
    duplicates_pending: int  # new firms the check has still to reach
    duplicate_check: Literal["none", "pending", "done"]  # none: the kind has no duplicate check
    duplicates_suspected: int
    duplicates_merged: int


class ImportJobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agency_id: str
    kind: Kind
    status: Literal["queued", "running", "completed", "failed"]
    format: Format
    filename: str | None
    size_bytes: int
    file_sha256: str
    columns: list[str]
    mapping: dict[str, str | None]
    progress: ImportProgress
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    errors_url: str
    duplicates_url: str | None  # firms only


class ImportQuery(ListQuery):
    status: Literal["queued", "running", "completed", "failed"] | None = None
    agency_id: RecordId | None = None


def public(job: ImportJob, checked_through: int) -> ImportJobPublic:
    """The job as the API shows it; ``checked_through``: the feed position every partition of
    the duplicate check has passed (``consumer.check_position``)."""
    kind = KINDS[job.options.get("kind", DEFAULT_KIND)]
    rows_in = job.status in ("completed", "failed")
    if not kind.checks_duplicates:
        check: Literal["none", "pending", "done"] = "none"
    elif rows_in and (job.last_change_seq is None or job.last_change_seq <= checked_through):
        check = "done"
    else:
        check = "pending"
    return ImportJobPublic(
        id=job.id,
        agency_id=job.agency_id,
        kind=kind.name,
        status=job.status,  # type: ignore[arg-type,unused-ignore]
        format=job.format,  # type: ignore[arg-type,unused-ignore]
        filename=job.filename,
        size_bytes=job.size_bytes,
        file_sha256=job.file_sha256,
        columns=job.columns,
        mapping=job.options.get("resolved_mapping", {}),
        progress=ImportProgress(
            rows_read=job.rows_read,
            rows_accepted=job.rows_accepted,
            rows_rejected=job.rows_rejected,
            rows_skipped=job.rows_skipped,
            rows_checked=job.rows_checked,
            duplicates_pending=max(0, job.rows_accepted - job.rows_checked) if check == "pending" else 0,
            duplicate_check=check,
            duplicates_suspected=job.duplicates_suspected,
            duplicates_merged=job.duplicates_merged,
        ),
        error=job.error,
        created_at=job.created_at,  # type: ignore[arg-type,unused-ignore]
        started_at=job.started_at,
        finished_at=job.finished_at,
        errors_url=f"/v1/imports/{job.id}/errors.csv",
        duplicates_url=f"/v1/duplicates?import_id={job.id}" if kind.checks_duplicates else None,
    )


def _importing_agency(principal: Principal, requested: str | None) -> str:
    if principal.is_admin:
        if requested is None:
            raise invalid_field("agency_id", "required when an admin imports", "missing", "query")
        return requested
    if principal.role is not Role.agency or principal.agency_id is None:
        raise Forbidden(f"Role '{principal.role}' may not import firms")
    if requested is not None and requested != principal.agency_id:
        raise Forbidden("An agency imports firms for itself only")
    return principal.agency_id


def _readable(principal: Principal, job: ImportJob) -> None:
    if not (principal.is_admin or (principal.role is Role.agency and principal.agency_id == job.agency_id)):
        raise NotFound(f"No import with id '{job.id}'")


class _Upload:
    """Streams a body to a file, hashing it, counting it and checking its text encoding."""

    def __init__(self, path: Path, limit: int, encoding: str | None) -> None:
        self.path, self.limit = path, limit
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.encoding = encoding
        self.decoder = codecs.getincrementaldecoder(encoding)("strict") if encoding else None
        self.handle = open(path, "wb")  # noqa: SIM115 - closed in finish/abort

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge(f"Import files are limited to {self.limit} bytes")
        self.sha256.update(chunk)
        if self.decoder is not None:
            self._decode(chunk, final=False)
        self.handle.write(chunk)

    def _decode(self, chunk: bytes, *, final: bool) -> None:
        assert self.decoder is not None
        try:
            self.decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            offset = self.size - len(chunk) + exc.start
            raise ValidationFailed(
                f"The file is not valid {self.decoder_name}: byte 0x{exc.object[exc.start]:02x} at offset {offset}; "
                "send it as UTF-8, or name its encoding with encoding=latin-1, cp1252 or utf-16",
                errors=[FieldError(location="file", field="", message=str(exc.reason), code="encoding")],
            ) from None

    @property
    def decoder_name(self) -> str:
        return (self.encoding or "utf-8").upper()

    def finish(self) -> None:
        if self.decoder is not None:
            self._decode(b"", final=True)
        self.handle.close()

    def abort(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


def _format_of(requested: str | None, content_type: str | None, filename: str | None) -> str:
    if requested:
        return requested
    if filename:
        extension = os.path.splitext(filename)[1].lower()
        if extension in EXTENSIONS:
            return EXTENSIONS[extension]
    media = (content_type or "").split(";")[0].strip().lower()
    if media in MEDIA_TYPES:
        return MEDIA_TYPES[media]
    raise UnsupportedMediaType(
        "Send the file as text/csv, application/x-ndjson or the XLSX media type "
        "(or as multipart/form-data with a file named .csv, .ndjson or .xlsx), or pass format="
    )


@router.get(
    "/template.csv",
    operation_id="download_import_template_csv",
    summary="Download the CSV import template",
    response_class=Response,
    responses=file_response("The template: the header row and one example row", "text/csv"),
)
async def download_template_csv(kind: KindQuery = "firms") -> Response:
    header, example = template_rows(KINDS[kind].columns)
    return csv_download(header, [example], f"{kind.replace('_', '-')}-template.csv")


@router.get(
    "/template.xlsx",
    operation_id="download_import_template_xlsx",
    summary="Download the XLSX import template",
    response_class=Response,
    responses=file_response("The template as a workbook", XLSX_MEDIA_TYPE),
)
async def download_template_xlsx(kind: KindQuery = "firms") -> Response:
    name = kind.replace("_", "-")
    return Response(
        template_xlsx(KINDS[kind].columns, name),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}-template.xlsx"'},
    )


@router.post(
    "",
    operation_id="create_import",
    status_code=202,
    response_model=ImportJobPublic,
    summary="Import firms or firm results from a CSV, XLSX or NDJSON file",
    responses={
        413: PROBLEM_RESPONSES[422] | {"description": "File too large"},
        415: PROBLEM_RESPONSES[422] | {"description": "Not a CSV, XLSX or NDJSON file"},
    },
)
async def create_import(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    background: BackgroundTasks,
    kind: KindQuery = "firms",
    format: Annotated[Format | None, Query(description="csv, xlsx or ndjson; else from the media type")] = None,
    agency_id: Annotated[RecordId | None, Query(description="The importing agency (admins)")] = None,
    mapping: Annotated[
        str | None,
        Query(
            description='JSON object: input column -> template column, or null to ignore, e.g. {"RUC": "national_id"}'
        ),
    ] = None,
    encoding: Annotated[Literal[ENCODINGS] | None, Query(description="Text encoding of CSV/NDJSON")] = None,  # type: ignore[valid-type]
    delimiter: Annotated[
        str | None, Query(pattern=DELIMITER_PATTERN, description="CSV delimiter, one character (sniffed)")
    ] = None,
    sheet: Annotated[SearchQuery | None, Query(description="XLSX sheet (the first by default)")] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Stores the upload, checks its header and answers 202 with a job that imports it in the background."""
    agency = _importing_agency(principal, agency_id)
    parsed_mapping: dict[str, str | None] | None = None
    if mapping is not None:
        try:
            parsed_mapping = json.loads(mapping)
        except ValueError:
            parsed_mapping = None
        if not isinstance(parsed_mapping, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in parsed_mapping.items()
        ):
            raise invalid_field("mapping", "a JSON object of column names to column names or null", "invalid", "query")
    settings = request.app.state.settings
    directory = Path(settings.import_directory)
    directory.mkdir(parents=True, exist_ok=True)
    job_id = new_id("imp")
    content_type = request.headers.get("content-type", "")
    filename: str | None = None
    form = None
    upload: UploadFile | None = None
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=20)
        field = form.get("file")
        if not isinstance(field, UploadFile):
            await form.close()
            raise invalid_field("file", "send the file in a multipart field named 'file'", "missing", "body")
        upload = field
        filename = upload.filename
        fmt = _format_of(format, upload.content_type, filename)
    else:
        fmt = _format_of(format, content_type, None)
    text_encoding = None if fmt == "xlsx" else (encoding or "utf-8")
    stored = directory / f"{job_id}.{fmt}"
    sink = _Upload(stored, settings.import_max_bytes, text_encoding)
    try:
        if upload is not None and form is not None:
            while chunk := await upload.read(CHUNK):
                sink.write(chunk)
            await form.close()
        else:
            async for chunk in request.stream():
                sink.write(chunk)
        sink.finish()
        if sink.size == 0:
            raise ValidationFailed(
                "The file is empty: it needs a header row and at least one data row",
                errors=[FieldError(location="file", field="", message="0 bytes", code="empty_file")],
            )
        source = ImportFile(stored, fmt, encoding=text_encoding or "utf-8", delimiter=delimiter, sheet=sheet)
        header = source.header()
        resolved = resolve_mapping(header, parsed_mapping, KINDS[kind].columns)
        if not source.has_rows():
            raise ValidationFailed(
                "The file has a header but no rows",
                errors=[FieldError(location="file", field="", message="no data rows", code="empty_file")],
            )
        options = {
            "kind": kind,
            "mapping": parsed_mapping,
            "resolved_mapping": resolved.by_input,
            "encoding": text_encoding or "utf-8",
            "delimiter": delimiter,
            "sheet": sheet,
        }
        canonical = json.dumps(
            {"agency": agency, "format": fmt, "options": {k: v for k, v in options.items() if k != "resolved_mapping"}},
            sort_keys=True,
        )
        fingerprint = hashlib.sha256(f"POST /v1/imports\n{canonical}\n{sink.sha256.hexdigest()}".encode()).hexdigest()
        idempotency = await begin_idempotent(request, session, principal.subject, idempotency_key, fingerprint)
        if await session.get(Agency, agency) is None:
            raise invalid_field("agency_id", f"no agency with id '{agency}'", "unknown_reference", "query")
    except BaseException:
        sink.abort()
        if form is not None:
            await form.close()
        raise
    now = datetime.now(UTC)
    job = ImportJob(
        id=job_id,
        agency_id=agency,
        principal=principal.model_dump(mode="json"),
        status="queued",
        format=fmt,
        filename=filename,
        file_path=stored.name,
        file_sha256=sink.sha256.hexdigest(),
        size_bytes=sink.size,
        options=options,
        columns=header,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    await session.flush()
    # Started once the response is sent, so after the session dependency committed the job.
    background.add_task(_start, request.app.state.imports, job_id)
    return await idempotency.respond(202, public(job, 0), {"Location": f"/v1/imports/{job_id}"})


async def _start(runner: Any, job_id: str) -> None:
    runner.start(job_id)


@router.get("", operation_id="list_imports", response_model=Page[ImportJobPublic], summary="List import jobs")
async def list_imports(
    request: Request, session: SessionDep, principal: PrincipalDep, query: Annotated[ImportQuery, Query()]
) -> Page[ImportJobPublic]:
    params = query.page_params(request.app.state.settings)
    statement = select(ImportJob)
    if not principal.is_admin:
        if principal.role is not Role.agency:
            raise Forbidden(f"Role '{principal.role}' has no imports")
        statement = statement.where(ImportJob.agency_id == principal.agency_id)  # type: ignore[arg-type]
    if query.agency_id is not None:
        statement = statement.where(ImportJob.agency_id == query.agency_id)  # type: ignore[arg-type]
    if query.status is not None:
        statement = statement.where(ImportJob.status == query.status)  # type: ignore[arg-type]
    sorts = sortable(ImportJob, "created_at", "updated_at", "status")
    position = await check_position(session, request.app.state.settings.duplicates_partitions)  # first: see read_import
    rows = await fetch_page(session, statement, key=ImportJob.id, params=params, sorts=sorts)  # type: ignore[arg-type,unused-ignore]
    return rows.map(lambda job: public(job, position.checked_through))


async def _job(session: SessionDep, principal: Principal, job_id: str) -> ImportJob:
    job = await session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"No import with id '{job_id}'")
    _readable(principal, job)
    return job


@router.get(
    "/{job_id}", operation_id="read_import", response_model=ImportJobPublic, summary="Status and progress of an import"
)
async def read_import(
    job_id: RecordId, request: Request, session: SessionDep, principal: PrincipalDep
) -> ImportJobPublic:
    # The check's position first, then the job: the check adds to a job's counters in the
    # transaction that moves its cursor, so counters read after the cursor include that page.
    # Read the other way round (each statement sees the latest commits on PostgreSQL), a page
    # committing in between showed the check "done" with the counters of the page before.
    position = await check_position(session, request.app.state.settings.duplicates_partitions)
    job = await _job(session, principal, job_id)
    return public(job, position.checked_through)


@router.get(
    "/{job_id}/errors.csv",
    operation_id="download_import_errors",
    summary="The rejected rows of an import, one line per problem",
    response_class=StreamingResponse,
    responses=file_response("The rejected rows", "text/csv"),
)
async def import_errors(
    job_id: RecordId, request: Request, session: SessionDep, principal: PrincipalDep
) -> StreamingResponse:
    """Columns: ``row`` (as the input counts: header row 1, or NDJSON line), ``column`` (the input's
    header), ``field`` (the API field), ``code`` (as single writes report it), ``message``, ``value``."""
    await _job(session, principal, job_id)
    sessionmaker = request.app.state.read_sessionmaker
    table = ImportRowError.__table__  # type: ignore[attr-defined]

    async def batches() -> AsyncIterator[list[tuple[Any, ...]]]:
        after = 0
        async with sessionmaker() as reader:
            while True:
                rows = (
                    await reader.execute(
                        select(table)
                        .where(table.c.job_id == job_id, table.c.id > after)
                        .order_by(table.c.id)
                        .limit(5000)
                    )
                ).all()
                if not rows:
                    return
                yield [(r.row_number, r.column, r.field, r.code, r.message, r.value or "") for r in rows]
                after = rows[-1].id

    return csv_stream(("row", "column", "field", "code", "message", "value"), batches(), f"{job_id}-errors.csv")


def mapping_json(mapping: dict[str, Any]) -> str:
    return json.dumps(mapping)
