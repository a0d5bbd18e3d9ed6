"""Alerted standards as columns: one changed supplier checked and scored against many at once.

Reverse matching asks, for one supplier, what the engine would answer for each of the
standards the index leaves (``reverse.StandardsIndex``). Asking the engine standards by
standards costs a few numpy calls on a one-row segment each (tenths of a millisecond);
``StandardsSheet`` keeps, per standards slot, what its range constraints and soft criteria
read (the point and its trigonometry, the distance, the capacity floor, target and unit,
the preferred schemes, the query vector and the normalised weights under the current text
model), and ``StandardsSheet.score`` evaluates one ``SupplierVector`` against a whole
array of slots in one numpy pass per criterion.

The arithmetic is the engine's, operation for operation (``Segment.criterion_values``,
``ranking.rounded_scores``): the supplier's TF-IDF weights as ``Postings`` computes them,
each text similarity summed term by term in the query's order, distances through
``geo.haversine_from`` from each point's ``geo.origin``, capacity fit and certification
shares by the same divisions. A score is the rounded sum of rounded contributions, so
it does not depend on the order of that sum; the criterion values are bit for bit the
engine's. The maximum distance is decided here only when the supplier is more than
``CLOSE_CALL_KM`` inside or outside it; closer calls are left to the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from services.common.geo import haversine_from, origin
from services.matching.catalogue.query import CRITERIA, PROXIMITY_REFERENCE_KM, SCORE_DECIMALS, Query
from services.matching.catalogue.records import SupplierRecord
from services.matching.catalogue.segment import performance_of, to_share
from services.matching.catalogue.text import TextModel

CLOSE_CALL_KM = 1.0  # nearer a maximum distance than this, the engine measures (its cells, its rim)
TEXT, CERTIFICATIONS, PROXIMITY, CAPACITY, PERFORMANCE, INCLUSION = range(len(CRITERIA))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def microseconds(moment: datetime) -> int:
    """``moment`` as whole microseconds since 1970 (exact, unlike a float timestamp)."""
    return (moment - EPOCH) // MICROSECOND


def unit_name(unit: str | None) -> str:
    """A capacity unit as the engine compares it."""
    return (unit or "").strip().lower()


class Ragged:
    """A variable-length run of values per slot, in flat arrays (no Python object each)."""

    def __init__(self, *dtypes: type[np.generic]) -> None:
        self.start = np.zeros(0, dtype=np.int64)
        self.length = np.zeros(0, dtype=np.int64)
        self.columns = [np.empty(64, dtype=dtype) for dtype in dtypes]
        self.used = 0

    def set(self, slot: int, *values: np.ndarray) -> None:
        if slot >= len(self.start):
            size = max(64, 2 * len(self.start), slot + 1)
            self.start = np.concatenate([self.start, np.zeros(size - len(self.start), dtype=np.int64)])
            self.length = np.concatenate([self.length, np.zeros(size - len(self.length), dtype=np.int64)])
        count = len(values[0])
        if self.used + count > len(self.columns[0]):
            live = int(self.length.sum()) - int(self.length[slot])
            if live + count <= len(self.columns[0]) // 2:
                self._compact(slot)
            else:
                size = max(2 * len(self.columns[0]), self.used + count)
                self.columns = [np.concatenate([c, np.empty(size - len(c), dtype=c.dtype)]) for c in self.columns]
        for column, value in zip(self.columns, values, strict=True):
            column[self.used : self.used + count] = value
        self.start[slot], self.length[slot] = self.used, count
        self.used += count

    def clear(self, slot: int) -> None:
        if slot < len(self.length):
            self.length[slot] = 0

    def _compact(self, dropped: int) -> None:
        """Move every slot's run but ``dropped``'s to the front (runs of replaced values are garbage)."""
        self.length[dropped] = 0
        slots = np.flatnonzero(self.length)
        owners, positions = self.gather(slots)
        self.columns = [
            np.concatenate([c[positions], np.empty(len(c) - len(positions), c.dtype)]) for c in self.columns
        ]
        self.start[slots] = np.concatenate([[0], np.cumsum(self.length[slots])[:-1]]) if len(slots) else slots
        self.used = len(positions)
        del owners

    def gather(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the runs of ``slots``, in order: each value's owner (its index in ``slots``) and position."""
        lengths = self.length[slots] if len(self.length) else np.zeros(len(slots), dtype=np.int64)
        total = int(lengths.sum())
        owners = np.repeat(np.arange(len(slots)), lengths)
        firsts = np.cumsum(lengths) - lengths
        positions = np.repeat(self.start[slots] - firsts, lengths) + np.arange(total) if total else owners
        return owners, positions


