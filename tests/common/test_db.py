"""The database layer: the one time column type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import insert, select

from services.common.db import UTCDateTime, create_engine, create_sessionmaker
from services.registry.tables import metadata

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
