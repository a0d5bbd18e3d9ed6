"""Group commit: concurrent writes share transactions, each answered only once committed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.changefeed import PendingChange, record_changes
from services.common.db import create_engine, create_sessionmaker
from services.common.groupcommit import GroupCommit, Write
from services.registry.tables import metadata

OUTBOX = metadata.tables["outbox"]


def change(entity_id: str) -> PendingChange:
    return PendingChange(entity="probe", entity_id=entity_id, op="created", version=1, agency_id=None, data={})


def recorder(entity_id: str) -> Write:
    """A write of one change-feed row, as a route hands it over."""

    async def write(session: AsyncSession) -> None:
        await record_changes(session, OUTBOX, [change(entity_id)])

    return write


async def test_concurrent_writes_are_committed_together_and_in_order(registry_url: str) -> None:
    engine = create_engine(registry_url)
    sessions = create_sessionmaker(engine)
    writes = GroupCommit(sessions)
    transactions = 0

    def counted(entity_id: str) -> Write:
        async def write(session: AsyncSession) -> None:
            nonlocal transactions
            transactions += "counted" not in session.info  # the first write of each transaction
            session.info["counted"] = True
            await recorder(entity_id)(session)

        return write

    writes.start()
    try:
        ids = [f"probe-{n:03d}" for n in range(60)]
        await asyncio.gather(*(writes.write(counted(i)) for i in ids))
        async with sessions() as session:  # every write answered is there
            probes = select(OUTBOX.c.entity_id, OUTBOX.c.seq).where(OUTBOX.c.entity == "probe").order_by(OUTBOX.c.seq)
            rows = (await session.execute(probes)).all()
        assert sorted(r.entity_id for r in rows) == ids
        assert transactions < len(ids)  # shared: one commit served several requests
        # A bad write fails alone; the others of its batch are committed.
        duplicate_key = {
            "entity": "x",
            "entity_id": "same",
            "op": "created",
            "version": 1,
            "occurred_at": datetime.now(UTC),
        }

        async def bad(session: AsyncSession) -> None:
            await session.execute(insert(OUTBOX).values(seq=rows[0].seq, **duplicate_key))  # a taken seq

        good = [writes.write(recorder(i)) for i in ("after-1", "after-2")]
        outcomes = await asyncio.gather(writes.write(bad), *good, return_exceptions=True)
        assert isinstance(outcomes[0], Exception) and outcomes[1:] == [None, None]
        async with sessions() as session:
            after = await session.scalar(select(func.count()).where(OUTBOX.c.entity_id.in_(["after-1", "after-2"])))
        assert after == 2
    finally:
        await writes.stop()
        await engine.dispose()


async def test_writes_queued_at_stop_are_committed_and_later_ones_refused(registry_url: str) -> None:
    engine = create_engine(registry_url)
    sessions = create_sessionmaker(engine)
    writes = GroupCommit(sessions)
    writes.start()
    try:
        pending = [asyncio.create_task(writes.write(recorder(i))) for i in ("a", "b")]
        await asyncio.sleep(0)  # queued, not yet written
        await writes.stop()
        await asyncio.gather(*pending)
        with pytest.raises(RuntimeError, match="not running"):
            await writes.write(recorder("c"))
        async with sessions() as session:
            written = set(await session.scalars(select(OUTBOX.c.entity_id).where(OUTBOX.c.entity == "probe")))
        assert written == {"a", "b"}
    finally:
        await engine.dispose()
