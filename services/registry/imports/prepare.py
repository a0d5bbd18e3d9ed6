"""One batch of import rows, mapped and validated: in a worker thread or a worker process.

``prepare`` reads rows off an ``ImportFile`` and validates each with the create
schema of the job's kind (``kinds.py``), as single writes are; it needs no
database, so ``workers.py`` runs it beside the writer, and ``runner.py`` writes
what it returns. For PostgreSQL (``staged``) a kind written set-based (firms) also
renders each valid row for ``COPY`` (``firm_writes.stage``), so the writer spends no
Python on a row it creates.

A batch travels to the writer as columns (``PreparedBatch``), not as an object a
row: from a worker process it is pickled, and unpickling 2,000 row objects cost the
writer more CPU than everything else it does with them.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import pydantic_core
from pydantic import ValidationError

from services.common.jsontext import json_text
from services.registry.imports.files import Mapping_, Row, RowProblem, to_input
from services.registry.imports.firm_writes import Staged
from services.registry.imports.kinds import KINDS, ImportKind
from services.registry.records import Draft, checked_part, draft


@dataclass
class PreparedBatch:
    """A batch of input rows after mapping and validation, as columns.

    The valid rows are listed in row order, one entry each in ``numbers``, ``natural_keys``,
    ``drafts`` and ``words``. Staged (PostgreSQL), each also has a new id in ``ids``, and its
    ``COPY`` lines (``firm_writes.stage``) are in one ``bytes`` per table: ``lines`` (its
    record's), ``change_lines`` (its outbox row's) and ``tag_lines`` (its tags'), with the
    offsets where each row's lines end (``bulk.pick`` takes the rows a writer creates). Rows
    with problems are only counted, their problems listed in ``errors``.
    """

    size: int = 0  # rows read: how far the checkpoint moves
    rejected: int = 0  # rows with problems
    errors: list[dict[str, Any]] = field(default_factory=list)  # import_errors rows, without job_id
    numbers: array[int] = field(default_factory=lambda: array("q"))
    natural_keys: list[str] = field(default_factory=list)
    # The validated records, as ``records.draft`` makes them; staged, only their checked part
    # (``records.checked_part``), one object for rows alike, which pickle sends once.
    drafts: list[Draft] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # the words for typo search, space-separated
    ids: list[str] = field(default_factory=list)
    lines: bytes = b""
    line_ends: array[int] = field(default_factory=lambda: array("q"))
    change_lines: bytes = b""
    change_ends: array[int] = field(default_factory=lambda: array("q"))
    tag_lines: bytes = b""
    tag_ends: array[int] = field(default_factory=lambda: array("q"))

    def __len__(self) -> int:
        return self.size


class _Columns:
    """A ``PreparedBatch`` being filled row by row (in the worker, whose CPU is to spare)."""

    def __init__(self) -> None:
        self.batch = PreparedBatch()
        self.lines: list[bytes] = []
        self.change_lines: list[bytes] = []
        self.tag_lines: list[bytes] = []

    def valid(
        self, number: int, natural_key: str, item: Draft, words: str, staged: Staged | None, tag_lines: bytes
    ) -> None:
        batch = self.batch
        batch.numbers.append(number)
        batch.natural_keys.append(natural_key)
        batch.drafts.append(item)
        batch.words.append(words)
        if staged is not None:
            batch.ids.append(staged.id)
            self.lines.append(staged.line)
            self.change_lines.append(staged.change)
            self.tag_lines.append(tag_lines)

    def invalid(self, errors: list[dict[str, Any]]) -> None:
        self.batch.rejected += 1
        self.batch.errors += errors

    def done(self, size: int) -> PreparedBatch:
        batch = self.batch
        batch.size = size
        if self.lines:
            assert len(self.lines) == len(batch.numbers), "a staged batch renders every valid row"
            batch.lines, batch.line_ends = b"".join(self.lines), _ends(self.lines)
            batch.change_lines, batch.change_ends = b"".join(self.change_lines), _ends(self.change_lines)
            batch.tag_lines, batch.tag_ends = b"".join(self.tag_lines), _ends(self.tag_lines)
        return batch


def _ends(parts: list[bytes]) -> array[int]:
    ends, end = array("q"), 0
    for part in parts:
        end += len(part)
        ends.append(end)
    return ends


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
) -> PreparedBatch:
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
    columns = _Columns()
    for row, done in zip(batch, decided, strict=True):
        if done is not None:
            columns.valid(row.number, done.natural_key, done.draft, done.words, done.staged, done.tag_lines)
        else:
            _prepare_row(row, mapping, agency_id, import_kind, staged, shared, columns)
    return columns.done(len(batch))


def _prepare_row(
    row: Row,
    mapping: Mapping_,
    agency_id: str,
    import_kind: ImportKind,
    staged: bool,
    shared: dict[tuple[Any, ...], Draft],
    columns: _Columns,
) -> None:
    """One row through the create schema (``FirmCreate``…), as ``POST`` validates it."""
    spec = import_kind.spec
    stage = import_kind.stage if staged else None  # only kinds written set-based render rows
    if row.errors:
        columns.invalid(
            [
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
        )
        return
    try:
        # Cells are text ("12"): the bounds hold, the strict JSON types do not (strict=False).
        data = spec.create.model_validate(to_input(row.cells, mapping, agency_id), strict=False)
        natural_key = import_kind.natural_key(data)
        item = draft(spec, data)
        words = import_kind.words(item) if import_kind.words is not None else ""
        rendered: Staged | None = None
        tag_lines = b""
        if stage is not None:  # the writer gets only what it checks: the rest it sends as rendered here
            rendered, tag_lines = stage(item)
            checked = checked_part(spec, item)
            key = (checked.requested_agency, json_text(checked.document), tuple(checked.references))
            item = shared.setdefault(key, checked)
    except RowProblem as problem:
        columns.invalid([error_row(row, mapping, "", problem.code, problem.message, problem.column)])
    except ValidationError as exc:
        columns.invalid(
            [
                error_row(row, mapping, ".".join(str(p) for p in e["loc"]), str(e["type"]), str(e["msg"]))
                for e in exc.errors()
            ]
        )
    else:
        columns.valid(row.number, natural_key, item, words, rendered, tag_lines)
