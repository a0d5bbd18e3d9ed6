"""Writing matching records together with their change-feed rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.changefeed import ChangeOp, PendingChange, record_changes
from services.common.jsontext import JSONText, with_members
from services.matching.tables import OUTBOX, OwnedColumns


def change_of(
    entity: str,
    row: OwnedColumns | Mapping[str, Any],
    public: BaseModel | dict[str, Any] | bytes,
    op: ChangeOp = "created",
    version: int = 1,
) -> PendingChange:
    """The change of ``row`` (a record, or its columns), shown as ``public``: a model, its
    ``model_dump(mode="json")``, or its JSON already rendered (bytes, stored as they are)."""
    columns = row if isinstance(row, Mapping) else {name: getattr(row, name) for name in _CHANGE_COLUMNS}
    owners = {"owner": columns["owner"], "firm_id": columns["firm_id"]}
    data: dict[str, Any] | JSONText
    if isinstance(public, bytes):
        data = JSONText(with_members(public, owners).decode())
    else:
        data = (public.model_dump(mode="json") if isinstance(public, BaseModel) else public) | owners
    return PendingChange(
        entity=entity, entity_id=columns["id"], op=op, version=version, agency_id=columns["agency_id"], data=data
    )


_CHANGE_COLUMNS = ("id", "owner", "firm_id", "agency_id")


async def publish(
    session: AsyncSession,
    entity: str,
    row: OwnedColumns,
    public: BaseModel | dict[str, Any] | bytes,
    op: ChangeOp = "created",
    version: int = 1,
) -> None:
    """Record the change of ``row`` (``change_of``) in ``session``'s transaction."""
    await record_changes(session, OUTBOX, [change_of(entity, row, public, op, version)])
