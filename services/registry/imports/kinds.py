"""What each kind of import creates: its template, its create schema and its row keys.

One import machinery (files, workers, runner, router) serves every kind; a kind
brings only what differs: the template columns a row is read through, the
resource and its create schema, the natural key that makes a re-imported row a
skip, its write step (the create path of single writes, ``writes.create_rows``;
firms on PostgreSQL set-based, ``firm_writes``, with what the workers render for
it), and whether the new records are checked for duplicates afterwards (firms only).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import pydantic_core
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.principal import Principal
from services.registry.duplicates import detector
from services.registry.firm_results.resource import FIRM_RESULTS
from services.registry.firm_results.schemas import FirmResultCreate
from services.registry.firms.resource import FIRMS
from services.registry.firms.schemas import FirmCreate
from services.registry.imports.files import COLUMNS, Column, Mapping_, Row
from services.registry.imports.firm_columns import Decided, decide_firms
from services.registry.imports.firm_writes import Staged, firm_words, stage, write_firms
from services.registry.imports.models import ImportJob
from services.registry.imports.writes import Overlap, Written, create_rows
from services.registry.records import Draft, ResourceSpec

if TYPE_CHECKING:
    from services.registry.imports.prepare import PreparedBatch

# A kind's write step: the batch's valid rows with new natural keys (indices into its columns),
# in the batch's transaction, beside the job's batches before it, not yet committed (``Overlap``).
WriteStep = Callable[[AsyncSession, ImportJob, Principal, "PreparedBatch", list[int], Overlap], Awaitable[Written]]


@dataclass(frozen=True)
class ImportKind:
    name: str  # the ``kind`` of POST /v1/imports
    spec: ResourceSpec  # whose create schema validates the rows (as single writes are)
    columns: dict[str, Column]  # the template
    natural_key: Callable[[Any], str]  # of a validated row: importing it again creates nothing
    write: WriteStep
    # Set-based kinds: a validated row rendered for COPY by the worker (``PreparedBatch.lines``…).
    stage: Callable[[Draft], tuple[Staged, bytes]] | None = None
    words: Callable[[Draft], str] | None = None  # the words for typo search the worker finds
    # A batch's rows validated column by column where it can decide them (the rest: ``spec.create``).
    decide: Callable[[Sequence[Row], Mapping_, str, bool], list[Decided | None]] | None = None
    checks_duplicates: bool = False  # the job's new records go through duplicate detection


def _content_key(data: BaseModel) -> str:
    return "row:" + hashlib.sha256(pydantic_core.to_json(data)).hexdigest()[:40]


def firm_key(data: FirmCreate) -> str:
    """``id:SCHEME:VALUE`` of the first national id, else a hash of the validated record."""
    if data.national_ids:
        first = data.national_ids[0]
        return "id:" + detector.normalise_id(first.scheme, first.value)[:110]
    return _content_key(data)


def result_key(data: FirmResultCreate) -> str:
    """The same figures again are a skip; other figures for a firm and period it has are the
    ``duplicate`` problem of single writes (``FIRM_RESULTS.unique``)."""
    return "result:" + _content_key(data)


def _figure(field: str, description: str, example: str) -> tuple[str, Column]:
    return field, Column(field, "number", False, description, example)


RESULT_COLUMNS: dict[str, Column] = dict(
    [
        (
            "firm_id",
            Column("firm_id", "text", True, "The firm's id (one of the agency's firms)", "frm_0000000000000000"),
        ),
        ("period", Column("period", "text", True, "A year (2025) or a quarter (2025-Q2)", "2025")),
        ("currency", Column("currency", "text", False, "ISO 4217 code of sales, exports and investments", "USD")),
        _figure("sales", "Sales (turnover) in the period", "250000"),
        _figure("exports", "Sales abroad in the period", "40000"),
        _figure("investments", "Investment made in the period", "15000"),
        _figure("employees", "Headcount at the end of the period", "40"),
        _figure("women_employees", "Women among employees (needs employees)", "22"),
        _figure("new_products", "Products or services launched in the period", "2"),
    ]
)

KINDS: dict[str, ImportKind] = {
    kind.name: kind
    for kind in (
        ImportKind(
            "firms",
            FIRMS,
            COLUMNS,
            firm_key,
            write_firms,
            stage=stage,
            words=firm_words,
            decide=decide_firms,
            checks_duplicates=True,
        ),
        ImportKind(
            "firm_results",
            FIRM_RESULTS,
            RESULT_COLUMNS,
            result_key,
            partial(create_rows, FIRM_RESULTS),
        ),
    )
}
DEFAULT_KIND = "firms"  # jobs from before kinds existed have none in their options
