"""Recording the close of requests whose deadline passed, without waiting for a write.

Reads already show such a request closed; this makes it so in the database and on the
change feed (unanswered and no-bid invitations final, their linkages dropped), so
reporting and the suppliers' linkages do not wait for the buyer's next action. Every
replica may sweep: each request is settled in its own transaction under a row lock
(taken with SKIP LOCKED on PostgreSQL, so replicas share the work rather than queue).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from services.common.db import is_postgres
from services.common.periodic import PeriodicSweep
from services.matching.requests.schemas import RequestStatus
from services.matching.requests.service import publish_request, settle_deadline
from services.matching.tables import BuyerRequest


class DeadlineSweeper(PeriodicSweep):
    name = "request_deadlines"

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime], interval_seconds: float
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.interval_seconds = interval_seconds

    async def sweep(self, limit: int = 100) -> int:
        """Settle up to ``limit`` open requests past their deadline; how many were."""
        now = self.clock()
        async with self.sessions() as session:
            due = list(
                await session.scalars(
                    select(col(BuyerRequest.id))
                    .where(col(BuyerRequest.status) == RequestStatus.open.value, col(BuyerRequest.respond_by) <= now)
                    .order_by(col(BuyerRequest.respond_by))
                    .limit(limit)
                )
            )
        settled = 0
        for request_id in due:
            async with self.sessions() as session, session.begin():
                statement = select(BuyerRequest).where(col(BuyerRequest.id) == request_id)
                locked = statement.with_for_update(skip_locked=True) if is_postgres(session) else statement
                row = await session.scalar(locked)
                if row is None or row.status != RequestStatus.open.value or row.respond_by > now:
                    continue  # another replica, or the buyer, got there first
                await settle_deadline(session, row, now)
                row.version += 1
                row.updated_at = now
                await publish_request(session, row, now)
                settled += 1
        return settled
