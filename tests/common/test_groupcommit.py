"""Group commit: concurrent writes share transactions, each answered only once committed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select

from services.common.changefeed import PendingChange, change_rows
from services.common.db import create_engine, create_sessionmaker
from services.common.directwrite import Inserts
from services.common.groupcommit import GroupCommit
from services.common.logsignal import log_signal
from services.registry.tables import metadata

OUTBOX = metadata.tables["outbox"]
TAKEN_SEQ = "taken-seq"  # an item whose change-feed row reuses a sequence number: it cannot commit


def change(entity_id: str) -> PendingChange:
    return PendingChange(entity="probe", entity_id=entity_id, op="created", version=1, agency_id=None, data={})


class Recorder:
    """One change-feed row per item, as the shortlist route's items write; counts its batches."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.taken_seq = 0

    def __call__(self, items: Sequence[str]) -> Inserts:
        self.batches.append(len(items))
        rows = change_rows([change(item) for item in items if item != TAKEN_SEQ])
        if TAKEN_SEQ in items:
            rows.append(change_rows([change(TAKEN_SEQ)])[0] | {"seq": self.taken_seq})
        tables = [(OUTBOX, [row for row in rows if "seq" not in row]), (OUTBOX, [row for row in rows if "seq" in row])]
        return Inserts(tables, log_entities={"probe"})


async def test_concurrent_writes_are_committed_together_and_in_order(registry_url: str) -> None:
    engine = create_engine(registry_url)
    sessions = create_sessionmaker(engine)
    recorder = Recorder()
    writes: GroupCommit[str] = GroupCommit(engine, recorder)
    writes.start()
    try:
        ids = [f"probe-{n:03d}" for n in range(60)]
        await asyncio.gather(*(writes.write(i) for i in ids))
        async with sessions() as session:  # every write answered is there
            probes = select(OUTBOX.c.entity_id, OUTBOX.c.seq).where(OUTBOX.c.entity == "probe").order_by(OUTBOX.c.seq)
            rows = (await session.execute(probes)).all()
        assert sorted(r.entity_id for r in rows) == ids
        assert len(recorder.batches) < len(ids)  # shared: one commit served several requests
        assert max(recorder.batches) > 1
        # A bad write fails alone; the others of its batch are committed.
        recorder.taken_seq = rows[0].seq
        outcomes = await asyncio.gather(
            writes.write(TAKEN_SEQ), writes.write("after-1"), writes.write("after-2"), return_exceptions=True
        )
        assert isinstance(outcomes[0], Exception) and outcomes[1] is None and outcomes[2] is None
        async with sessions() as session:
            after = await session.scalar(select(func.count()).where(OUTBOX.c.entity_id.in_(["after-1", "after-2"])))
        assert after == 2
        # The writer's connection was closed with the failed batch; the next batch opens another,
        # and its commit wakes the long polls waiting for its entities at once.
        signal = log_signal(engine)
        woken = asyncio.create_task(signal.wait(signal.generation, timeout=30, entities={"probe"}))
        await writes.write("after-3")
        await asyncio.wait_for(woken, 5)
        async with sessions() as session:
            assert await session.scalar(select(func.count()).where(OUTBOX.c.entity_id == "after-3")) == 1
    finally:
        await writes.stop()
        await engine.dispose()


async def test_writes_queued_at_stop_are_committed_and_later_ones_refused(registry_url: str) -> None:
    engine = create_engine(registry_url)
    sessions = create_sessionmaker(engine)
    writes: GroupCommit[str] = GroupCommit(engine, Recorder())
    writes.start()
    try:
        pending = [asyncio.create_task(writes.write(i)) for i in ("a", "b")]
        await asyncio.sleep(0)  # queued, not yet written
        await writes.stop()
        await asyncio.gather(*pending)
        with pytest.raises(RuntimeError, match="not running"):
            await writes.write("c")
        async with sessions() as session:
            written = set(await session.scalars(select(OUTBOX.c.entity_id).where(OUTBOX.c.entity == "probe")))
        assert written == {"a", "b"}
    finally:
        await engine.dispose()
