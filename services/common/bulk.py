"""Inserting many rows at once, fast on PostgreSQL and correct everywhere.

``insert_rows`` writes a list of row dicts into a table inside the session's
transaction. On PostgreSQL, batches of ``COPY_THRESHOLD`` rows or more go through
asyncpg's binary ``COPY`` (``copy_records_to_table``), which is an order of
magnitude faster than multi-row ``INSERT``; smaller batches, and every batch on
SQLite, go through SQLAlchemy's ``executemany``. Both write the same values:
JSON columns are serialised here for ``COPY``, by SQLAlchemy otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Table, any_, bindparam, insert
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import is_postgres
from services.common.jsontext import json_text

COPY_THRESHOLD = 64


def _to_json(value: Any) -> str | None:
    return None if value is None else json_text(value)


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in the current transaction."""
    if not rows:
        return
    if len(rows) < COPY_THRESHOLD or not is_postgres(session):
        await session.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
    if json_columns:
        records = [
            tuple(_to_json(row[name]) if name in json_columns else row[name] for name in columns) for row in rows
        ]
    else:
        records = [tuple(row[name] for name in columns) for row in rows]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(table.name, records=records, columns=columns)


def chunks(values: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``values`` in slices of at most ``size``: IN lists below SQLite's bound-parameter limit,
    and statements of a bounded size on PostgreSQL."""
    return [values[start : start + size] for start in range(0, len(values), size)]


def one_of(session: AsyncSession, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values`` for long lists: one array parameter on PostgreSQL (``= ANY``), IN elsewhere."""
    if is_postgres(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
