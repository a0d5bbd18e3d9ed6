"""One implementation of registering a kind of record, shared by every domain.

A domain declares a ``ResourceSpec`` (its table, its create/update/public schemas,
its filters, the references it holds and the tags it indexes) and gets the five
routes every registry resource has: create, list, read, update and delete. The
shared rules live here once: tenant ownership, ``ETag``/``If-Match``,
``Idempotency-Key``, reference checks, tag indexing for filters, and one outbox row
per change in the same transaction.
"""

# No ``from __future__ import annotations``: the route factories build signatures
# from the spec's classes, which FastAPI must see as real objects.

import functools
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import JSON, ColumnElement, Select, delete, false, func, or_, select, true, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bounds import RecordId
from services.common.bulk import chunks, insert_rows
from services.common.changefeed import PendingChange, record_changes
from services.common.deps import IfMatchHeader, SessionDep, check_if_match, etag_matches, version_etag
from services.common.errors import (
    PROBLEM_RESPONSES,
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
    field_error,
)
from services.common.idempotency import IdempotencyDep
from services.common.ids import new_id
from services.common.jsontext import json_response, json_time
from services.common.pagination import Page, Tiers, fetch_page, fetch_tiered_page, sortable
from services.common.principal import Principal, PrincipalDep, Role
from services.registry.agencies.models import Agency
from services.registry.schemas import RecordQuery
from services.registry.tables import RecordColumns, RecordTag, metadata

WRITER_ROLES = (Role.admin, Role.agency)
OUTBOX = metadata.tables["outbox"]
# Tables of records owned through their agency_id, and their entity names: an agency
# that still owns any of them cannot be deleted.
OWNED_TABLES: dict[type[RecordColumns], str] = {}

_T = TypeVar("_T")


@dataclass(frozen=True)
class Tag:
    """A value of a multi-valued attribute, indexed for filtering."""

    facet: str
    value: str
    valid_from: date | None = None
    valid_until: date | None = None


@dataclass(frozen=True)
class Reference:
    """A field that points at another record, which must exist."""

    field: str  # as named in errors, e.g. "members.2.firm_id"
    target: type[RecordColumns]
    id: str
    facet: str  # the tag under which the reference is indexed (and filtered)


@dataclass(frozen=True)
class ColumnFilter:
    column: str


@dataclass(frozen=True)
class FacetFilter:
    facet: str
    prefix: bool = False  # "14" matches "1410": ISIC and HS hierarchies
    valid_on_today: bool = False  # certifications: only those valid today


@dataclass(frozen=True)
class TextFilter:
    columns: tuple[str, ...]


Filter = ColumnFilter | FacetFilter | TextFilter
# Rules needing the database, checked for a batch at once on the records' documents (the
# create schema's JSON, see ``Draft``): one problem (or None) per document.
BatchCheck = Callable[[AsyncSession, Sequence[dict[str, Any]]], Awaitable[list[ValidationFailed | None]]]
# Called in the writing transaction after records were created, updated or deleted:
# (session, op, [(record id, owning agency id, document, or None when deleted)]).
AfterWrite = Callable[[AsyncSession, str, Sequence[tuple[str, str, Any]]], Awaitable[None]]


@dataclass(frozen=True)
class Draft:
    """A validated record, ready to be written: all that creating it takes besides the database.

    Made by ``draft`` from the create schema; plain data, so that an importer can make
    drafts in worker processes and hand them to ``create_drafts``.
    """

    requested_agency: str | None  # the agency_id field, if set (admins name the owner)
    document: dict[str, Any]  # the create schema's fields, JSON-ready
    columns: dict[str, Any]  # table column values (JSON columns JSON-ready), without the record columns
    tags: list[tuple[str, str, date | None, date | None]]  # facet, value, validity; references included
    references: list[Reference]


@dataclass(frozen=True)
class Created:
    """A record ``create_records`` wrote: its id, owner and the document it published."""

    id: str
    agency_id: str
    document: dict[str, Any]  # the record as the API shows it (JSON-ready)


