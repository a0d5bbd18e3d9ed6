"""Bulk writes: rows inserted as dicts or tuples, or rendered for ``COPY`` elsewhere, read
back as the values they were."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, Text, select, text

from services.common.bulk import COPY_THRESHOLD, copy_line, copy_text, insert_records, insert_rows
from services.common.db import create_engine, create_sessionmaker
from services.common.jsontext import json_text
from services.registry.app import MIGRATIONS
from tests.support import Backend

AWKWARD = [
    "tab\there",
    "line\nbreak and\r\ncarriage return",
    "back\\slash \\N \\t",  # COPY's escapes, as text: must stay text
    "\\N",  # the NULL marker, as a value
    "",
    "Cía. Ltda. — शिवा टेक्सटाइल्स",
]


def test_copy_line_escapes_what_copy_would_read_as_syntax() -> None:
    assert copy_line(["a\tb", None, 3, 2.5, True, date(2026, 1, 2)]) == b"a\\tb\t\\N\t3\t2.5\tt\t2026-01-02\n"
    with pytest.raises(TypeError):
        copy_line([object()])


async def test_copied_lines_read_back_as_written(postgres_backend: Backend) -> None:
    engine = create_engine(await postgres_backend.fresh(MIGRATIONS))
    rows: list[tuple[Any, ...]] = [
        (i, value, None if i % 2 else float(i) / 3, json_text({"name": value, "n": [i, None]}), date(2026, 12, i + 1))
        for i, value in enumerate(AWKWARD)
    ]
    rows.append((len(rows), None, math.inf, None, None))
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(
                text("CREATE TEMPORARY TABLE probe (n integer, t text, f float, j json, d date) ON COMMIT DROP")
            )
            await copy_text(session, "probe", ["n", "t", "f", "j", "d"], b"".join(copy_line(row) for row in rows))
            read = (await session.execute(text("SELECT n, t, f, j, d FROM probe ORDER BY n"))).all()
    finally:
        await engine.dispose()
    assert [(n, t, f, d) for n, t, f, _, d in read] == [(n, t, f, d) for n, t, f, _, d in rows]
    assert [j for *_, j, _ in read] == [  # the engine decodes JSON
        None if j is None else {"name": r[1], "n": [r[0], None]} for *r, j, _ in rows
    ]


PROBE = Table("bulk_probe", MetaData(), Column("n", Integer, primary_key=True), Column("t", Text), Column("j", JSON))


@pytest.mark.parametrize("count", [3, COPY_THRESHOLD + 5], ids=["executemany", "copy"])
async def test_rows_as_dicts_or_tuples_read_back_alike(backend: Backend, count: int) -> None:
    engine = create_engine(await backend.fresh(MIGRATIONS))
    written: list[tuple[int, str, Any]] = [
        (i, AWKWARD[i % len(AWKWARD)], {"v": [AWKWARD[i % len(AWKWARD)], i / 3]} if i % 3 else None)
        for i in range(count)
    ]
    try:
        async with engine.begin() as connection:
            await connection.run_sync(PROBE.create)
        async with create_sessionmaker(engine)() as session, session.begin():
            await insert_rows(session, PROBE, [{"n": n, "t": t, "j": j} for n, t, j in written])
            await insert_records(session, PROBE, ("j", "t", "n"), [(j, t, n + count) for n, t, j in written])
            read = (await session.execute(select(PROBE).order_by(PROBE.c.n))).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in read] == written + [(n + count, t, j) for n, t, j in written]
