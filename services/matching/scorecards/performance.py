"""A supplier's observed performance: the recency-weighted mean of its counting scorecards.

Each scorecard gives a quality share (accepted / delivered, or the period's figure)
and an on-time share (1 or 0 for a delivery, or the period's figure), observed on a
date (the delivery date, or the period's end). A scorecard observed ``d`` days
before the supplier's latest one weighs ``2 ** (-d / HALF_LIFE_DAYS)``; the figures
are the weighted means, rounded to four decimals (the precision the catalogue keeps).

Because every weight is relative to the latest observation, the figures change only
when a scorecard is recorded, appealed or decided, never merely as time passes, so
a shortlist stays reproducible from the catalogue version it names.

Matching ranks by these figures in place of the supplier's self-declared ones once
there are at least ``MIN_SCORECARDS`` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

HALF_LIFE_DAYS = 180
MIN_SCORECARDS = 3


@dataclass(frozen=True)
class Observation:
    observed_on: date
    quality: float
    on_time: float
    buyer: str  # the owner of the scorecard: performance "from 2 buyers"


def observed_performance(observations: Sequence[Observation]) -> dict[str, object] | None:
    """The figures the registry records for the supplier, or None without observations."""
    if not observations:
        return None
    latest = max(o.observed_on for o in observations)
    weights = [2.0 ** (-(latest - o.observed_on).days / HALF_LIFE_DAYS) for o in observations]
    total = sum(weights)
    return {
        "quality_score": round(sum(w * o.quality for w, o in zip(weights, observations, strict=True)) / total, 4),
        "on_time_delivery_rate": round(
            sum(w * o.on_time for w, o in zip(weights, observations, strict=True)) / total, 4
        ),
        "scorecards": len(observations),
        "buyers": len({o.buyer for o in observations}),
        "latest_on": latest.isoformat(),
    }
