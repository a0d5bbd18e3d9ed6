"""Direct writes: rows stored through the driver exactly as a session stores them, one
transaction a write, the change feed's long polls woken by its commit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.db import create_engine, create_sessionmaker, is_postgres
from services.common.directwrite import DirectWriter, Inserts
from services.common.jsontext import JSONText
from services.common.logsignal import log_signal
from services.registry.tables import metadata
from services.reporting.tables import metadata as REPORTING

OUTBOX = metadata.tables["outbox"]
KOLKATA = timezone(timedelta(hours=5, minutes=30))


def outbox_rows(prefix: str) -> list[dict[str, Any]]:
    """Rows with every kind of value the outbox holds: aware (not UTC) and naive times,
    JSON as data, as text rendered once, and none; text that is not ASCII."""
    values: list[tuple[Any, datetime]] = [
        ({"name": "Cía. Ltda. — शिवा", "n": [1, None, 2.5], "ok": True}, datetime(2026, 12, 8, 6, 30, 0, 125, KOLKATA)),
        (JSONText('{"rendered":"once","n":3}'), datetime(2026, 12, 8, 1, 2, 3, 456789)),
        (None, datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC)),
    ]
    return [
        {
            "entity": "probe",
            "entity_id": f"{prefix}-{n}",
            "op": "created",
            "version": n + 1,
            "agency_id": None if n else "agency-1",
            "data": data,
            "occurred_at": at,
        }
        for n, (data, at) in enumerate(values)
    ]


async def stored(engine: Any, prefix: str) -> list[tuple[Any, ...]]:
    """The outbox rows of ``prefix`` as the database holds them: text, and SQLite's storage class."""
    storage = "typeof(occurred_at), typeof(data)" if not is_postgres(engine) else "'', ''"
    query = text(
        "SELECT entity, op, version, agency_id, CAST(occurred_at AS TEXT), CAST(data AS TEXT), "
        f"{storage} FROM outbox WHERE entity_id LIKE :prefix ORDER BY seq"
    )
    async with engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(query, {"prefix": f"{prefix}-%"})).all()]


async def test_rows_are_stored_as_a_session_stores_them(registry_url: str) -> None:
    engine = create_engine(registry_url)
    writer = DirectWriter(engine)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(insert(OUTBOX), outbox_rows("session"))
        await writer.write(Inserts([(OUTBOX, outbox_rows("direct"))]))
        by_session, direct = await stored(engine, "session"), await stored(engine, "direct")
        assert len(direct) == 3
        assert direct == by_session
        async with create_sessionmaker(engine)() as session:  # and read back as the same values
            read = (await session.execute(select(OUTBOX).where(OUTBOX.c.entity_id.like("direct-%")))).all()
        expected = outbox_rows("direct")
        assert [r.data for r in read] == [
            {"name": "Cía. Ltda. — शिवा", "n": [1, None, 2.5], "ok": True},
            {"rendered": "once", "n": 3},
            None,
        ]
        assert [r.occurred_at for r in read] == [
            row["occurred_at"] if row["occurred_at"].tzinfo else row["occurred_at"].replace(tzinfo=UTC)
            for row in expected
        ]
    finally:
        await writer.close()
        await engine.dispose()


async def test_a_write_that_fails_writes_nothing_and_the_next_one_succeeds(registry_url: str) -> None:
    engine = create_engine(registry_url)
    writer = DirectWriter(engine)
    try:
        await writer.write(Inserts([(OUTBOX, outbox_rows("first"))]))
        seq = await _scalar(engine, select(func.max(OUTBOX.c.seq)))
        taken = [dict(outbox_rows("taken")[0], seq=seq)]
        with pytest.raises(Exception, match="(?i)unique|duplicate"):
            # Good rows first, then one whose sequence number is taken: neither is kept.
            await writer.write(Inserts([(OUTBOX, outbox_rows("second")), (OUTBOX, taken)], log_entities={"probe"}))
        written = select(func.count()).where(OUTBOX.c.entity_id.like("second-%") | OUTBOX.c.entity_id.like("taken-%"))
        assert await _scalar(engine, written) == 0
        await writer.reset()
        await writer.write(Inserts([(OUTBOX, outbox_rows("third"))]))
        assert await _scalar(engine, select(func.count()).where(OUTBOX.c.entity_id.like("third-%"))) == 3
    finally:
        await writer.close()
        await engine.dispose()


