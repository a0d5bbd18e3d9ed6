"""The database layer: the one time column type, and SQLite's driver."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest.mock import patch

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, func, insert, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from services.common import sqlitedriver
from services.common.db import UTCDateTime, create_engine, create_sessionmaker
from services.registry.tables import RecordTag, metadata

OUTBOX = metadata.tables["outbox"]


async def test_time_columns_read_back_aware_utc(registry_url: str) -> None:
    """Whatever zone a time is written in (none meaning UTC), it reads back as the same
    instant in UTC, with its zone, on SQLite as on PostgreSQL."""
    assert isinstance(OUTBOX.c.occurred_at.type, UTCDateTime)
    instant = datetime(2026, 3, 1, 23, 30, 15, 123456, tzinfo=UTC)
    written = {
        "utc": instant,
        "east": instant.astimezone(timezone(timedelta(hours=5, minutes=30))),
        "west": instant.astimezone(timezone(timedelta(hours=-8))),
        "naive": instant.replace(tzinfo=None),
    }
    engine = create_engine(registry_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            for entity_id, moment in written.items():
                row = {"entity": "probe", "entity_id": entity_id, "op": "created", "version": 1, "occurred_at": moment}
                await session.execute(insert(OUTBOX).values(**row))
        async with create_sessionmaker(engine, read_only=True)() as session:
            rows = await session.execute(
                select(OUTBOX.c.entity_id, OUTBOX.c.occurred_at).where(OUTBOX.c.entity == "probe")
            )
            read = {entity_id: moment for entity_id, moment in rows}
            # A bound value is converted too: the east time finds the row written in UTC.
            found = await session.scalar(select(OUTBOX.c.entity_id).where(OUTBOX.c.occurred_at == written["east"]))
    finally:
        await engine.dispose()
    assert read == dict.fromkeys(written, instant)
    assert all(moment.utcoffset() == timedelta(0) for moment in read.values())
    assert found is not None


async def test_a_session_closes_what_it_used_and_nothing_else(registry_url: str) -> None:
    """``Session.close`` skips SQLAlchemy's close only where there is nothing to close: a
    session that read has its transaction ended and its connection back in the pool, and one
    holding objects lets go of them, as ``AsyncSession`` does."""
    engine = create_engine(registry_url)
    sessions = create_sessionmaker(engine)
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    try:
        async with sessions() as unused:
            pass
        assert not unused.in_transaction()
        async with sessions() as reading:
            await reading.execute(select(OUTBOX.c.seq).limit(1))
            assert reading.in_transaction() and pool.checkedout() == 1
        assert not reading.in_transaction() and pool.checkedout() == 0
        tag = RecordTag(entity="firm", record_id="frm_1", facet="probe", value="x")
        async with sessions() as holding:
            holding.add(tag)  # pending, never flushed
            assert tag in holding
        assert tag not in holding and not holding.new
    finally:
        await engine.dispose()


async def test_sqlite_statements_take_one_hop_and_report_as_the_driver_does(tmp_path: Path) -> None:
    """A SQLite statement is one call on the connection's thread (run, fetch, close), and
    what SQLAlchemy reads of its cursor (rows, row counts, the new row's id, errors) is
    what sqlite3 reports."""
    probe = Table("probe", MetaData(), Column("n", Integer, primary_key=True), Column("t", Text))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}")
    hops = 0
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    try:
        async with engine.begin() as connection:
            await connection.run_sync(probe.metadata.create_all)
        with patch.object(aiosqlite.Connection, "_execute", counted):
            async with engine.begin() as connection:  # BEGIN, the INSERT, COMMIT
                inserted = await connection.execute(insert(probe).values(t="a"))
            assert hops == 3
            assert inserted.inserted_primary_key == (1,)
            async with engine.begin() as connection:
                many = await connection.execute(insert(probe), [{"t": "b"}, {"t": "c"}, {"t": "d"}])
                assert many.rowcount == 3
                changed = await connection.execute(update(probe).where(probe.c.n > 2).values(t="x"))
                assert changed.rowcount == 2
                rows = (await connection.execute(select(probe.c.n, probe.c.t).order_by(probe.c.n))).all()
                assert [tuple(row) for row in rows] == [(1, "a"), (2, "b"), (3, "x"), (4, "x")]
                assert (await connection.execute(select(probe.c.t).where(probe.c.n == 9))).first() is None
            with pytest.raises(OperationalError, match="no such table"):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT * FROM missing"))
            async with engine.connect() as connection:  # the pool's connection is still good
                assert await connection.scalar(select(func.count()).select_from(probe)) == 4
    finally:
        await engine.dispose()


def test_a_sqlite_call_whose_loop_has_closed_ends_quietly(tmp_path: Path) -> None:
    """A call answered after its event loop closed (a connection stopped by a finaliser once
    its test or app had ended) is dropped, not raised on the connection's thread."""
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(sqlitedriver.connect(str(tmp_path / "probe.db")))
    orphan = loop.create_future()
    loop.close()
    errors: list[BaseException | None] = []

    def failing() -> None:
        raise sqlite3.ProgrammingError("Cannot operate on a closed database.")

    with patch.object(threading, "excepthook", lambda args: errors.append(args.exc_value)):
        connection._tx.put_nowait((orphan, failing))
        connection._tx.put_nowait((orphan, lambda: None))
        connection.stop()
        connection._thread.join(5)
    assert not connection._thread.is_alive()
    assert errors == []