@dataclass(frozen=True)
class SupplierVector:
    """What a standards' criteria and range constraints read of one supplier, on one day."""

    id: str
    terms: np.ndarray  # its TF-IDF terms, ascending
    term_weights: np.ndarray  # float64 of their float32 weights
    latitude: float  # its float32 coordinates, NaN when unknown
    longitude: float
    capacity: float  # NaN when unknown
    unit: str
    performance: float
    included: float  # the inclusion criterion's value: 1.0 when attested in any class
    valid_schemes: frozenset[str]  # schemes with a certificate valid on the day
    lapsed_schemes: frozenset[str]  # schemes it holds no certificate of valid on the day

    @classmethod
    def of(cls, record: SupplierRecord, text: TextModel, on_date: date) -> SupplierVector:
        day = on_date.toordinal()
        valid = frozenset(
            c.scheme
            for c in record.certificates
            if (c.valid_from is None or c.valid_from.toordinal() <= day)
            and (c.valid_until is None or day <= c.valid_until.toordinal())
        )
        terms, weights = text.document(record.capabilities)
        located = record.latitude is not None and record.longitude is not None
        performance = performance_of(to_share([record.quality_score]), to_share([record.on_time_delivery_rate]))
        return cls(
            id=record.id,
            terms=terms,
            term_weights=weights.astype(np.float64),
            latitude=float(np.float32(record.latitude)) if located and record.latitude is not None else np.nan,
            longitude=float(np.float32(record.longitude)) if located and record.longitude is not None else np.nan,
            capacity=float(record.monthly_capacity) if record.monthly_capacity is not None else np.nan,
            unit=unit_name(record.capacity_unit),
            performance=float(performance[0]),
            included=1.0 if record.inclusion else 0.0,
            valid_schemes=valid,
            lapsed_schemes=frozenset(c.scheme for c in record.certificates) - valid,
        )


@dataclass(frozen=True)
class Scores:
    """A supplier against an array of slots: per slot, whether it is eligible (``unsure``:
    a close call on the maximum distance, for the engine), and its explained score."""

    slots: np.ndarray
    eligible: np.ndarray  # bool; False where unsure
    unsure: np.ndarray  # bool
    values: np.ndarray  # slots x CRITERIA, 0 where a criterion is not active
    contributions: np.ndarray  # slots x CRITERIA, rounded
    scores: np.ndarray  # rounded

    def subset(self, keep: np.ndarray) -> Scores:
        return Scores(
            self.slots[keep],
            self.eligible[keep],
            self.unsure[keep],
            self.values[keep],
            self.contributions[keep],
            self.scores[keep],
        )