@dataclass
class ResourceSpec:
    entity: str  # singular, as in the change feed: "cluster"
    path: str  # "/v1/clusters"
    id_prefix: str
    table: type[RecordColumns]
    create: type[BaseModel]
    update: type[BaseModel]
    public: type[BaseModel]
    query: type[RecordQuery]
    filters: dict[str, Filter] = field(default_factory=dict)
    tags: Callable[[Any], list[Tag]] = lambda _data: []
    references: Callable[[Any], list[Reference]] = lambda _data: []
    check: BatchCheck | None = None  # rules needing the database
    check_reads: tuple[str, ...] = ()  # the document fields ``check`` reads (all a batch writer needs)
    after_write: AfterWrite | None = None  # e.g. firms: a hook other domains connect to (firms/hooks.py)
    create_roles: tuple[Role, ...] = WRITER_ROLES
    # Agencies own themselves; every other record is owned by its agency_id.
    owner_of: Callable[[Any], str] = lambda row: row.agency_id
    tenant_owned: bool = True
    tag_name: str = ""
    sort_fields: tuple[str, ...] = ()  # besides created_at, updated_at and name (see ``sorts_of``)
    # Full-text search: narrows the list statement by the query's ``q`` and gives the
    # relevance tiers used when no ``sort`` is asked (None: no search, or no ``q``).
    search: Callable[[AsyncSession, Select[Any], Any], Awaitable[tuple[Select[Any], Tiers | None]]] | None = None
    # Columns computed from the others on every write (e.g. firms' folded search columns).
    derived: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Fields no two records share together (a natural key, e.g. a firm and a period):
    # a write that would repeat one is a 422 naming the key's last field.
    unique: tuple[str, ...] = ()
    # Read only by the owning agency, its viewers, platform viewers and admins (others: 404,
    # and lists without them); unset: the shared catalogue, which every key reads.
    private: bool = False
    # Columns set from the writer on every create and update (e.g. who entered the figures).
    stamp: Callable[[Principal], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.tenant_owned:
            OWNED_TABLES[self.table] = self.entity

    @property
    def title(self) -> str:
        return self.tag_name or self.path.rsplit("/", 1)[-1].replace("-", " ")


def with_derived(spec: ResourceSpec, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a record's column values) with the spec's derived columns added."""
    return values | spec.derived(values) if spec.derived is not None else values


def etag_of(row: RecordColumns) -> str:
    return version_etag(row.version)


def public_of(spec: ResourceSpec, row: RecordColumns) -> BaseModel:
    return spec.public.model_validate(row, from_attributes=True)


def _row_values(spec: ResourceSpec, data: BaseModel) -> dict[str, Any]:
    """Column values from a validated schema: JSON columns get JSON-ready values."""
    python = data.model_dump()
    as_json = data.model_dump(mode="json")
    columns = spec.table.__table__.columns  # type: ignore[attr-defined]
    values: dict[str, Any] = {}
    for name, value in python.items():
        if name in columns and name not in ("id", "agency_id", "version", "created_at", "updated_at"):
            values[name] = as_json[name] if isinstance(columns[name].type, JSON) else value
    return values


def reference_agency(principal: Principal) -> str | None:
    """The agency whose records ``principal`` may reference in what it writes (None: any agency).

    An agency references only its own records, so no tenant can attach its records to
    another's programme, cluster, firm or broker (and so block its deletion or swell its
    figures); an admin may reference across agencies.
    """
    if principal.is_admin:
        return None
    return principal.agency_id or ""  # a principal of no agency may reference no record


async def _reference_problems(
    session: AsyncSession,
    references: Sequence[Sequence[Reference]],
    *,
    agency: str | None,
    held: Collection[tuple[str, str]] = (),
) -> list[ValidationFailed | None]:
    """One query per target table for a whole batch; a problem (or None) per item.

    A reference must name an existing record of ``agency`` (None: of any agency). One
    to another agency's record gets exactly the problem of one to a record that does
    not exist, so references cannot probe for other tenants' ids. ``held`` (facet, id)
    pairs are references the record already has: kept as they are whoever owns them
    (an admin may have set them), so an update need not drop them.
    """
    by_target: dict[type[RecordColumns], set[str]] = {}
    for item_references in references:
        for ref in item_references:
            by_target.setdefault(ref.target, set()).add(ref.id)
    owners: dict[tuple[type[RecordColumns], str], str] = {}
    for target, ids in by_target.items():
        for chunk in chunks(sorted(ids), 5000):
            rows = await session.execute(select(target.id, target.agency_id).where(target.id.in_(chunk)))  # type: ignore[attr-defined, call-overload]
            owners |= {(target, record_id): owner for record_id, owner in rows}

    def referable(ref: Reference) -> bool:
        owner = owners.get((ref.target, ref.id))
        return owner is not None and (agency is None or owner == agency or (ref.facet, ref.id) in held)

    problems: list[ValidationFailed | None] = []
    for item_references in references:
        errors = [
            field_error(ref.field, f"no {ref.target.__tablename__} with id '{ref.id}'", "unknown_reference")
            for ref in item_references
            if not referable(ref)
        ]
        problems.append(
            ValidationFailed("Referenced records do not exist: " + ", ".join(e.field for e in errors), errors=errors)
            if errors
            else None
        )
    return problems


async def _check_references(session: AsyncSession, references: Sequence[Reference]) -> None:
    problem = (await _reference_problems(session, [references], agency=None))[0]
    if problem is not None:
        raise problem


def tag_rows(spec: ResourceSpec, record_id: str, data: BaseModel | Draft) -> list[dict[str, Any]]:
    """The ``record_tags`` rows of a record: its tags and its references."""
    tags = (data if isinstance(data, Draft) else draft(spec, data)).tags
    return [
        {"record_id": record_id, "entity": spec.entity, "facet": f, "value": v, "valid_from": a, "valid_until": b}
        for f, v, a, b in tags
    ]


async def _write_tags(session: AsyncSession, spec: ResourceSpec, record_id: str, data: BaseModel) -> None:
    await session.execute(delete(RecordTag).where(RecordTag.record_id == record_id))  # type: ignore[arg-type]
    await insert_rows(session, RecordTag.__table__, tag_rows(spec, record_id, data))  # type: ignore[attr-defined]


async def validation_problems(
    session: AsyncSession,
    spec: ResourceSpec,
    drafts: Sequence[Draft],
    *,
    agency: str | None,
    held: Collection[tuple[str, str]] = (),
    updating: str | None = None,
) -> list[ValidationFailed | None]:
    """The database rules of a batch (references first, then the spec's check, then ``unique``).

    ``agency`` and ``held``: whose records the references may name (see ``_reference_problems``);
    ``updating``: the record an update rewrites (its own key is no repeat).
    """
    problems = await _reference_problems(session, [d.references for d in drafts], agency=agency, held=held)
    if spec.check is not None:
        checked = await spec.check(session, [d.document for d in drafts])
        problems = [reference or other for reference, other in zip(problems, checked, strict=True)]
    if spec.unique:
        repeated = await _unique_problems(session, spec, drafts, updating=updating)
        problems = [first or other for first, other in zip(problems, repeated, strict=True)]
    return problems


async def _unique_problems(
    session: AsyncSession, spec: ResourceSpec, drafts: Sequence[Draft], *, updating: str | None
) -> list[ValidationFailed | None]:
    """A problem for each draft whose ``spec.unique`` values another record (or an earlier
    draft of the batch) holds already; ``updating``: the id of the record being rewritten."""
    keys = [tuple(d.document.get(name) for name in spec.unique) for d in drafts]
    columns = [getattr(spec.table, name) for name in spec.unique]
    taken: dict[tuple[Any, ...], str] = {}
    for chunk in chunks(sorted(set(keys), key=repr), 1000):
        statement = select(spec.table.id, *columns).where(tuple_(*columns).in_(chunk))  # type: ignore[call-overload]
        if updating is not None:
            statement = statement.where(spec.table.id != updating)
        taken |= {tuple(row[1:]): row[0] for row in await session.execute(statement)}
    field_name = spec.unique[-1]
    problems: list[ValidationFailed | None] = []
    for key in keys:
        holder = taken.get(key)
        if holder is None:
            taken[key] = "an earlier item"
            problems.append(None)
            continue
        named = ", ".join(f"{n} {v}" for n, v in zip(spec.unique, key, strict=True))
        message = f"{holder} has {named} already"
        problems.append(ValidationFailed(message, errors=[field_error(field_name, message, "duplicate")]))
    return problems


def checked_part(spec: ResourceSpec, item: Draft) -> Draft:
    """What ``validation_problems`` and ``owning_agencies`` read of a draft: its owner, references and
    the document fields of ``check_reads`` and ``unique``. A writer that takes the rest from
    elsewhere (the lines an importer's worker renders) has only this sent to it."""
    fields = (*spec.check_reads, *spec.unique)
    document = {name: item.document[name] for name in fields if name in item.document}
    return Draft(item.requested_agency, document, {}, [], item.references)


def draft(spec: ResourceSpec, data: BaseModel) -> Draft:
    """Everything about a validated record that needs no database (CPU only, no I/O)."""
    document = data.model_dump(mode="json")
    values = {
        name: document[name] if is_json else getattr(data, name)
        for name, is_json in _writable_columns(spec.table)
        if name in document
    }
    values = with_derived(spec, values)
    references = spec.references(data)
    tags = {(t.facet, t.value, t.valid_from, t.valid_until) for t in spec.tags(data)}
    tags |= {(r.facet, r.id, None, None) for r in references}
    return Draft(
        getattr(data, "agency_id", None), document, values, sorted(tags, key=lambda t: (t[0], t[1])), references
    )


async def publish_record(session: AsyncSession, spec: ResourceSpec, row: RecordColumns, op: str) -> None:
    """Put one written record's change on the change feed (the outbox), in the writing transaction."""
    data = None if op == "deleted" else public_of(spec, row).model_dump(mode="json")
    await record_changes(
        session,
        OUTBOX,
        [
            PendingChange(
                entity=spec.entity,
                entity_id=row.id,
                op=op,
                version=row.version,
                agency_id=spec.owner_of(row),
                data=data,
            )
        ],
    )


def _owning_agency(spec: ResourceSpec, principal: Principal, requested: str | None) -> str:
    if principal.role not in spec.create_roles:
        raise Forbidden(f"Role '{principal.role}' may not create {spec.title}")
    if principal.is_admin:
        if requested is None:
            raise ValidationFailed(
                "An admin must name the owning agency",
                errors=[field_error("agency_id", "required when an admin creates a record", "missing")],
            )
        return requested
    if principal.agency_id is None:
        raise Forbidden("This principal names no agency to create records for")
    if requested is not None and requested != principal.agency_id:
        raise Forbidden("An agency creates records for itself only")
    return principal.agency_id


async def owning_agencies(
    session: AsyncSession, spec: ResourceSpec, *, principal: Principal, drafts: Sequence[Draft]
) -> dict[str | None, str]:
    """The owner of each requested ``agency_id`` of a batch, which must exist; ``Forbidden`` (or a
    missing owner's ``ValidationFailed``) for the whole batch. Empty for a resource no agency owns."""
    owners: dict[str | None, str] = {}
    if spec.tenant_owned:
        for item in drafts:
            if item.requested_agency not in owners:
                owners[item.requested_agency] = _owning_agency(spec, principal, item.requested_agency)
        await _check_references(  # the owner must exist
            session, [Reference("agency_id", Agency, agency, "agency") for agency in dict.fromkeys(owners.values())]
        )
    elif principal.role not in spec.create_roles:
        raise Forbidden(f"Role '{principal.role}' may not create {spec.title}")
    return owners


async def create_records(
    session: AsyncSession,
    spec: ResourceSpec,
    *,
    principal: Principal,
    items: Sequence[BaseModel],
    notify: bool = True,
) -> list[Created | ValidationFailed]:
    """Create a batch of validated records: the one create path, for single writes and imports."""
    return await create_drafts(
        session, spec, principal=principal, drafts=[draft(spec, d) for d in items], notify=notify
    )


async def create_drafts(
    session: AsyncSession,
    spec: ResourceSpec,
    *,
    principal: Principal,
    drafts: Sequence[Draft],
    notify: bool = True,
) -> list[Created | ValidationFailed]:
    """Write a batch of drafts (see ``draft``): what ``create_records`` does after the CPU part.

    Ownership is decided for the whole batch (``Forbidden`` is raised); the
    database rules (references, the spec's check) are checked with one query per
    kind for the whole batch, and an item that breaks one gets its problem back
    instead of a record. The valid items are written with bulk inserts: rows, tags
    and one outbox row each. ``notify=False`` skips ``spec.after_write`` (a caller
    that runs it itself, such as the importer).
    """
    if not drafts:
        return []
    owners = await owning_agencies(session, spec, principal=principal, drafts=drafts)
    return await _guarding_natural_key(
        session, spec, lambda: _write_drafts(session, spec, principal, drafts, owners, notify)
    )


async def _guarding_natural_key(session: AsyncSession, spec: ResourceSpec, write: Callable[[], Awaitable[_T]]) -> _T:
    """``write`` (its database checks, then its writes), in a savepoint when ``spec`` has a
    natural key (``unique``). A concurrent transaction may write the same key between the
    check and the write (PostgreSQL; SQLite writers queue): the unique constraint fires and
    ``write`` runs again, so its check, now seeing that key, gives the loser the 422
    ``duplicate`` of a later repeat rather than a 500."""
    if not spec.unique:
        return await write()
    for attempt in range(1, 4):
        try:
            async with session.begin_nested():
                return await write()
        except IntegrityError:
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


async def _write_drafts(
    session: AsyncSession,
    spec: ResourceSpec,
    principal: Principal,
    drafts: Sequence[Draft],
    owners: dict[str | None, str],
    notify: bool,
) -> list[Created | ValidationFailed]:
    """The checks needing the database, then the inserts: ``create_drafts`` once ownership is known."""
    problems = await validation_problems(session, spec, drafts, agency=reference_agency(principal))
    stamped = stamp_of(spec, principal)
    now = datetime.now(UTC)
    stamp = json_time(now)
    results: list[Created | ValidationFailed] = []
    rows: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    changes: list[PendingChange] = []
    written: list[tuple[str, str, dict[str, Any]]] = []
    for item, problem in zip(drafts, problems, strict=True):
        if problem is not None:
            results.append(problem)
            continue
        record_id = new_id(spec.id_prefix)
        agency_id = owners[item.requested_agency] if spec.tenant_owned else record_id
        row = {"id": record_id, "agency_id": agency_id, "version": 1, "created_at": now, "updated_at": now}
        row.update(item.columns | stamped)
        rows.append(row)
        tags += [
            {"record_id": record_id, "entity": spec.entity, "facet": f, "value": v, "valid_from": a, "valid_until": b}
            for f, v, a, b in item.tags
        ]
        document = (
            item.document
            | published_defaults(spec.public, spec.create)
            | stamped
            | {
                "id": record_id,
                "agency_id": agency_id,
                "version": 1,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        changes.append(
            PendingChange.model_construct(
                entity=spec.entity, entity_id=record_id, op="created", version=1, agency_id=agency_id, data=document
            )
        )
        results.append(Created(record_id, agency_id, document))
        written.append((record_id, agency_id, item.document))
    await insert_rows(session, spec.table.__table__, rows)  # type: ignore[attr-defined]
    await insert_rows(session, RecordTag.__table__, tags)  # type: ignore[attr-defined]
    if notify and spec.after_write is not None and written:
        await spec.after_write(session, "created", written)
    await record_changes(session, OUTBOX, changes)
    return results


_RECORD_COLUMNS = ("id", "agency_id", "version", "created_at", "updated_at")


def stamp_of(spec: ResourceSpec, principal: Principal) -> dict[str, Any]:
    """The columns ``spec.stamp`` sets from the writer on a create or an update (none without one)."""
    return spec.stamp(principal) if spec.stamp is not None else {}


@functools.cache
def _writable_columns(table: type[RecordColumns]) -> tuple[tuple[str, bool], ...]:
    """A table's columns a create schema fills, each with whether it is JSON: read once per
    table, not per record (SQLAlchemy's column lookups cost more than the rest of a draft)."""
    columns = table.__table__.columns  # type: ignore[attr-defined]
    return tuple(
        (name, isinstance(column.type, JSON)) for name, column in columns.items() if name not in _RECORD_COLUMNS
    )


@functools.cache
def published_defaults(public: type[BaseModel], create: type[BaseModel]) -> dict[str, Any]:
    """The public fields a client never writes (e.g. a firm's ``observed_performance``), as a
    new record shows them: a bulk create publishes the same document as a single one."""
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in public.model_fields.items()
        if name not in create.model_fields and name not in _RECORD_COLUMNS and not field.is_required()
    }


async def create_record(
    session: AsyncSession, spec: ResourceSpec, *, principal: Principal, data: BaseModel
) -> RecordColumns:
    (result,) = await create_records(session, spec, principal=principal, items=[data])
    if isinstance(result, ValidationFailed):
        raise result
    row = await session.get(spec.table, result.id)
    assert row is not None
    return row


def readable_by(spec: ResourceSpec, principal: Principal | None) -> ColumnElement[bool]:
    """The records of ``spec`` that ``principal`` may read (None: a caller inside the service).

    A private resource is read by admins, services and platform viewers (a viewer key of no
    agency) whole; by an agency and the viewers it issued, for its own records; by no one else.
    """
    if not spec.private or principal is None or principal.role in (Role.admin, Role.service):
        return true()
    if principal.role is Role.viewer and principal.agency_id is None:
        return true()
    if principal.role in (Role.agency, Role.viewer) and principal.agency_id is not None:
        return spec.table.__table__.c.agency_id == principal.agency_id  # type: ignore[attr-defined, no-any-return]
    return false()


async def get_record(
    session: AsyncSession,
    spec: ResourceSpec,
    record_id: str,
    *,
    for_update: bool = False,
    principal: Principal | None = None,
) -> RecordColumns:
    """The record, or 404; a private record ``principal`` may not read is 404 too (ids are not probed)."""
    statement = select(spec.table).where(spec.table.id == record_id, readable_by(spec, principal))  # type: ignore[arg-type]
    if for_update:
        statement = statement.with_for_update()
    row = await session.scalar(statement)
    if row is None:
        raise NotFound(f"No {spec.entity} with id '{record_id}'")
    return row


async def _writable(
    session: AsyncSession, spec: ResourceSpec, record_id: str, principal: Principal, if_match: str | None
) -> RecordColumns:
    row = await get_record(session, spec, record_id, for_update=True, principal=principal)
    if not principal.can_write_for_agency(spec.owner_of(row)):
        raise Forbidden(f"This {spec.entity} belongs to another agency")
    check_if_match(if_match, row.version, spec.entity)
    return row


async def update_record(
    session: AsyncSession,
    spec: ResourceSpec,
    record_id: str,
    *,
    principal: Principal,
    changes: BaseModel,
    if_match: str | None,
) -> RecordColumns:
    row = await _writable(session, spec, record_id, principal, if_match)
    current = public_of(spec, row).model_dump(mode="json")
    merged = current | changes.model_dump(mode="json", exclude_unset=True)
    allowed = set(spec.create.model_fields)
    data = validate_document(spec, {k: v for k, v in merged.items() if k in allowed})
    for name, value in stamp_of(spec, principal).items():
        setattr(row, name, value)
    await apply_update(session, spec, row, data, agency=reference_agency(principal))
    return row


async def apply_update(
    session: AsyncSession, spec: ResourceSpec, row: RecordColumns, data: BaseModel, *, agency: str | None
) -> None:
    """Check ``data`` (the whole record, validated) against the database, store it and publish it.

    New references must name records of ``agency`` (None: any, see ``reference_agency``);
    those the record holds already are kept.
    """
    held: set[tuple[str, str]] = set()
    if agency is not None:
        statement = select(RecordTag.facet, RecordTag.value).where(RecordTag.record_id == row.id)  # type: ignore[call-overload]
        held = {(facet, value) for facet, value in await session.execute(statement)}
    record_id, version = row.id, row.version  # read before a failed savepoint expires the row

    async def write() -> None:
        problem = (
            await validation_problems(session, spec, [draft(spec, data)], agency=agency, held=held, updating=record_id)
        )[0]
        if problem is not None:
            raise problem
        for name, value in with_derived(spec, _row_values(spec, data)).items():
            setattr(row, name, value)
        row.version = version + 1
        row.updated_at = datetime.now(UTC)
        await _write_tags(session, spec, record_id, data)
        await session.flush()

    await _guarding_natural_key(session, spec, write)
    if spec.after_write is not None:
        await spec.after_write(session, "updated", [(row.id, spec.owner_of(row), data.model_dump(mode="json"))])
    await publish_record(session, spec, row, "updated")


def validate_document(spec: ResourceSpec, merged: dict[str, Any]) -> BaseModel:
    """Re-validate the whole record after a partial update (cross-field rules)."""
    try:
        return spec.create.model_validate(merged)
    except ValidationError as exc:
        errors = [field_error(".".join(str(p) for p in e["loc"]), str(e["msg"]), str(e["type"])) for e in exc.errors()]
        raise ValidationFailed("The update leaves the record invalid", errors=errors) from None


async def delete_record(
    session: AsyncSession, spec: ResourceSpec, record_id: str, *, principal: Principal, if_match: str | None
) -> None:
    row = await _writable(session, spec, record_id, principal, if_match)
    referrers: list[tuple[str, str]] = [
        (entity, rid)
        for entity, rid in await session.execute(
            select(RecordTag.entity, RecordTag.record_id)  # type: ignore[call-overload]
            .where(RecordTag.value == record_id, RecordTag.record_id != record_id)
            .distinct()
            .limit(10)
        )
    ]
    if not spec.tenant_owned:  # an agency: what it owns refers to it through agency_id
        for table, entity in OWNED_TABLES.items():
            statement = select(table.id).where(table.agency_id == record_id).limit(10)  # type: ignore[call-overload]
            referrers += [(entity, owned_id) for owned_id in (await session.scalars(statement)).all()]
    if referrers:
        listed = ", ".join(f"{entity} {rid}" for entity, rid in referrers)
        raise Conflict(
            f"Still referenced by {listed}; remove those references first",
            referenced_by=[{"entity": e, "id": r} for e, r in referrers],
        )
    await remove_record(session, spec, row)


async def remove_record(session: AsyncSession, spec: ResourceSpec, row: RecordColumns) -> None:
    """Delete a record that nothing refers to any more, with its tags, and publish it."""
    await session.execute(delete(RecordTag).where(RecordTag.record_id == row.id))  # type: ignore[arg-type]
    await session.delete(row)
    await session.flush()
    if spec.after_write is not None:
        await spec.after_write(session, "deleted", [(row.id, spec.owner_of(row), None)])
    row.version += 1
    await publish_record(session, spec, row, "deleted")


def apply_filters(spec: ResourceSpec, statement: Select[Any], query: RecordQuery) -> Select[Any]:
    """``statement`` narrowed by the query's filters, in table columns (no ORM attributes: a
    list's statement stays plain SQL, see ``resource_router``)."""
    table = spec.table.__table__.c  # type: ignore[attr-defined]
    tags = RecordTag.__table__.c  # type: ignore[attr-defined]
    if query.updated_since is not None:  # every record: the same index on updated_at
        statement = statement.where(table.updated_at >= query.updated_since)
    for name, rule in spec.filters.items():
        value = getattr(query, name, None)
        if value is None:
            continue
        if isinstance(rule, ColumnFilter):
            statement = statement.where(table[rule.column] == value)
        elif isinstance(rule, TextFilter):
            pattern = f"%{str(value).lower()}%"
            statement = statement.where(or_(*(func.lower(table[c]).like(pattern) for c in rule.columns)))
        else:
            values = value if isinstance(value, list) else [value]
            tag_match = [tags.value.like(f"{v}%") if rule.prefix else tags.value == v for v in values]
            conditions = [tags.facet == rule.facet, or_(*tag_match)]
            if rule.valid_on_today:
                today = date.today()
                conditions += [
                    or_(tags.valid_from.is_(None), tags.valid_from <= today),
                    or_(tags.valid_until.is_(None), tags.valid_until >= today),
                ]
            statement = statement.where(table.id.in_(select(tags.record_id).where(*conditions)))
    return statement


def sorts_of(spec: ResourceSpec) -> dict[str, Any]:
    """The fields a resource's list sorts by: its timestamps, its name when it has one, and
    the spec's ``sort_fields`` (each a NOT NULL column, so the keyset order is total)."""
    columns = spec.table.__table__.columns  # type: ignore[attr-defined]
    names = ["created_at", "updated_at"]
    if "name" in columns and not columns["name"].nullable:
        names.append("name")
    return sortable(spec.table.__table__.c, *names, *spec.sort_fields)  # type: ignore[attr-defined]


def resource_router(spec: ResourceSpec) -> APIRouter:
    """The create, list, read, update and delete routes of one resource."""
    router = APIRouter(prefix=spec.path, tags=[spec.title], responses=PROBLEM_RESPONSES)
    create_model, update_model, public_model, query_model = spec.create, spec.update, spec.public, spec.query
    plural = spec.path.rsplit("/", 1)[-1].replace("-", "_")
    record_path = Annotated[RecordId, Path(description=f"The {spec.entity} id")]

    def location(row: RecordColumns) -> dict[str, str]:
        return {"ETag": etag_of(row), "Location": f"{spec.path}/{row.id}"}

    @router.post(
        "",
        status_code=201,
        response_model=public_model,
        summary=f"Register a {spec.entity}",
        operation_id=f"create_{spec.entity}",
        responses={201: {"headers": {"ETag": {"schema": {"type": "string"}}}}},
    )
    async def create(
        body: create_model,  # type: ignore[valid-type]
        session: SessionDep,
        principal: PrincipalDep,
        idempotency: IdempotencyDep,
    ) -> Response:
        row = await create_record(session, spec, principal=principal, data=body)
        return await idempotency.respond(201, public_of(spec, row), location(row))

    @router.get("", response_model=Page[public_model], summary=f"List {spec.title}", operation_id=f"list_{plural}")  # type: ignore[valid-type]
    async def list_(
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        query: Annotated[query_model, Query()],  # type: ignore[valid-type]
    ) -> Response:
        params = query.page_params(request.app.state.settings)  # type: ignore[attr-defined]
        table = spec.table.__table__  # type: ignore[attr-defined]
        # Plain SQL on the table (the ORM would add its compile and row loading for nothing).
        statement = apply_filters(spec, select(table).where(readable_by(spec, principal)), query)
        tiers = None
        if spec.search is not None:
            statement, tiers = await spec.search(session, statement, query)
        # Rows straight to the public model (no ORM objects), rendered once: the hot reads.
        key, public = table.c.id, spec.public
        if tiers is not None and params.sort is None:
            page = await fetch_tiered_page(session, statement, key=key, params=params, tiers=tiers, model=public)
        else:
            page = await fetch_page(session, statement, key=key, params=params, sorts=sorts_of(spec), model=public)
        return json_response(page)

    @router.get(
        "/{record_id}", response_model=public_model, summary=f"Read a {spec.entity}", operation_id=f"read_{spec.entity}"
    )
    async def read(
        record_id: record_path,
        session: SessionDep,
        principal: PrincipalDep,
        if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    ) -> Response:
        row = await get_record(session, spec, record_id, principal=principal)
        if if_none_match is not None and etag_matches(if_none_match, etag_of(row)):
            return Response(status_code=304, headers={"ETag": etag_of(row)})
        return json_response(public_of(spec, row), headers={"ETag": etag_of(row)})

    @router.patch(
        "/{record_id}",
        response_model=public_model,
        summary=f"Change a {spec.entity}",
        operation_id=f"update_{spec.entity}",
    )
    async def update(
        record_id: record_path,
        body: update_model,  # type: ignore[valid-type]
        response: Response,
        session: SessionDep,
        principal: PrincipalDep,
        if_match: IfMatchHeader = None,
    ) -> Any:
        row = await update_record(session, spec, record_id, principal=principal, changes=body, if_match=if_match)
        response.headers["ETag"] = etag_of(row)
        return public_of(spec, row)

    @router.delete(
        "/{record_id}", status_code=204, summary=f"Delete a {spec.entity}", operation_id=f"delete_{spec.entity}"
    )
    async def remove(
        record_id: record_path, session: SessionDep, principal: PrincipalDep, if_match: IfMatchHeader = None
    ) -> Response:
        await delete_record(session, spec, record_id, principal=principal, if_match=if_match)
        return Response(status_code=204)

    return router
