"""The write step of a firm import: one batch's new firms, set-based on PostgreSQL.

Whatever the database, a batch's firms are checked against it first as single writes
are (``owning_agencies``, ``validation_problems``: the owner, cluster references,
certification schemes), and the words of the created ones are indexed for typo search.

PostgreSQL: the worker that validated a row also rendered it for ``COPY`` (``stage``,
on the worker's CPU, not the writer's) with a new id: its line of ``firms`` (every column,
JSON columns as JSON text), its line of the outbox (the document the API publishes) and
its lines of ``record_tags``. The writer picks the lines of the rows it creates, puts the
moment of writing in them (the worker left a mark, ``MARK``) and copies them into their
tables as they are: no staging table, and no JSON parsed or built by PostgreSQL. The
outbox rows are copied in row order under the outbox lock, so their sequence numbers
follow the rows: by ``Written.publish``, which the runner calls once the batches before
have committed (it writes the rest of a batch beside them, ``Overlap``). All of it is in the batch's
transaction, so a batch still commits whole or not at all. SQLite, the embedded default,
takes the create path of single writes (``writes.create_rows``), as every other import
kind does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import JSON, String, Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bulk import copy_line, copy_str, copy_text, copy_value, insert_records, pick
from services.common.changefeed import lock_sequence
from services.common.db import is_postgres
from services.common.ids import new_id
from services.common.jsontext import json_text, json_time
from services.common.principal import Principal
from services.registry.firms.models import Firm
from services.registry.firms.resource import FIRMS
from services.registry.firms.search import add_words, column_words, index_words, unindexed_words
from services.registry.imports.models import ImportJob
from services.registry.imports.writes import ROW_KEYS, Overlap, Written, create_rows
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
# The columns of a firm a create writes: the record columns, then all but what no client
# writes (observed_performance comes from matching's feed); each from the create schema's
# document (JSON-ready, as ``records.draft`` takes it), or derived (the folded search columns).
_RECORD = ("id", "agency_id", "version", "created_at", "updated_at")
_WRITTEN = tuple(c for c in FIRMS_TABLE.columns if c.name not in {*_RECORD, "observed_performance"})
# How each column's value is rendered for COPY: a JSON column's as JSON text, a text column's as
# it is (escaped), any other through ``copy_value`` (numbers).
_AS_JSON, _AS_TEXT, _AS_VALUE = 0, 1, 2
_FIRM_VALUES = tuple(
    (
        c.name,
        c.name in FIRMS.create.model_fields,
        _AS_JSON
        if isinstance(c.type, JSON)
        else _AS_TEXT
        if isinstance(getattr(c.type, "impl", c.type), String)
        else _AS_VALUE,
    )
    for c in _WRITTEN
)
FIRM_COLUMNS = (*_RECORD, *(c.name for c in _WRITTEN))
_CHANGE_COLUMNS = ("entity", "entity_id", "op", "version", "agency_id", "occurred_at", "data")
_TAG_COLUMNS = ("record_id", "entity", "facet", "value", "valid_from", "valid_until")
_PUBLISHED = published_defaults(FIRMS.public, FIRMS.create)  # what a new firm publishes besides
assert FIRMS.stamp is None, "the rendered lines carry no stamped columns"
# The moment a batch is written, which the worker does not know: it renders this mark in its
# place, and the writer replaces it in the whole batch at once. No value holds a NUL (COPY's
# text cannot), so the mark, as a timestamp or as a JSON string, is found nowhere else.
MARK = "\x00written\x00"
_MARK = MARK.encode()
# In the published document, the mark as JSON would be escaped ("\u0000…", a backslash COPY
# then escapes too, value by value): it is put there raw, quotes and all, instead.
_JSON_MARK = f'"{MARK}"'
# The published document is the create schema's document, then these members (``render``):
# its JSON text ends with theirs, rendered once here; the firm's id and the mark go in between.
_RECORD_MEMBERS = ("id", "version", "created_at", "updated_at")
assert not {*_PUBLISHED, *_RECORD_MEMBERS} & set(FIRMS.create.model_fields), "members added, not replaced"
_PUBLISHED_JSON = json_text(_PUBLISHED)[1:-1]
_ID_MEMBER = ("," + _PUBLISHED_JSON if _PUBLISHED_JSON else "") + ',"id":"'
_AFTER_ID = f'","version":1,"created_at":{_JSON_MARK},"updated_at":{_JSON_MARK}}}'


class Staged(NamedTuple):
    """A new firm rendered for ``COPY``: its id, its lines of ``firms`` and of the outbox."""

    id: str
    line: bytes
    change: bytes


def json_cell(value: Any) -> str:
    """A JSON column's value as a ``COPY`` cell (not NULL): its JSON text, escaped."""
    return copy_str(json_text(value))


