"""The write step every import kind shares: a batch's rows through the create path of single writes.

``create_rows`` writes a batch's valid rows with new natural keys through
``records.create_drafts`` (the database rules, tags and outbox rows of ``POST``) and
records the rows' natural keys; a kind with its own set-based step (firms on
PostgreSQL, ``firm_writes``) returns the same ``Written``. Rows are named by their
index among the batch's valid rows (``PreparedBatch``'s columns).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bulk import insert_rows
from services.common.errors import ValidationFailed
from services.common.principal import Principal
from services.registry.imports.models import ImportJob, ImportRowKey
from services.registry.records import Created, ResourceSpec, create_drafts

if TYPE_CHECKING:
    from services.registry.imports.prepare import PreparedBatch

ROW_KEYS: Table = ImportRowKey.__table__  # type: ignore[attr-defined]


@dataclass
class Uncommitted:
    """What a batch's transaction adds that a unique key guards: until it commits, another
    transaction's reads do not see it, and writing it again would wait on its locks."""

    keys: set[str] = field(default_factory=set)  # natural keys of the rows created
    words: set[str] = field(default_factory=set)  # words added for typo search


@dataclass
class Overlap:
    """A batch among the job's batches written at once, each in its own transaction
    (``runner._OrderedBatches``): what the batches before it add, not yet committed, and what
    it adds itself, which its write step claims before the next batch decides (``decided``)."""

    before: Uncommitted = field(default_factory=Uncommitted)
    own: Uncommitted = field(default_factory=Uncommitted)
    decided: Callable[[], None] = lambda: None


@dataclass
class Written:
    created: list[int]  # the valid rows created, by index in the batch's columns
    rejected: list[tuple[int, ValidationFailed]]  # rows the database rules refused
    # The rest of the write that must follow the batches before it (the created rows' outbox
    # rows, drawn under the sequence lock), for the runner to do in batch order; None when
    # the write step did it all.
    publish: Callable[[AsyncSession], Awaitable[None]] | None = None


async def create_rows(
    spec: ResourceSpec,
    session: AsyncSession,
    job: ImportJob,
    principal: Principal,
    batch: PreparedBatch,
    chosen: list[int],
    overlap: Overlap,
) -> Written:
    """Create the ``chosen`` valid rows of ``batch`` (those with new natural keys) as single writes
    do, in the caller's transaction, then their natural keys (``spec`` first: a kind's write step
    binds it). The outbox rows are written here, under the sequence lock: batches written so are
    not overlapped (``overlap`` has nothing before)."""
    drafts = [batch.drafts[index] for index in chosen]
    results = await create_drafts(session, spec, principal=principal, drafts=drafts, notify=False)
    created: list[tuple[int, Created]] = []
    rejected: list[tuple[int, ValidationFailed]] = []
    for index, result in zip(chosen, results, strict=True):
        if isinstance(result, ValidationFailed):
            rejected.append((index, result))
        else:
            created.append((index, result))
    await insert_rows(
        session,
        ROW_KEYS,
        [
            {
                "agency_id": job.agency_id,
                "natural_key": batch.natural_keys[index],
                "firm_id": result.id,  # the record created: a firm, or a firm result
                "job_id": job.id,
                "row_number": batch.numbers[index],
            }
            for index, result in created
        ],
    )
    return Written([index for index, _ in created], rejected)
