"""The delivery log's retention: settled deliveries and their attempts are deleted after a while.

Every event sent to every endpoint leaves a delivery row and a row per attempt (with up
to a kilobyte of the receiver's answer); without a bound the log grows with the events
forever. A delivery that succeeded or was given up on is kept for
``webhook_log_retention_days`` after it settled (its last update), long enough to look
at or replay it, then removed with its attempts. Pending deliveries are never touched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.periodic import PeriodicSweep
from services.events.webhooks.tables import FAILED, SUCCEEDED, WebhookAttempt, WebhookDelivery

PURGE_BATCH = 1000  # deliveries removed per transaction: short locks, bounded memory
SWEEP_SECONDS = 3600.0


async def purge_settled(session: AsyncSession, older_than: datetime, limit: int = PURGE_BATCH) -> int:
    """Delete up to ``limit`` deliveries settled before ``older_than``, and their attempts; how many."""
    deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
    attempts = WebhookAttempt.__table__  # type: ignore[attr-defined]
    ids = list(
        await session.scalars(
            select(deliveries.c.id)
            .where(deliveries.c.status.in_((SUCCEEDED, FAILED)), deliveries.c.updated_at < older_than)
            .limit(limit)
        )
    )
    if ids:
        await session.execute(delete(attempts).where(attempts.c.delivery_id.in_(ids)))
        await session.execute(delete(deliveries).where(deliveries.c.id.in_(ids)))
    return len(ids)


class DeliveryLogRetention(PeriodicSweep):
    """Hourly: the settled deliveries older than the retention period, batch by batch."""

    name = "webhook_log_retention"

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], days: int, interval_seconds: float = SWEEP_SECONDS
    ) -> None:
        self.sessionmaker = sessionmaker
        self.days = days
        self.interval_seconds = interval_seconds

    async def sweep(self) -> int:
        older_than = datetime.now(UTC) - timedelta(days=self.days)
        purged = 0
        while True:
            async with self.sessionmaker() as session, session.begin():
                done = await purge_settled(session, older_than)
            purged += done
            if done < PURGE_BATCH:
                return purged
