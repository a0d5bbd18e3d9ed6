"""The write step every import kind shares: a batch's rows through the create path of single writes.

``create_rows`` writes a batch's valid rows with new natural keys through
``records.create_drafts`` (the database rules, tags and outbox rows of ``POST``) and
records the rows' natural keys; a kind with its own set-based step (firms on
PostgreSQL, ``firm_writes``) returns the same ``Written``. Rows are named by their
index among the batch's valid rows (``PreparedBatch``'s columns).
"""

from __future__ import annotations

from dataclasses import dataclass
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
class Written:
    created: list[int]  # the valid rows created, by index in the batch's columns
    rejected: list[tuple[int, ValidationFailed]]  # rows the database rules refused


async def create_rows(
    spec: ResourceSpec,
    session: AsyncSession,
    job: ImportJob,
    principal: Principal,
    batch: PreparedBatch,
    chosen: list[int],
) -> Written:
    """Create the ``chosen`` valid rows of ``batch`` (those with new natural keys) as single writes
    do, in the caller's transaction, then their natural keys (``spec`` first: a kind's write step
    binds it)."""
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
