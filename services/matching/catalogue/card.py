"""What a portal needs to draw a listed supplier's card without another request.

Built only for the rows a shortlist lists (at most a few hundred), from the segment's
columns: the distance to the buyer's point, the certificates that counted with their
expiry, the query terms the supplier's text holds, and its capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from services.common.geo import haversine_km
from services.matching.catalogue.query import Query
from services.matching.catalogue.segment import NO_END, Segment


@dataclass(frozen=True)
class HeldCertificate:
    scheme: str
    valid_until: date | None  # None: open-ended


@dataclass(frozen=True)
class Card:
    distance_km: float | None  # None when the query names no point or the supplier has no coordinates
    certificates: tuple[HeldCertificate, ...]  # required then preferred schemes held valid on the date
    matched_terms: tuple[int, ...]  # the query's terms the supplier's text holds (``TextModel.query_words``)
    monthly_capacity: float | None
    capacity_unit: str | None


DISTANCE_DECIMALS = 3


def _distances(segment: Segment, query: Query, rows: np.ndarray) -> list[float | None]:
    if query.latitude is None or query.longitude is None:
        return [None] * len(rows)
    distance = haversine_km(segment.latitude[rows], segment.longitude[rows], query.latitude, query.longitude)
    return [None if math.isnan(d) else round(d, DISTANCE_DECIMALS) for d in distance.tolist()]


def _expiries(segment: Segment, scheme: str, rows: np.ndarray, day: int) -> list[HeldCertificate | None]:
    """Per row: the certificate of ``scheme`` it holds on ``day`` that runs longest, if any."""
    intervals = segment.certificates.get(scheme)
    if intervals is None:
        return [None] * len(rows)
    valid = segment.valid_certificates(scheme, day)[0]  # cached: the query's own filters read it
    # A row's intervals are contiguous: the rows column is ascending.
    firsts = np.searchsorted(intervals.rows, rows).tolist()
    lasts = np.searchsorted(intervals.rows, rows + 1).tolist()
    held: list[HeldCertificate | None] = []
    for row, first, last in zip(rows.tolist(), firsts, lasts, strict=True):
        if row not in valid:
            held.append(None)
            continue
        start, end = intervals.start[first:last], intervals.end[first:last]
        until = int(end[(start <= day) & (end >= day)].max())
        held.append(HeldCertificate(scheme, None if until == NO_END else date.fromordinal(until)))
    return held


def cards(segment: Segment, query: Query, rows: list[int], terms: np.ndarray) -> list[Card]:
    """The cards of ``rows`` (in any order) for ``query``; ``terms``: the query's term ids."""
    if not rows:
        return []
    at = np.asarray(rows, dtype=np.int64)
    distances = _distances(segment, query, at)
    day = query.on_date.toordinal()
    schemes = dict.fromkeys(query.required_certifications + query.preferred_certifications)
    held_by_scheme = [_expiries(segment, scheme, at, day) for scheme in schemes]
    term_rows = [(term, segment.postings.terms[term]) for term in terms.tolist() if term < len(segment.postings.terms)]
    capacity = segment.capacity[at].tolist()
    units = segment.capacity_unit[at].tolist()
    result = []
    for i, row in enumerate(rows):
        known_capacity = not math.isnan(capacity[i])
        result.append(
            Card(
                distance_km=distances[i],
                certificates=tuple(held for by_row in held_by_scheme if (held := by_row[i]) is not None),
                matched_terms=tuple(term for term, holders in term_rows if row in holders),
                monthly_capacity=capacity[i] if known_capacity else None,
                capacity_unit=(segment.units[units[i]] or None) if known_capacity else None,  # stored lowercased
            )
        )
    return result
