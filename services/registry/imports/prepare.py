"""One batch of import rows, mapped and validated: in a worker thread or a worker process.

``prepare`` reads rows off an ``ImportFile`` and validates each with the create
schema of the job's kind (``kinds.py``), as single writes are; it needs no
database, so ``workers.py`` runs it beside the writer, and ``runner.py`` writes
what it returns. For PostgreSQL (``staged``) a kind written set-based (firms) also
renders each valid row for ``COPY`` (``firm_writes.stage``), so the writer spends no
Python on a row it creates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import pydantic_core
from pydantic import ValidationError

from services.common.jsontext import json_text
from services.registry.imports.files import Mapping_, Row, RowProblem, to_input
from services.registry.imports.kinds import KINDS, ImportKind
from services.registry.records import Draft, checked_part, draft


@dataclass
class Prepared:
    """One input row after mapping and validation: a record to create, or its errors."""

    number: int
    draft: Draft | None = None  # the validated record, as ``records.draft`` makes it
    natural_key: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)  # import_errors rows, without job_id
    # PostgreSQL: the row rendered for COPY (``firm_writes.stage``): its staging line, its tags' lines.
    line: bytes = b""
    tag_lines: bytes = b""
    words: str = ""  # the words for typo search (``index_words``), space-separated: one string to send


def _cell(row: Row, column: str) -> str | None:
    value = row.cells.get(column)
    if value is None:
        return None
    text = value if isinstance(value, str) else pydantic_core.to_json(value).decode()
    return text[:500]


def error_row(
    row: Row, mapping: Mapping_, field_path: str, code: str, message: str, column: str | None = None
) -> dict[str, Any]:
    column = mapping.column_of(field_path) if column is None else column
    return {
        "row_number": row.number,
        "column": column[:200],
        "field": field_path[:200],
        "code": code[:60],
        "message": message,
        "value": _cell(row, column) if column else None,
    }


def prepare(
    rows: Iterator[Row], count: int, mapping: Mapping_, agency_id: str, kind: str, *, staged: bool = False
) -> list[Prepared]:
    """Read up to ``count`` rows and validate them with the create schema of ``kind``, as single
    writes are; ``staged`` (PostgreSQL): render the valid ones for ``COPY`` too, where the kind
    is written set-based. A kind that validates a batch column by column (``ImportKind.decide``)
    does so first: ``spec.create`` then validates only the rows it left undecided."""
    import_kind = KINDS[kind]
    batch = list(islice(rows, count))
    decided = import_kind.decide(batch, mapping, agency_id, staged) if import_kind.decide else [None] * len(batch)
    # Rows with the same checked part share one draft, which pickle then sends once: most rows
    # of a file name no cluster and no certificate.
    shared: dict[tuple[Any, ...], Draft] = {}
    prepared = []
    for row, done in zip(batch, decided, strict=True):
        if done is not None:
            prepared.append(
                Prepared(row.number, done.draft, done.natural_key, [], done.line, done.tag_lines, done.words)
            )
        else:
            prepared.append(_prepare_row(row, mapping, agency_id, import_kind, staged, shared))
    return prepared


def _prepare_row(
    row: Row,
    mapping: Mapping_,
    agency_id: str,
    import_kind: ImportKind,
    staged: bool,
    shared: dict[tuple[Any, ...], Draft],
) -> Prepared:
    """One row through the create schema (``FirmCreate``…), as ``POST`` validates it."""
    spec = import_kind.spec
    stage = import_kind.stage if staged else None  # only kinds written set-based render rows
    item = Prepared(row.number)
    if row.errors:
        item.errors = [
            {
                "row_number": row.number,
                "column": "",
                "field": "",
                "code": e.code,
                "message": e.message,
                "value": None,
            }
            for e in row.errors
        ]
        return item
    try:
        # Cells are text ("12"): the bounds hold, the strict JSON types do not (strict=False).
        data = spec.create.model_validate(to_input(row.cells, mapping, agency_id), strict=False)
        item.natural_key = import_kind.natural_key(data)
        item.draft = draft(spec, data)
        if import_kind.words is not None:
            item.words = import_kind.words(item.draft)
        if stage is not None:  # the writer gets only what it checks: the rest it sends as rendered here
            item.line, item.tag_lines = stage(item.draft, row.number, item.natural_key)
            checked = checked_part(spec, item.draft)
            key = (checked.requested_agency, json_text(checked.document), tuple(checked.references))
            item.draft = shared.setdefault(key, checked)
    except RowProblem as problem:
        item.errors = [error_row(row, mapping, "", problem.code, problem.message, problem.column)]
    except ValidationError as exc:
        item.errors = [
            error_row(row, mapping, ".".join(str(p) for p in e["loc"]), str(e["type"]), str(e["msg"]))
            for e in exc.errors()
        ]
    return item