async def test_a_change_feed_write_wakes_the_long_polls_for_its_entities(registry_url: str) -> None:
    engine = create_engine(registry_url)
    writer = DirectWriter(engine)
    signal = log_signal(engine)
    try:
        other = asyncio.create_task(signal.wait(signal.generation, timeout=30, entities={"firm"}))
        wanted = asyncio.create_task(signal.wait(signal.generation, timeout=30, entities={"probe"}))
        await writer.write(Inserts([(OUTBOX, outbox_rows("woken"))], log_entities={"probe"}))
        await asyncio.wait_for(wanted, 5)
        await asyncio.sleep(0.05)
        assert not other.done()  # a poll for other entities sleeps on
        other.cancel()
    finally:
        await writer.close()
        await engine.dispose()


async def test_deletes_come_first_and_upserts_set_a_taken_key(reporting_url: str) -> None:
    """What a follower's page writes: rows of its records deleted and inserted anew, and its
    cursor inserted once, then moved, in one transaction."""
    engine = create_engine(reporting_url)
    writer = DirectWriter(engine)
    shortlists, cursors = REPORTING.tables["shortlists"], REPORTING.tables["feed_cursors"]
    at = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)

    def shortlist(key: str, eligible: int) -> dict[str, Any]:
        return {
            "id": key,
            "owner": "admin",
            "buyer_firm_id": None,
            "issued_at": at,
            "issued_on": at.date(),
            "eligible_count": eligible,
            "development_count": None,
        }

    try:
        first = [(cursors, [{"feed": "matching", "position": 2, "updated_at": at}])]
        await writer.write(Inserts([(shortlists, [shortlist("sl_1", 1), shortlist("sl_2", 2)])], upserts=first))
        moved = [(cursors, [{"feed": "matching", "position": 3, "updated_at": at + timedelta(seconds=1)}])]
        await writer.write(
            Inserts(
                [(shortlists, [shortlist("sl_2", 20)])], deletes=[(shortlists.c.id, ["sl_2", "sl_9"])], upserts=moved
            )
        )
        async with engine.connect() as connection:
            stored = (await connection.execute(select(shortlists.c.id, shortlists.c.eligible_count))).all()
            cursor = (await connection.execute(select(cursors.c.position, cursors.c.updated_at))).all()
        assert sorted(stored) == [("sl_1", 1), ("sl_2", 20)]
        assert cursor == [(3, at + timedelta(seconds=1))]
        with pytest.raises(ValueError, match="primary key"):
            await writer.write(Inserts([], upserts=[(cursors, [{"position": 4, "updated_at": at}])]))
    finally:
        await writer.close()
        await engine.dispose()


async def test_rows_must_name_the_columns_a_session_would_fill_in(tmp_path: Path) -> None:
    probe = Table("probe", MetaData(), Column("id", String, primary_key=True), Column("kind", String, default="x"))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}")
    writer = DirectWriter(engine)
    try:
        with pytest.raises(ValueError, match="must give kind"):
            await writer.write(Inserts([(probe, [{"id": "a"}])]))
    finally:
        await writer.close()
        await engine.dispose()
    memory = create_async_engine("sqlite+aiosqlite:///:memory:")
    with pytest.raises(ValueError, match="SQLite database file"):
        DirectWriter(memory)
    await memory.dispose()


async def _scalar(engine: Any, query: Any) -> Any:
    async with engine.connect() as connection:
        return await connection.scalar(query)
