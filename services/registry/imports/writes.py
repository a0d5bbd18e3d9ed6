"""The write step every import kind shares: a batch's rows through the create path of single writes.

``create_rows`` writes a batch's valid rows with new natural keys through
``records.create_drafts`` (the database rules, tags and outbox rows of ``POST``) and
records the rows' natural keys; a kind with its own set-based step (firms on
PostgreSQL, ``firm_writes``) returns the same ``Written``.
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
    from services.registry.imports.prepare import Prepared

ROW_KEYS: Table = ImportRowKey.__table__  # type: ignore[attr-defined]


@dataclass
class Written:
    created: list[Prepared]
    rejected: list[tuple[Prepared, ValidationFailed]]  # rows the database rules refused


async def create_rows(
    spec: ResourceSpec, session: AsyncSession, job: ImportJob, principal: Principal, items: list[Prepared]
) -> Written:
    """Create ``items`` (valid rows with new natural keys) as single writes do, in the caller's
    transaction, then their natural keys (``spec`` first: a kind's write step binds it)."""
    drafts = [item.draft for item in items if item.draft is not None]
    assert len(drafts) == len(items)
    results = await create_drafts(session, spec, principal=principal, drafts=drafts, notify=False)
    created: list[tuple[Prepared, Created]] = []
    rejected: list[tuple[Prepared, ValidationFailed]] = []
    for item, result in zip(items, results, strict=True):
        if isinstance(result, ValidationFailed):
            rejected.append((item, result))
        else:
            created.append((item, result))
    await insert_rows(
        session,
        ROW_KEYS,
        [
            {
                "agency_id": job.agency_id,
                "natural_key": item.natural_key,
                "firm_id": result.id,  # the record created: a firm, or a firm result
                "job_id": job.id,
                "row_number": item.number,
            }
            for item, result in created
        ],
    )
    return Written([item for item, _ in created], rejected)