def render(
    document: dict[str, Any],
    derived: dict[str, Any],
    firm_id: str,
    agency_id: str,
    *,
    json_cells: dict[int, str] | None = None,
    document_json: str | None = None,
) -> Staged:
    """A validated firm's lines of ``firms`` and the outbox: its create schema's ``document``
    (JSON-ready), its ``derived`` columns, a new id and its owner, with ``MARK`` for the moment.

    A batch's renderer may pass the ``json_cells`` of values its rows share, by ``id`` (the
    code lists ``firm_columns`` converts once per distinct cell, alive while it renders), so
    each is rendered once a batch; and ``document_json``, the document's JSON text if it has
    it already (``json_text``'s)."""
    cells = [firm_id, agency_id, "1", MARK, MARK]
    append = cells.append
    for name, created, how in _FIRM_VALUES:
        value = document[name] if created else derived[name]
        if value is None:
            append("\\N")
        elif how == _AS_TEXT and type(value) is str:
            append(copy_str(value))
        elif how == _AS_JSON:
            known = json_cells.get(id(value)) if json_cells else None
            append(known if known is not None else "[]" if type(value) is list and not value else json_cell(value))
        else:
            append(copy_value(value))
    # In the order single writes publish a firm's fields (``records.publish_record``): the
    # document's, then the published defaults and the record's (``document | …`` rendered).
    # Ids are letters, digits and "_": nothing in them to escape.
    if document_json is None:
        document_json = json_text(document)
    data = copy_str(document_json[:-1] + _ID_MEMBER + firm_id + _AFTER_ID)
    change = (FIRMS.entity, firm_id, "created", "1", agency_id, MARK, data)
    return Staged(firm_id, ("\t".join(cells) + "\n").encode(), ("\t".join(change) + "\n").encode())


def stage(draft: Draft) -> tuple[Staged, bytes]:
    """A validated row rendered for ``COPY`` with a new firm id (``render``), and its lines of
    ``record_tags``. The writer sends them as they are.

    The owner is the requested ``agency_id`` (an import always names its agency);
    ``write_firms`` checks that the principal may write for it before anything is sent.
    """
    assert draft.requested_agency is not None, "an import names its agency"
    staged = render(draft.document, draft.columns, new_id(FIRMS.id_prefix), draft.requested_agency)
    tags = b"".join(copy_line((staged.id, FIRMS.entity, f, v, a, b)) for f, v, a, b in draft.tags)
    return staged, tags


async def write_firms(
    session: AsyncSession,
    job: ImportJob,
    principal: Principal,
    batch: PreparedBatch,
    chosen: list[int],
    overlap: Overlap,
) -> Written:
    """Create the ``chosen`` valid rows of ``batch`` (those with new natural keys) in the caller's
    transaction, with their tags, outbox rows and natural keys; rows that break a database rule
    are returned. On PostgreSQL the outbox rows are left to ``Written.publish``."""
    if is_postgres(session):
        return await _copy_staged(session, job, principal, batch, chosen, overlap)
    written = await create_rows(FIRMS, session, job, principal, batch, chosen, overlap)
    await index_words(session, _words(batch, written.created))
    return written


def _words(batch: PreparedBatch, created: list[int]) -> set[str]:
    """The words for typo search of the rows created. The firms_written hook is not run for
    imports: they are indexed by the write step, as the worker found them in the folded columns
    (not folded again)."""
    return set(" ".join([batch.words[index] for index in created]).split())


def firm_words(draft: Draft) -> str:
    """The words of a validated firm for typo search, found by the worker (``PreparedBatch.words``)."""
    return " ".join(column_words(draft.columns))


async def _copy_staged(
    session: AsyncSession,
    job: ImportJob,
    principal: Principal,
    batch: PreparedBatch,
    chosen: list[int],
    overlap: Overlap,
) -> Written:
    """PostgreSQL: the lines the worker rendered, of the rows created, by ``COPY``.

    The database rules are checked once per distinct checked part (rows alike share one
    object, ``prepare``), not once a row: a firm's rules read only that part. What the batch
    adds under a unique key (natural keys, words) is decided, and claimed (``Overlap``), before
    anything is written, and written by ``publish`` once the batches before have committed; the
    firms and their tags (new ids: no other writer touches them) go in beside those batches."""
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
    ids, keys, numbers = batch.ids, batch.natural_keys, batch.numbers
    words = await unindexed_words(session, _words(batch, created) - overlap.before.words)
    overlap.own.keys.update(keys[index] for index in created)
    overlap.own.words = words
    overlap.decided()
    if not created:
        return Written(created, rejected)
    assert batch.line_ends, "PostgreSQL imports are staged by their workers"
    now = datetime.now(UTC)
    moment, json_moment = copy_value(now).encode(), json_text(json_time(now)).encode()
    firms = pick(batch.lines, batch.line_ends, created).replace(_MARK, moment)
    changes = pick(batch.change_lines, batch.change_ends, created).replace(_JSON_MARK.encode(), json_moment)
    changes = changes.replace(_MARK, moment)
    await copy_text(session, FIRMS_TABLE.name, FIRM_COLUMNS, firms)
    await copy_text(session, TAGS.name, _TAG_COLUMNS, pick(batch.tag_lines, batch.tag_ends, created))

    async def publish(session: AsyncSession) -> None:
        # Rows under unique keys go in here, once the batches before have committed: a batch
        # waiting for the one before then holds no lock that another transaction can wait on.
        # Otherwise two jobs adding one word (or one agency's key) would wait on each other
        # through a lock and through their batches' order, a deadlock PostgreSQL cannot see.
        await insert_records(
            session,
            ROW_KEYS,
            ("agency_id", "natural_key", "firm_id", "job_id", "row_number"),
            [(job.agency_id, keys[index], ids[index], job.id, numbers[index]) for index in created],
        )
        await add_words(session, words)
        await lock_sequence(session, entities=(FIRMS.entity,))  # sequence numbers in row order
        await copy_text(session, OUTBOX.name, _CHANGE_COLUMNS, changes)

    return Written(created, rejected, publish=publish)
