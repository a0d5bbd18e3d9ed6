"""The firm outcomes computed in SQL give the answers of the Python computation they replaced.

Random firm results (years and quarters, gaps, currencies, zero and equal figures, missing
figures) are written to a migrated reporting database, and ``firm_outcome`` is compared with
``outcome_reference`` for every measure, several period ends, two selections of firms and both
ways of finding the pairs (window functions, per-firm look-ups).
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
from sqlalchemy import insert, select

from services.common.db import create_engine, create_sessionmaker
from services.reporting.app import MIGRATIONS
from services.reporting.indicators.service import FIRM_RESULTS, Period, firm_outcome
from tests.reporting.outcome_reference import reference_outcome
from tests.support import Backend

QUARTER_ENDS = {1: (3, 31), 2: (6, 30), 3: (9, 30), 4: (12, 31)}


def period_row(period: str) -> dict[str, Any]:
    """The period columns reporting keeps for a firm result (as the read model derives them)."""
    year = int(period[:4])
    if "-Q" not in period:
        return {"period": period, "period_start": date(year, 1, 1), "period_end": date(year, 12, 31), "months": 12}
    quarter = int(period[-1])
    month, day = QUARTER_ENDS[quarter]
    start = date(year, month - 2, 1)
    return {"period": period, "period_start": start, "period_end": date(year, month, day), "months": 3}


def random_results(rng: random.Random, firms: int) -> list[dict[str, Any]]:
    periods = [str(y) for y in range(2019, 2027)] + [f"{y}-Q{q}" for y in range(2022, 2027) for q in range(1, 5)]
    rows: list[dict[str, Any]] = []
    for f in range(firms):
        for period in rng.sample(periods, rng.randint(0, 7)):
            currency = rng.choice(["USD", "USD", "USD", "EUR"])

            def money() -> float | None:
                return rng.choice([None, 0.0, 100.0, 150.0, rng.uniform(0, 1000), round(rng.uniform(0, 1e6), 2)])

            sales, exports = money(), money()
            rows.append(
                {
                    "id": f"frr_{len(rows)}",
                    "agency_id": "agy_1",
                    "firm_id": f"frm_{f:04d}",
                    "currency": currency if sales is not None or exports is not None else None,
                    "sales": sales,
                    "exports": exports,
                    "employees": rng.choice([None, 0, 10, 12, rng.randint(0, 500)]),
                }
                | period_row(period)
            )
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_sql_outcomes_equal_the_python_computation(backend: Backend, seed: int) -> None:
    rng = random.Random(seed)
    engine = create_engine(await backend.fresh(MIGRATIONS))
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session, session.begin():
            await session.execute(insert(FIRM_RESULTS), random_results(rng, 300))
        every = select(FIRM_RESULTS.c.firm_id)
        some = select(FIRM_RESULTS.c.firm_id).where(FIRM_RESULTS.c.firm_id < "frm_0150")
        compared = 0.0
        async with sessionmaker() as session:
            for end in (date(2022, 12, 31), date(2024, 6, 30), date(2025, 12, 31), date(2027, 1, 1)):
                for firms in (every, some):
                    for measure, money in (("employees", False), ("sales", True), ("exports", True)):
                        period = Period(None, end)
                        expected = await reference_outcome(session, firms, period, measure, money=money)
                        for windows in (True, False):  # each database uses one; both must be right on both
                            got = await firm_outcome(session, firms, period, measure, money=money, windows=windows)
                            assert got == expected, (end, measure, windows)
                        compared += expected.moved["reporting"] or 0
        assert compared > 1000, "the random results make firms report"
    finally:
        await engine.dispose()
