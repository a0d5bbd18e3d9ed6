"""Writing matching records together with their change-feed rows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.changefeed import ChangeOp, PendingChange, record_changes
from services.matching.tables import OUTBOX, OwnedColumns


async def publish(
    session: AsyncSession,
    entity: str,
    row: OwnedColumns,
    public: BaseModel | dict[str, Any],
    op: ChangeOp = "created",
    version: int = 1,
) -> None:
    """Record the change of ``row``, shown as ``public`` (a model, or its ``model_dump(mode="json")``)."""
    document = public.model_dump(mode="json") if isinstance(public, BaseModel) else public
    data: dict[str, Any] = document | {"owner": row.owner, "firm_id": row.firm_id}
    await record_changes(
        session,
        OUTBOX,
        [PendingChange(entity=entity, entity_id=row.id, op=op, version=version, agency_id=row.agency_id, data=data)],
    )
