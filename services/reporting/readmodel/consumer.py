"""Applying a feed's pages to the read model, with the feed's cursor, atomically.

``ReadModelConsumer`` is the ``FeedConsumer`` of one feed. A page is applied in one
transaction together with the new cursor and the feed's freshness, so a crash
between pages loses nothing and applies nothing twice. Within a page only the last
state of each record matters (every change carries the whole record), so records
are rewritten in bulk: their rows and child rows are deleted and inserted anew, by a
``DirectWriter`` (the page's statements in one hop to the database, each an
``executemany``: through a session, statement by statement, a page's bookkeeping cost
more than its rows; docs/benchmarks.md, "The followers' pages through the driver").
The one thing that depends on the order of states is when a firm's certificate was
first recorded; it is carried from state to state, so any page size gives the
same answer as replaying change by change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import structlog
from sqlalchemy import Column, Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bulk import chunks
from services.common.changefeed import Change, ChangePage, load_cursor
from services.common.directwrite import DirectWriter, Inserts
from services.common.feeds import RegisteredFirmRecord
from services.reporting.readmodel.records import EntityMap
from services.reporting.tables import FEED_CURSORS, FeedState, FirmCertification, table_of

logger = structlog.get_logger(__name__)
CERTIFICATIONS = table_of(FirmCertification)
FEED_STATE = table_of(FeedState)
CHUNK = 500  # ids per IN (...) list

CertKey = tuple[str, date | None, date | None, str | None]


class ReadModelConsumer:
    """Applies one feed (``registry`` or ``matching``) to the read model, each page written
    by ``writer`` (its own: one transaction at a time)."""

    def __init__(
        self,
        feed: str,
        read_sessionmaker: async_sessionmaker[AsyncSession],
        writer: DirectWriter,
        entities: Mapping[str, EntityMap[Any]],
    ) -> None:
        self.feed = feed
        self.read_sessionmaker = read_sessionmaker
        self.writer = writer
        self.entities = entities

    async def load_cursor(self) -> int:
        async with self.read_sessionmaker() as session:
            return await load_cursor(session, FEED_CURSORS, self.feed)

    async def apply(self, page: ChangePage) -> None:
        by_entity: dict[str, list[Change]] = defaultdict(list)
        for change in page.items:
            if change.entity in self.entities:
                by_entity[change.entity].append(change)
        writes = _PageWrites()
        for entity, changes in by_entity.items():
            await self._rewrite(writes, self.entities[entity], changes)
        now = datetime.now(UTC)
        state: dict[str, Any] = {"feed": self.feed, "last_seq": page.next_after, "applied_at": now}
        if page.items:
            state["last_change_at"] = page.items[-1].occurred_at
        cursor = {"feed": self.feed, "position": page.next_after, "updated_at": now}
        # The rows, the cursor and the feed's freshness in one transaction: a crash between
        # pages loses nothing and applies nothing twice.
        try:
            await self.writer.write(
                Inserts(
                    writes.inserts, deletes=writes.deletes, upserts=[(FEED_CURSORS, [cursor]), (FEED_STATE, [state])]
                )
            )
        except BaseException:
            await self.writer.reset()
            raise
        logger.debug("feed_page_applied", feed=self.feed, changes=len(page.items), cursor=page.next_after)

    async def _rewrite(self, writes: _PageWrites, spec: EntityMap[Any], changes: list[Change]) -> None:
        """Add to ``writes`` the rows of ``changes``' records: their rows and child rows deleted,
        the last state of each inserted."""
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
        if spec.entity == "firm":
            writes.deletes.append((CERTIFICATIONS.c.firm_id, ids))
        writes.deletes.extend((child.table.c[child.key], ids) for child in spec.children)
        writes.deletes.append((spec.table.c.id, ids))
        live = [record for record in final.values() if record is not None]
        writes.inserts.append((spec.table, [spec.row(record) for record in live]))
        writes.inserts.extend(
            (child.table, [row for record in live for row in child.rows(record)]) for child in spec.children
        )
        if spec.entity == "firm":
            writes.inserts.append((CERTIFICATIONS, await self._certificates(ids, states)))

    async def _certificates(
        self, ids: list[str], states: list[tuple[Change, RegisteredFirmRecord | None]]
    ) -> list[dict[str, Any]]:
        """The firms' certificate rows after ``changes``, each with the day it was first recorded.

        The stored rows are read before the page's transaction: only this feed's follower
        writes them, one page after the other."""
        seen: dict[str, dict[CertKey, date]] = defaultdict(dict)
        async with self.read_sessionmaker() as session:
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


@dataclass
class _PageWrites:
    """What one page's transaction writes: rows deleted, then rows inserted, table by table."""

    deletes: list[tuple[Column[Any], list[str]]] = field(default_factory=list)
    inserts: list[tuple[Table, list[dict[str, Any]]]] = field(default_factory=list)
