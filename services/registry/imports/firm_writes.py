"""The write step of a firm import: one batch's new firms, set-based on PostgreSQL.

Whatever the database, a batch's firms are checked against it first as single writes
are (``owning_agencies``, ``validation_problems``: the owner, cluster references,
certification schemes), and the words of the created ones are indexed for typo search.

PostgreSQL: the worker that validated a row also rendered it for ``COPY`` (``stage``,
on the worker's CPU, not the writer's): its published document, a new id, its owner,
natural key and folded search columns as one line of a staging table, and its tags as
lines of ``record_tags``. The writer sends the lines of the rows it creates as they
are, then one ``INSERT … SELECT`` each writes the firms (their columns read from the
document), their outbox rows (in row order, under the outbox lock) and their natural
keys from the staging table. All of it is in the
batch's transaction (the staging table is dropped at commit), so a batch still commits
whole or not at all. SQLite, the embedded default, takes the create path of single
writes (``writes.create_rows``), as every other import kind does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, Text, cast, func, insert, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable

from services.common.bulk import copy_line, copy_text, pick
from services.common.changefeed import lock_sequence
from services.common.db import UTCDateTime, is_postgres
from services.common.ids import new_id
from services.common.jsontext import json_text, json_time
from services.common.principal import Principal
from services.registry.firms.models import Firm
from services.registry.firms.resource import FIRMS
from services.registry.firms.search import column_words, index_words
from services.registry.imports.models import ImportJob
from services.registry.imports.writes import ROW_KEYS, Written, create_rows
from services.registry.records import (
    OUTBOX,
    Draft,
    owning_agencies,
    published_defaults,
    reference_agency,
    validation_problems,
)
from services.registry.tables import RecordTag

if TYPE_CHECKING:
    from services.registry.imports.prepare import PreparedBatch

FIRMS_TABLE: Table = Firm.__table__  # type: ignore[attr-defined]
TAGS: Table = RecordTag.__table__  # type: ignore[attr-defined]
# The columns of a firm a create writes: all but the record columns and what no client
# writes (observed_performance comes from matching's feed). Those of the create schema are
# read from the staged document in SQL; the others (the folded search columns) are staged.
_NOT_WRITTEN = {"id", "agency_id", "version", "created_at", "updated_at", "observed_performance"}
_WRITTEN = tuple(column for column in FIRMS_TABLE.columns if column.name not in _NOT_WRITTEN)
_DERIVED = tuple(column for column in _WRITTEN if column.name not in FIRMS.create.model_fields)
STAGE = Table(
    "import_firm_stage",
    MetaData(),
    Column("row_number", Integer),
    Column("natural_key", Text),
    Column("document", JSONB),  # the firm as published, but for its record columns
    Column("id", String(40)),
    Column("agency_id", String(40)),
    *(Column(column.name, column.type) for column in _DERIVED),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
_TAG_COLUMNS = ("record_id", "entity", "facet", "value", "valid_from", "valid_until")
assert FIRMS.stamp is None, "the staging table carries no stamped columns"


def stage(draft: Draft, row_number: int, natural_key: str) -> tuple[bytes, bytes]:
    """A validated row rendered for ``COPY`` with a new firm id: its line of the staging table,
    and its lines of ``record_tags``. The writer sends them as they are.

    The owner is the requested ``agency_id`` (an import always names its agency);
    ``write_firms`` checks that the principal may write for it before anything is sent.
    """
    firm_id = new_id(FIRMS.id_prefix)
    document = json_text(draft.document | published_defaults(FIRMS.public, FIRMS.create))
    derived = [draft.columns[column.name] for column in _DERIVED]
    tags = b"".join(copy_line((firm_id, FIRMS.entity, f, v, a, b)) for f, v, a, b in draft.tags)
    return copy_line([row_number, natural_key, document, firm_id, draft.requested_agency, *derived]), tags


def _column(column: Column[Any]) -> Any:
    """A firm column's value in the ``INSERT … SELECT``: read from the staged document, as
    ``records.draft`` takes it (JSON columns as they are, a JSON null as NULL), or staged."""
    if column.name not in FIRMS.create.model_fields:
        return STAGE.c[column.name]
    value = STAGE.c.document[column.name]
    if isinstance(column.type, JSON):
        return cast(func.nullif(value, cast(literal("null"), JSONB)), JSON)
    # Unbounded text: a value too long for the column is refused by the insert, never cut.
    return cast(value.astext, String() if isinstance(column.type, String) else column.type)


async def write_firms(
    session: AsyncSession, job: ImportJob, principal: Principal, batch: PreparedBatch, chosen: list[int]
) -> Written:
    """Create the ``chosen`` valid rows of ``batch`` (those with new natural keys) in the caller's
    transaction, with their tags, outbox rows and natural keys; rows that break a database rule
    are returned."""
    if is_postgres(session):
        written = await _copy_staged(session, job, principal, batch, chosen)
    else:
        written = await create_rows(FIRMS, session, job, principal, batch, chosen)
    # The firms_written hook is not run for imports: the words for typo search are indexed
    # here, as the worker found them in the folded columns (not folded again).
    words = batch.words
    await index_words(session, set(" ".join([words[index] for index in written.created]).split()))
    return written


def firm_words(draft: Draft) -> str:
    """The words of a validated firm for typo search, found by the worker (``PreparedBatch.words``)."""
    return " ".join(column_words(draft.columns))


async def _copy_staged(
    session: AsyncSession, job: ImportJob, principal: Principal, batch: PreparedBatch, chosen: list[int]
) -> Written:
    """PostgreSQL: the staged lines by ``COPY``, then one ``INSERT … SELECT`` per table.

    The database rules are checked once per distinct checked part (rows alike share one
    object, ``prepare``), not once a row: a firm's rules read only that part."""
    assert not FIRMS.unique, "rows alike are checked once: no rule may depend on the rows before"
    drafts = batch.drafts
    distinct = list({id(drafts[index]): drafts[index] for index in chosen}.values())
    owners = await owning_agencies(session, FIRMS, principal=principal, drafts=distinct)
    if any(owner != requested for requested, owner in owners.items()):
        raise AssertionError("an import's rows name their owner")  # stage() wrote the requested agency
    problems = await validation_problems(session, FIRMS, distinct, agency=reference_agency(principal))
    refused = {id(item): problem for item, problem in zip(distinct, problems, strict=True) if problem is not None}
    if refused:
        rejected = [(index, refused[id(drafts[index])]) for index in chosen if id(drafts[index]) in refused]
        created = [index for index in chosen if id(drafts[index]) not in refused]
    else:
        rejected, created = [], chosen
    if not created:
        return Written(created, rejected)
    assert batch.line_ends, "PostgreSQL imports are staged by their workers"
    await session.execute(CreateTable(STAGE))
    await copy_text(session, STAGE.name, [c.name for c in STAGE.columns], pick(batch.lines, batch.line_ends, created))
    await copy_text(session, TAGS.name, _TAG_COLUMNS, pick(batch.tag_lines, batch.tag_ends, created))
    await _insert_selected(session, job)
    return Written(created, rejected)


