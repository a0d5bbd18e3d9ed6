"""Applying a feed's pages to the read model, with the feed's cursor, atomically.

``ReadModelConsumer`` is the ``FeedConsumer`` of one feed. A page is applied in one
transaction together with the new cursor and the feed's freshness, so a crash
between pages loses nothing and applies nothing twice. Within a page only the last
state of each record matters (every change carries the whole record), so records
are rewritten in bulk: their rows and child rows are deleted and inserted anew.
The one thing that depends on the order of states is when a firm's certificate was
first recorded; it is carried from state to state, so any page size gives the
same answer as replaying change by change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import structlog
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bulk import chunks, insert_rows
from services.common.changefeed import Change, ChangePage, load_cursor, store_cursor
from services.common.feeds import RegisteredFirmRecord
from services.reporting.readmodel.records import EntityMap
from services.reporting.tables import FEED_CURSORS, FeedState, FirmCertification, table_of

logger = structlog.get_logger(__name__)
CERTIFICATIONS = table_of(FirmCertification)
FEED_STATE = table_of(FeedState)
CHUNK = 500  # ids per IN (...) list

CertKey = tuple[str, date | None, date | None, str | None]


class ReadModelConsumer:
    """Applies one feed (``registry`` or ``matching``) to the read model."""

    def __init__(
        self,
        feed: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        read_sessionmaker: async_sessionmaker[AsyncSession],
        entities: Mapping[str, EntityMap[Any]],
    ) -> None:
        self.feed = feed
        self.sessionmaker = sessionmaker
        self.read_sessionmaker = read_sessionmaker
        self.entities = entities

    async def load_cursor(self) -> int:
        async with self.read_sessionmaker() as session:
            return await load_cursor(session, FEED_CURSORS, self.feed)

    async def apply(self, page: ChangePage) -> None:
        by_entity: dict[str, list[Change]] = defaultdict(list)
        for change in page.items:
            if change.entity in self.entities:
                by_entity[change.entity].append(change)
        async with self.sessionmaker() as session, session.begin():
            for entity, changes in by_entity.items():
                await self._apply_entity(session, self.entities[entity], changes)
            await store_cursor(session, FEED_CURSORS, self.feed, page.next_after)
            last = page.items[-1].occurred_at if page.items else None
            await _store_state(session, self.feed, page.next_after, last)
        logger.debug("feed_page_applied", feed=self.feed, changes=len(page.items), cursor=page.next_after)

    async def _apply_entity(self, session: AsyncSession, spec: EntityMap[Any], changes: list[Change]) -> None:
        # Every state is read (FeedContractError if one lacks a field), the last one of each record kept.
        states = [
            (
                change,
                None
                if change.op == "deleted" or change.data is None
                else spec.read({"agency_id": change.agency_id} | change.data),
            )
            for change in changes
        ]
        final = {change.entity_id: record for change, record in states}
        ids = list(final)
        certificates: list[dict[str, Any]] = []
        if spec.entity == "firm":
            certificates = await self._certificates(session, ids, states)
        for chunk in chunks(ids, CHUNK):
            for child in spec.children:
                await session.execute(delete(child.table).where(child.table.c[child.key].in_(chunk)))
            await session.execute(delete(spec.table).where(spec.table.c.id.in_(chunk)))
        live = [record for record in final.values() if record is not None]
        await insert_rows(session, spec.table, [spec.row(record) for record in live])
        for child in spec.children:
            await insert_rows(session, child.table, [row for record in live for row in child.rows(record)])
        await insert_rows(session, CERTIFICATIONS, certificates)

    async def _certificates(
        self, session: AsyncSession, ids: list[str], states: list[tuple[Change, RegisteredFirmRecord | None]]
    ) -> list[dict[str, Any]]:
        """The firms' certificate rows after ``changes``, each with the day it was first recorded."""
        seen: dict[str, dict[CertKey, date]] = defaultdict(dict)
        for chunk in chunks(ids, CHUNK):
            rows = await session.execute(
                select(
                    CERTIFICATIONS.c.firm_id,
                    CERTIFICATIONS.c.scheme,
                    CERTIFICATIONS.c.valid_from,
                    CERTIFICATIONS.c.valid_until,
                    CERTIFICATIONS.c.certificate_number,
                    CERTIFICATIONS.c.recorded_on,
                ).where(CERTIFICATIONS.c.firm_id.in_(chunk))
            )
            for firm_id, scheme, valid_from, valid_until, number, recorded_on in rows:
                seen[firm_id].setdefault((scheme, valid_from, valid_until, number), recorded_on)
            await session.execute(delete(CERTIFICATIONS).where(CERTIFICATIONS.c.firm_id.in_(chunk)))
        current: dict[str, list[tuple[CertKey, date]]] = {}
        for change, firm in states:  # in feed order: a certificate keeps the day it first appeared
            previous = seen[change.entity_id]
            if firm is None:
                seen[change.entity_id] = {}
                current[change.entity_id] = []
                continue
            recorded = change.occurred_at.date()
            keys = [(c.scheme, c.valid_from, c.valid_until, c.certificate_number) for c in firm.certifications]
            state = [(key, previous.get(key, recorded)) for key in keys]
            seen[change.entity_id] = dict(state)
            current[change.entity_id] = state
        return [
            {
                "firm_id": firm_id,
                "position": position,
                "scheme": key[0],
                "valid_from": key[1],
                "valid_until": key[2],
                "certificate_number": key[3],
                "recorded_on": recorded_on,
                "obtained_on": key[1] or recorded_on,
            }
            for firm_id, state in current.items()
            for position, (key, recorded_on) in enumerate(state)
        ]


async def _store_state(session: AsyncSession, feed: str, seq: int, last_change_at: datetime | None) -> None:
    now = datetime.now(UTC)
    values: dict[str, Any] = {"last_seq": seq, "applied_at": now}
    if last_change_at is not None:
        values["last_change_at"] = last_change_at
    result = await session.execute(update(FEED_STATE).where(FEED_STATE.c.feed == feed).values(**values))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await session.execute(insert(FEED_STATE).values(feed=feed, **values))
