"""Inserting many rows at once, fast on PostgreSQL and correct everywhere.

``insert_rows`` writes a list of row dicts into a table inside the session's
transaction. On PostgreSQL, batches of ``COPY_THRESHOLD`` rows or more go through
asyncpg's binary ``COPY`` (``copy_records_to_table``), which is an order of
magnitude faster than multi-row ``INSERT``; smaller batches, and every batch on
SQLite, go through SQLAlchemy's ``executemany``. Both write the same values:
JSON columns are serialised here for ``COPY``, by SQLAlchemy otherwise.

``copy_line`` and ``copy_text`` are the other half, for rows encoded away from the
writer (an importer's worker processes): ``copy_line`` renders one row in ``COPY``'s
text format, where the CPU is to spare, and ``copy_text`` sends lines already
rendered, so the writer spends no Python on them row by row.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from operator import itemgetter
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
    values = itemgetter(*columns)
    records = [values(row) for row in rows] if len(columns) > 1 else [(values(row),) for row in rows]
    await _copy(session, table, columns, records)


async def insert_records(
    session: AsyncSession, table: Table, columns: Sequence[str], records: Sequence[tuple[Any, ...]]
) -> None:
    """``insert_rows`` for rows given as tuples in the order of ``columns``: no dict a row
    where a writer has many (the duplicate check's blocking keys)."""
    if not records:
        return
    if len(records) < COPY_THRESHOLD or not is_postgres(session):
        await session.execute(insert(table), [dict(zip(columns, record, strict=True)) for record in records])
        return
    await _copy(session, table, columns, records)


async def _copy(
    session: AsyncSession, table: Table, columns: Sequence[str], records: Sequence[tuple[Any, ...]]
) -> None:
    json_at = {index for index, name in enumerate(columns) if isinstance(table.c[name].type, JSON)}
    if json_at:
        records = [
            tuple(_to_json(value) if index in json_at else value for index, value in enumerate(record))
            for record in records
        ]
    driver = await _asyncpg(session)
    await driver.copy_records_to_table(table.name, records=records, columns=list(columns))


async def _asyncpg(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction, for its ``COPY`` methods."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


# COPY's text format: a backslash, tab, newline or carriage return in a value is escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]").search  # most values need none: translate() is slow


def copy_value(value: Any) -> str:
    """One value in ``COPY``'s text format: ``\\N`` for NULL; JSON values must be JSON text already."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return copy_str(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return repr(value)  # floats round-trip: 'inf' and 'nan' too, which PostgreSQL reads
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"no COPY text for {type(value).__name__}")


def copy_str(text: str) -> str:
    """A text value in ``COPY``'s text format: ``copy_value`` of a ``str``, without its type tests
    (an importer's worker renders a few dozen a row)."""
    return text.translate(_COPY_ESCAPES) if _NEEDS_ESCAPE(text) else text


def copy_line(values: Sequence[Any]) -> bytes:
    """One row (values in the order of the columns ``copy_text`` names) in ``COPY``'s text format."""
    return ("\t".join([copy_value(value) for value in values]) + "\n").encode()


async def copy_text(session: AsyncSession, table: str, columns: Sequence[str], data: bytes) -> None:
    """``COPY table (columns) FROM`` lines made by ``copy_line``, in the current transaction (PostgreSQL)."""
    if not data:
        return

    async def source() -> AsyncIterator[bytes]:
        yield data

    driver = await _asyncpg(session)
    await driver.copy_to_table(table, source=source(), columns=list(columns), format="text")


def pick(data: bytes, ends: Sequence[int], chosen: Sequence[int]) -> bytes:
    """The parts ``chosen`` (ascending indices) of ``data``, whose part ``i`` ends at ``ends[i]``:
    the lines of some of a batch's rows, from one ``bytes`` of them all."""
    if len(chosen) == len(ends):
        return data
    view = memoryview(data)
    return b"".join([view[ends[i - 1] if i else 0 : ends[i]] for i in chosen])


def chunks(values: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``values`` in slices of at most ``size``: IN lists below SQLite's bound-parameter limit,
    and statements of a bounded size on PostgreSQL."""
    return [values[start : start + size] for start in range(0, len(values), size)]


def one_of(session: AsyncSession, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values`` for long lists: one array parameter on PostgreSQL (``= ANY``), IN elsewhere."""
    if is_postgres(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
