"""The firm outcomes as first computed, in Python: the reference the SQL of ``firm_outcome`` is checked
against (tests/reporting/test_outcome_sql.py) and timed against (bench/outcomes.py).

Every firm result recording the measure is read into Python, in (firm, period end, longer first)
order, and each firm's baseline and current figure are picked in a loop, as
``FIRM_OUTCOME_RECORDS`` says.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.indicators.definitions import OUTCOME_FIRMS
from services.reporting.indicators.service import FIRM_RESULTS, Outcome, Period


def reported_pairs(rows: Sequence[Any], *, money: bool) -> dict[str, tuple[float, float]]:
    """Per firm, (baseline, current) from rows of (firm_id, period_start, period_end, months, currency,
    figure) in (firm, period end, longer first) order."""
    reported: dict[str, tuple[float, float]] = {}
    for firm_id, grouped in itertools.groupby(rows, key=lambda row: row[0]):
        records = list(grouped)
        _, _, baseline_end, months, currency, baseline = records[0]
        current = None
        for _, start, _, length, unit, figure in records[1:]:
            if length == months and start > baseline_end:
                current = (unit, figure)  # the latest one wins: rows come by period end
        if current is None or (money and current[0] != currency):
            continue
        reported[firm_id] = (float(baseline), float(current[1]))
    return reported


async def reference_outcome(
    session: AsyncSession, firms: Select[Any], period: Period, measure: str, *, money: bool
) -> Outcome:
    r = FIRM_RESULTS.c
    statement = (
        select(r.firm_id, r.period_start, r.period_end, r.months, r.currency, r[measure])
        .where(r[measure].is_not(None), r.period_end <= period.end, r.firm_id.in_(firms))
        .order_by(r.firm_id, r.period_end, r.months.desc())
    )
    pairs = reported_pairs((await session.execute(statement)).all(), money=money)
    changes = [current - baseline for baseline, current in pairs.values()]
    ratios = [current / baseline - 1 for baseline, current in pairs.values() if baseline > 0]
    moved = (len(changes), sum(c > 0 for c in changes), sum(c == 0 for c in changes), sum(c < 0 for c in changes))
    median = round(statistics.median(ratios), 4) if money and ratios else None
    change = None if money else int(sum(changes))
    return Outcome(change, median, dict(zip(OUTCOME_FIRMS, moved, strict=True)))
