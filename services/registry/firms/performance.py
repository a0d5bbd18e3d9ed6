"""Suppliers' observed performance, followed from matching's change feed onto their firms.

Matching publishes ``supplier_performance`` whenever a scorecard changes what counts
for a supplier. The registry records it on the firm as ``observed_performance``, in
one transaction with the feed cursor and the firm's own change-feed row, so the
catalogue (and reporting) see it the way they see any other change of the firm.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.changefeed import ChangePage, load_cursor, store_cursor
from services.registry.firms.models import Firm
from services.registry.firms.resource import FIRMS
from services.registry.records import publish_record
from services.registry.tables import FEED_CURSORS

logger = structlog.get_logger(__name__)

FEED = "matching"
ENTITY = "supplier_performance"


class ObservedPerformanceConsumer:
    """The ``FeedConsumer`` of matching's feed: only ``supplier_performance`` matters here."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def load_cursor(self) -> int:
        async with self.sessions() as session:
            return await load_cursor(session, FEED_CURSORS, FEED)

    async def apply(self, page: ChangePage) -> None:
        async with self.sessions() as session, session.begin():
            for change in page.items:
                if change.entity != ENTITY:
                    continue
                firm = await session.get(Firm, change.entity_id, with_for_update=True)
                observed = None if change.op == "deleted" else change.data
                if firm is None:  # removed (or merged away) since: nothing to record
                    logger.info("observed_performance_without_firm", firm_id=change.entity_id)
                    continue
                if firm.observed_performance == observed:
                    continue
                firm.observed_performance = observed
                firm.version += 1
                firm.updated_at = datetime.now(UTC)
                await session.flush()
                await publish_record(session, FIRMS, firm, "updated")
            await store_cursor(session, FEED_CURSORS, FEED, page.next_after)