class StandardsSheet:
    """Per slot of the standards index, the columns ``score`` reads (see the module).

    What depends on the text model (the query vector, whether text is active, hence the
    normalised weights) is computed for a slot the first time it is scored under a model
    and kept until the next model; the rest when its standards are put.
    """

    def __init__(self) -> None:
        self.size = 0
        self._columns: dict[str, np.ndarray] = {}
        self.units: dict[str, int] = {}
        self.schemes: dict[str, int] = {}
        self.preferred = Ragged(np.int32)  # scheme ids, one per preferred entry
        self.text = Ragged(np.int32, np.float64)  # query terms and weights, under ``epoch``
        self.epoch: int | None = None
        self.weights: list[dict[str, float] | None] = []  # under ``epoch``
        self._vectors: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}  # description -> query vector

    def _column(self, name: str, fill: float | int, dtype: type[np.generic] = np.float64) -> np.ndarray:
        column = self._columns.get(name)
        if column is None or len(column) < self.size:
            grown = np.full(self.size, fill, dtype=dtype)
            if column is not None:
                grown[: len(column)] = column
            column = self._columns[name] = grown
        return column

    def _grow(self, slot: int) -> None:
        if slot >= self.size:
            self.size = max(64, 2 * self.size, slot + 1)
            self.weights += [None] * (self.size - len(self.weights))
            for name in list(self._columns):
                fill, dtype = COLUMNS[name]
                self._column(name, fill, dtype)

    def col(self, name: str) -> np.ndarray:
        fill, dtype = COLUMNS[name]
        return self._column(name, fill, dtype)

    def put(self, slot: int, query: Query, enabled_at: datetime, min_score: float | None, top_n: int | None) -> None:
        self._grow(slot)
        point = query.latitude is not None and query.longitude is not None
        phi = lmb = cos = np.nan
        if query.latitude is not None and query.longitude is not None:
            phi, lmb, cos = (float(x) for x in origin(query.latitude, query.longitude))
        distance = query.max_distance_km if point and query.max_distance_km is not None else np.nan
        target = query.capacity_target
        unit = unit_name(query.capacity_unit)
        row = {
            "enabled": microseconds(enabled_at),
            "min_score": np.nan if min_score is None else min_score,
            "top_n": top_n or 0,
            "phi": phi,
            "lmb": lmb,
            "cos": cos,
            "distance": distance,
            "reference": (query.max_distance_km or PROXIMITY_REFERENCE_KM) if point else np.nan,
            "min_capacity": np.nan if query.min_monthly_capacity is None else query.min_monthly_capacity,
            "target": np.nan if target is None else target,
            "unit": self.units.setdefault(unit, len(self.units)),
            "epoch": -1,
        }
        for name, value in row.items():
            self.col(name)[slot] = value
        ids = [self.schemes.setdefault(s, len(self.schemes)) for s in query.preferred_certifications]
        self.preferred.set(slot, np.array(ids, dtype=np.int32))
        self.text.clear(slot)
        self.weights[slot] = None

    def ready(self, slots: np.ndarray, query_of: Callable[[int], Query], text: TextModel) -> None:
        """Compute what ``slots`` (whose queries ``query_of`` gives) read of ``text`` where not yet done."""
        if self.epoch != text.epoch:
            self.epoch = text.epoch
            self.text = Ragged(np.int32, np.float64)
            self._vectors.clear()
            self.col("epoch")[:] = -1
        epochs = self.col("epoch")
        stale = np.flatnonzero(epochs[slots] != text.epoch)
        for at in stale.tolist():
            slot = int(slots[at])
            query = query_of(slot)
            vector = self._vectors.get(query.description)
            if vector is None:
                if len(self._vectors) > 4 * self.size + 1024:
                    self._vectors.clear()
                vector = self._vectors[query.description] = text.query_vector(query.description)
            self.text.set(slot, vector[0].astype(np.int32), vector[1])
            active = query.active_weights(text_active=len(vector[0]) > 0)
            self.weights[slot] = active
            for criterion in CRITERIA:
                self.col("w_" + criterion)[slot] = active.get(criterion, 0.0)
            epochs[slot] = text.epoch

    def score(self, supplier: SupplierVector, slots: np.ndarray) -> Scores:
        """``supplier`` against ``slots`` (ready under the supplier's text model): eligibility
        by the range constraints (the categorical ones and certificates are the index's), and
        the explained score."""
        m = len(slots)
        col = self.col
        eligible = np.ones(m, dtype=bool)
        unsure = np.zeros(m, dtype=bool)
        values = np.zeros((m, len(CRITERIA)), dtype=np.float64)
        weights = np.stack([col("w_" + c)[slots] for c in CRITERIA], axis=1)

        # Distances from each standards' point (one haversine pass), for the maximum distance and proximity.
        pointed = np.flatnonzero(~np.isnan(col("phi")[slots]))
        if len(pointed):
            at = slots[pointed]
            count = len(at)
            far = haversine_from(
                np.full(count, supplier.latitude),
                np.full(count, supplier.longitude),
                col("phi")[at],
                col("lmb")[at],
                col("cos")[at],
            )
            limit = col("distance")[at]
            bounded = ~np.isnan(limit)
            outside = bounded & ~(far <= limit + CLOSE_CALL_KM)  # NaN (no coordinates) is outside
            close = bounded & ~outside & ~(far <= limit - CLOSE_CALL_KM)
            eligible[pointed[outside | close]] = False
            unsure[pointed[close]] = True
            proximity = np.clip(1.0 - far / col("reference")[at], 0.0, 1.0)
            proximity[np.isnan(proximity)] = 0.0
            values[pointed, PROXIMITY] = proximity

        # The minimum capacity, in the same unit; and the capacity fit.
        unit = self.units.get(supplier.unit, -1)
        same_unit = col("unit")[slots] == unit
        floor = col("min_capacity")[slots]
        floored = ~np.isnan(floor)
        eligible &= ~floored | (same_unit & (supplier.capacity >= floor))
        fitted = np.flatnonzero(weights[:, CAPACITY] > 0)
        if len(fitted):
            fit = np.minimum(1.0, supplier.capacity / col("target")[slots[fitted]])
            known = same_unit[fitted] & (not np.isnan(supplier.capacity))
            values[fitted, CAPACITY] = np.where(known, fit, 0.0)

        # The share of preferred schemes held with a certificate valid on the day.
        preferring = np.flatnonzero(weights[:, CERTIFICATIONS] > 0)
        if len(preferring):
            owners, positions = self.preferred.gather(slots[preferring])
            valid = np.zeros(len(self.schemes), dtype=np.float64)
            for scheme in supplier.valid_schemes:
                if scheme in self.schemes:
                    valid[self.schemes[scheme]] = 1.0
            held = np.bincount(owners, weights=valid[self.preferred.columns[0][positions]], minlength=len(preferring))
            values[preferring, CERTIFICATIONS] = held / self.preferred.length[slots[preferring]]

        # Text: the similarity summed term by term in each query's order, as ``Postings.scores`` does.
        described = np.flatnonzero(weights[:, TEXT] > 0)
        if len(described) and len(supplier.terms):
            owners, positions = self.text.gather(slots[described])
            terms, query_weights = self.text.columns[0][positions], self.text.columns[1][positions]
            found = np.minimum(np.searchsorted(supplier.terms, terms), len(supplier.terms) - 1)
            held_term = supplier.terms[found] == terms
            products = np.where(held_term, supplier.term_weights[found] * query_weights, 0.0)
            lengths = self.text.length[slots[described]]
            firsts = np.cumsum(lengths) - lengths
            total = np.zeros(len(described), dtype=np.float64)
            for position in range(int(lengths.max(initial=0))):
                longer = np.flatnonzero(lengths > position)
                total[longer] += products[firsts[longer] + position]
            values[described, TEXT] = np.clip(total, 0.0, 1.0)

        values[:, PERFORMANCE] = supplier.performance
        values[:, INCLUSION] = supplier.included
        values[weights == 0] = 0.0
        contributions = np.round(weights * values, SCORE_DECIMALS)
        scores = np.round(contributions.sum(axis=1), SCORE_DECIMALS)
        return Scores(slots, eligible, unsure, values, contributions, scores)


COLUMNS: dict[str, tuple[float | int, type[np.generic]]] = {
    "enabled": (0, np.int64),
    "min_score": (np.nan, np.float64),
    "top_n": (0, np.int64),
    "phi": (np.nan, np.float64),
    "lmb": (np.nan, np.float64),
    "cos": (np.nan, np.float64),
    "distance": (np.nan, np.float64),
    "reference": (np.nan, np.float64),
    "min_capacity": (np.nan, np.float64),
    "target": (np.nan, np.float64),
    "unit": (-1, np.int64),
    "epoch": (-1, np.int64),
    **{"w_" + criterion: (0.0, np.float64) for criterion in CRITERIA},
}