async def _insert_selected(session: AsyncSession, job: ImportJob) -> None:
    """The firms, their outbox rows and natural keys, from the staging table."""
    now = datetime.now(UTC)
    moment = literal(now, UTCDateTime())
    names = [column.name for column in _WRITTEN]
    firms = select(STAGE.c.id, STAGE.c.agency_id, literal(1), moment, moment, *(_column(c) for c in _WRITTEN))
    await session.execute(
        insert(FIRMS_TABLE).from_select(["id", "agency_id", "version", "created_at", "updated_at", *names], firms)
    )
    stamp = literal(json_time(now), Text())
    record = func.jsonb_build_object(
        "id", STAGE.c.id, "agency_id", STAGE.c.agency_id, "version", 1, "created_at", stamp, "updated_at", stamp
    )
    changes = select(
        literal(FIRMS.entity),
        STAGE.c.id,
        literal("created"),
        literal(1),
        STAGE.c.agency_id,
        moment,
        cast(STAGE.c.document.op("||")(record), JSON),
    ).order_by(STAGE.c.row_number)  # sequence numbers in row order, as record_changes draws them
    await lock_sequence(session, entities=(FIRMS.entity,))
    outbox = ["entity", "entity_id", "op", "version", "agency_id", "occurred_at", "data"]
    await session.execute(insert(OUTBOX).from_select(outbox, changes))
    keys = select(literal(job.agency_id), STAGE.c.natural_key, STAGE.c.id, literal(job.id), STAGE.c.row_number)
    await session.execute(
        insert(ROW_KEYS).from_select(["agency_id", "natural_key", "firm_id", "job_id", "row_number"], keys)
    )
