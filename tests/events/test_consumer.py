"""Storing a feed's pages: once each however many replicas apply them, and the stored rows
handed to ``events_stored`` in the storing transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.changefeed import Change, ChangePage
from services.common.db import create_engine, create_sessionmaker
from services.events.app import MIGRATIONS
from services.events.consumer import EventConsumer
from services.events.hooks import events_stored
from services.events.tables import EVENTS
from tests.support import Backend


def firm_changes(first: int, last: int) -> list[Change]:
    """Firm ``n`` created by change ``n``."""
    return [
        Change(
            seq=n,
            entity="firm",
            entity_id=f"frm_{n}",
            op="created",
            version=1,
            agency_id="agy_a",
            occurred_at=datetime.now(UTC),
            data={"id": f"frm_{n}", "agency_id": "agy_a", "name": f"Firm {n}"},
        )
        for n in range(first, last + 1)
    ]


def page(changes: list[Change]) -> ChangePage:
    return ChangePage(items=changes, next_after=changes[-1].seq, has_more=False)


async def test_replicas_store_each_change_once_and_hooks_see_the_rows(backend: Backend) -> None:
    engine = create_engine(await backend.fresh(MIGRATIONS))
    seen: list[tuple[int, str, int]] = []

    async def handler(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        # In the storing transaction: the rows are there to be read (and written beside).
        stored = await session.scalar(select(func.count()).select_from(EVENTS))
        seen.extend((row["seq"], row["type"], int(stored or 0)) for row in rows)

    events_stored.connect(handler)
    try:
        sessions, reads = create_sessionmaker(engine), create_sessionmaker(engine, read_only=True)
        one, other = EventConsumer("registry", sessions, reads), EventConsumer("registry", sessions, reads)
        await one.apply(page(firm_changes(1, 3)))
        await other.apply(page(firm_changes(1, 3)))  # the same page, fetched by a second replica
        await other.apply(page(firm_changes(1, 5)))  # a page overlapping what the first stored
        await one.apply(page(firm_changes(4, 5)))
        async with reads() as session:
            stored = (await session.execute(select(EVENTS.c.seq, EVENTS.c.subject).order_by(EVENTS.c.seq))).all()
        assert [subject for _, subject in stored] == [f"frm_{n}" for n in range(1, 6)]
        assert await one.load_cursor() == await other.load_cursor() == 5
        seqs = [seq for seq, _ in stored]
        assert seen == [(seqs[0], "firm.created", 3), (seqs[1], "firm.created", 3), (seqs[2], "firm.created", 3)] + [
            (seqs[3], "firm.created", 5),
            (seqs[4], "firm.created", 5),
        ]
    finally:
        events_stored.handlers.remove(handler)
        await engine.dispose()
