"""The firms resource's ``after_write`` hook (kept apart so the resource imports little)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def firm_written(session: AsyncSession, op: str, firms: Sequence[tuple[str, str, Any]]) -> None:
    from services.registry.duplicates.service import firm_written as run

    await run(session, op, firms)
