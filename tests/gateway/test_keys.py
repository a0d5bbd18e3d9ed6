"""The bootstrap admin key: gateway replicas that start together all succeed and leave one row."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from gateway.keys.service import BOOTSTRAP_KEY_ID, hash_key, install_bootstrap_key
from gateway.tables import ApiKey
from services.common.db import create_engine, create_sessionmaker

KEY = "lk_bootstrap_race_key_0123456789abcdefghijklmnopq"
ROTATED = "lk_bootstrap_race_new_0123456789abcdefghijklmnopq"


async def test_replicas_installing_the_bootstrap_key_at_once_all_succeed(gateway_url: str) -> None:
    # One engine per replica, as separate processes would have; several replicas per round.
    engines = [create_engine(gateway_url, pool_size=2) for _ in range(4)]
    replicas = [create_sessionmaker(engine) for engine in engines]
    try:
        results = await asyncio.gather(
            *(install_bootstrap_key(sessions, KEY) for sessions in replicas), return_exceptions=True
        )
        assert results == [None] * len(replicas), results
        async with replicas[0]() as session:
            assert await session.scalar(select(func.count()).select_from(ApiKey)) == 1
            row = await session.get(ApiKey, BOOTSTRAP_KEY_ID)
        assert row is not None and row.secret_hash == hash_key(KEY) and row.role == "admin"

        # A later start with another key (GATEWAY_BOOTSTRAP_API_KEY changed) takes it over
        # and revives it when revoked, still as the one row.
        async with replicas[0]() as session, session.begin():
            await session.execute(
                update(ApiKey).where(ApiKey.id == BOOTSTRAP_KEY_ID).values(revoked_at=datetime.now(UTC))  # type: ignore[arg-type]
            )
        results = await asyncio.gather(
            *(install_bootstrap_key(sessions, ROTATED) for sessions in replicas), return_exceptions=True
        )
        assert results == [None] * len(replicas), results
        async with replicas[0]() as session:
            rows = (await session.scalars(select(ApiKey))).all()
        assert [(r.id, r.secret_hash, r.revoked_at) for r in rows] == [(BOOTSTRAP_KEY_ID, hash_key(ROTATED), None)]
    finally:
        for engine in engines:
            await engine.dispose()
