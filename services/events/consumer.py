"""Turning a feed's pages into stored events, with the feed's cursor, atomically.

``EventConsumer`` is the ``FeedConsumer`` of one feed (``registry`` or ``matching``).
A page is applied in one transaction: the events it makes, the source states it
changes and the feed's new cursor, so a crash between pages loses nothing and stores
nothing twice. Every writer of the events table takes ``lock_sequence`` first, so
``seq`` is drawn and committed in order and a reader never sees a smaller ``seq``
appear behind one it has read (the cursor of ``GET /v1/events`` relies on it). Under
that lock the consumer reads the stored cursor again and skips changes already
applied, so replicas that follow the same feed into one database store each event once.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bulk import chunks, insert_rows, one_of
from services.common.changefeed import ChangePage, load_cursor, lock_sequence, store_cursor
from services.common.db import is_postgres
from services.events.hooks import events_stored
from services.events.mapping import STATEFUL, State, event_id, events_of
from services.events.tables import EVENTS, FEED_CURSORS, SOURCE_STATES

logger = structlog.get_logger(__name__)
CHUNK = 500  # ids per IN (...) list


class EventConsumer:
    """Applies one feed's changes to the events log."""

    def __init__(
        self,
        feed: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        read_sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        self.feed = feed
        self.sessionmaker = sessionmaker
        self.read_sessionmaker = read_sessionmaker
        self.stateful = STATEFUL.get(feed, set())

    async def load_cursor(self) -> int:
        async with self.read_sessionmaker() as session:
            return await load_cursor(session, FEED_CURSORS, self.feed)

    async def apply(self, page: ChangePage) -> None:
        async with self.sessionmaker() as session, session.begin():
            if is_postgres(session):
                # A replay grows these tables from empty faster than autovacuum analyzes them:
                # a plan cached while they were small scans them whole (measured: 20k changes
                # took 20 s instead of 3 s). Planned per execution, lookups stay index scans.
                await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            await lock_sequence(session)
            position = await load_cursor(session, FEED_CURSORS, self.feed)
            changes = [change for change in page.items if change.seq > position]  # another replica's, skipped
            keyed = sorted({c.entity_id for c in changes if c.entity in self.stateful})
            states = await self._states(session, keyed)  # id -> (entity, state); None once forgotten
            rows: list[dict[str, Any]] = []
            for change in changes:
                remembered = states.get(change.entity_id)
                made, state = events_of(self.feed, change, remembered[1] if remembered else None)
                if change.entity in self.stateful:
                    states[change.entity_id] = (change.entity, state) if state is not None else None
                for index, event in enumerate(made):
                    rows.append(
                        {
                            "id": event_id(self.feed, change.seq, index),
                            "type": event.type,
                            "created_at": change.occurred_at,
                            "subject": event.subject,
                            "source": self.feed,
                            "source_seq": change.seq,
                            "data": event.data,
                            "audience": event.audience,
                            "owner": event.owner,
                            "agency_id": event.agency_id,
                        }
                    )
            await self._store_states(session, keyed, states)
            await insert_rows(session, EVENTS, rows)  # seq drawn in list order
            if rows and events_stored.handlers:
                stored = await session.execute(
                    select(EVENTS).where(one_of(session, EVENTS.c.id, [r["id"] for r in rows])).order_by(EVENTS.c.seq)
                )
                await events_stored.call(session, [dict(row._mapping) for row in stored])
            await store_cursor(session, FEED_CURSORS, self.feed, max(position, page.next_after))
        logger.debug("events_page_applied", feed=self.feed, changes=len(changes), events=len(rows))

    async def _states(self, session: AsyncSession, ids: list[str]) -> dict[str, tuple[str, State] | None]:
        """The remembered states of ``ids``: ``{id: (entity, state)}``."""
        states: dict[str, tuple[str, State] | None] = {}
        for chunk in chunks(ids, CHUNK):
            result = await session.execute(
                select(SOURCE_STATES.c.entity_id, SOURCE_STATES.c.entity, SOURCE_STATES.c.state).where(
                    SOURCE_STATES.c.feed == self.feed, one_of(session, SOURCE_STATES.c.entity_id, chunk)
                )
            )
            states |= {entity_id: (entity, state) for entity_id, entity, state in result}
        return states

    async def _store_states(
        self, session: AsyncSession, ids: list[str], states: dict[str, tuple[str, State] | None]
    ) -> None:
        for chunk in chunks(ids, CHUNK):
            await session.execute(
                delete(SOURCE_STATES).where(
                    SOURCE_STATES.c.feed == self.feed, one_of(session, SOURCE_STATES.c.entity_id, chunk)
                )
            )
        await insert_rows(
            session,
            SOURCE_STATES,
            [
                {"feed": self.feed, "entity_id": entity_id, "entity": value[0], "state": value[1]}
                for entity_id in ids
                if (value := states.get(entity_id)) is not None
            ],
        )
