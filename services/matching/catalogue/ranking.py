"""Ranking one segment for one query: the counts, the exact top k, the development candidates.

``SegmentRanking`` counts a segment's candidate sets (bitmaps, never listed) and ranks
each: a small set is scored whole; a broad one is walked best bound first
(``BoundedWalk``), scoring few of its rows. ``catalogue.run_query`` merges the segments'
rankings into one shortlist.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pyroaring import BitMap

from services.matching.catalogue.bitmaps import as_array
from services.matching.catalogue.card import Card, cards
from services.matching.catalogue.query import PROXIMITY_REFERENCE_KM, SCORE_DECIMALS, Query
from services.matching.catalogue.segment import Segment

ROUNDING_SLACK = 1e-8  # > 2 x (len(CRITERIA) + 1) x 0.5e-9, plus float error
NO_ROWS = np.empty(0, dtype=np.int64)
# A candidate set is ranked by score bounds above this many rows (below it, scoring
# every row costs less than the bounds); measured at 1M suppliers.
BROAD_ROWS = 50_000
SCORE_BATCH = 2048  # rows scored at once while walking a broad set
WHOLE_CROSSING_ROWS = 4096  # a crossing this small is scored whole, not band by band
CELL_CHUNK = 1024  # cells of a broad set's grid put in order at once


@dataclass(frozen=True)
class Gap:
    kind: str  # "certification" or "capacity"
    scheme: str | None = None
    required: float | None = None
    available: float | None = None


@dataclass(frozen=True)
class Ranked:
    id: str
    name: str
    score: float
    values: dict[str, float]
    contributions: dict[str, float]
    gap: Gap | None = None
    performance_basis: tuple[int, int] | None = None  # (scorecards, buyers) when observed, None when declared
    card: Card | None = None


Terms = tuple[np.ndarray, np.ndarray]  # the query's terms and their weights (``TextModel.query_vector``)
Part = tuple[BitMap, float]  # rows, and an upper bound of their share of the score


def top(scores: np.ndarray, rank: np.ndarray, k: int) -> np.ndarray:
    """Positions of the best ``k`` by score, ties by id rank, in order."""
    m = len(scores)
    if m > k:
        kth = np.partition(scores, m - k)[m - k]
        above = np.flatnonzero(scores > kth)
        ties = np.flatnonzero(scores == kth)
        need = k - len(above)
        if len(ties) > need:
            ties = ties[np.argpartition(rank[ties], need - 1)[:need]]
        chosen = np.concatenate([above, ties])
    else:
        chosen = np.arange(m)
    return chosen[np.lexsort((rank[chosen], -scores[chosen]))]


def raw_scores(weights: dict[str, float], values: dict[str, np.ndarray], count: int) -> np.ndarray:
    """The unrounded weighted sum, in the order of ``weights`` (the same everywhere)."""
    raw = np.zeros(count, dtype=np.float64)
    for c in weights:
        raw += weights[c] * values[c]
    return raw


def rounded_scores(
    weights: dict[str, float], values: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each criterion's rounded contribution, and the rounded score (the contract's arithmetic)."""
    contributions = {c: np.round(weights[c] * values[c], SCORE_DECIMALS) for c in weights}
    return contributions, np.round(np.sum(list(contributions.values()), axis=0), SCORE_DECIMALS)


def cells_best_first(dimensions: list[list[Part]]) -> Iterator[tuple[float, tuple[int, ...]]]:
    """The cells of the grid of ``dimensions`` (one part of each) with their bound (the
    sum of their parts'), best first. The grid can hold tens of thousands of cells and
    a walk usually stops early, so cells are ordered ``CELL_CHUNK`` at a time.
    """
    bound = np.asarray(0.0)
    for dimension in dimensions:
        bound = np.add.outer(bound, [part for _, part in dimension])
    flat = bound.ravel()
    remaining = np.arange(flat.size)
    while remaining.size:
        if remaining.size > CELL_CHUNK:
            best = np.argpartition(-flat[remaining], CELL_CHUNK)[:CELL_CHUNK]
            rest = np.ones(remaining.size, dtype=bool)
            rest[best] = False
            chunk, remaining = remaining[best], remaining[rest]
        else:
            chunk, remaining = remaining, remaining[:0]
        chunk = chunk[np.argsort(-flat[chunk], kind="stable")]
        indices = (index.tolist() for index in np.unravel_index(chunk, bound.shape))
        yield from zip(flat[chunk].tolist(), zip(*indices, strict=True), strict=True)


@dataclass(frozen=True)
class PendingCell:
    """A visited cell's rows, waiting to be filtered and scored in a batch."""

    rows: np.ndarray
    rest: float  # the cell's bound but its performance, capacity and text parts
    text_bound: float = 0.0  # its text part's bound of the similarity
    text_scale: float = 0.0  # and its text part's scale over a row's norm


class BoundedWalk:
    """The rows of ``chosen`` that can be in its top ``limit``, scoring few of a broad set.

    A score is a weighted sum of values in [0, 1]. Each criterion splits the rows into
    parts with an upper bound of its value: text by how many of the query's terms a row
    holds, proximity by rings of one-degree cells, certifications by how many preferred
    schemes a row holds, capacity by power-of-two buckets of capacity in the query's
    unit, performance by bands of descending performance built with the segment. The
    cells of that grid (one part of each) are visited best bound first; their rows are
    filtered by their own performance, capacity fit and text bound from their norm, and
    scored exactly, until the next cell's bound falls below the k-th best score found:
    no row left unscored can reach the top k. Only visited cells are intersected
    (crossings of leading parts are kept; a crossing of at most ``WHOLE_CROSSING_ROWS``
    is taken whole at its first cell, its rows filtered by their own performance, not
    split by band), and ``ROUNDING_SLACK`` keeps rows whose rounded score could still tie.
    """

    def __init__(
        self, segment: Segment, query: Query, weights: dict[str, float], terms: Terms, chosen: BitMap, limit: int
    ) -> None:
        self.segment, self.query, self.weights, self.terms, self.limit = segment, query, weights, terms, limit
        self.w_performance = weights.get("performance", 0.0)
        self.w_text = weights.get("text", 0.0)
        self.w_capacity = weights.get("capacity", 0.0)
        # Each dimension splits ``chosen`` into parts. A part may hold rows outside
        # ``chosen`` too: crossings start from ``chosen``.
        self.dimensions: list[list[Part]] = []
        self.text_parts: list[tuple[BitMap, float, float]] = []  # (rows, bound of the similarity, scale over the norm)
        if self.w_text:  # always the first dimension
            self.text_parts = segment.postings.holding_counts(*terms, chosen)
            self.dimensions.append([(rows, self.w_text * bound) for rows, bound, _ in self.text_parts])
        if "proximity" in weights:
            assert query.latitude is not None and query.longitude is not None
            reference = query.max_distance_km or PROXIMITY_REFERENCE_KM
            rings = segment.proximity_rings(query.latitude, query.longitude, reference, chosen)
            self.dimensions.append([(ring, weights["proximity"] * near) for ring, near in rings])
        # Whether the first dimension's parts are subsets of ``chosen`` (the counts of terms or
        # schemes held): then its crossings with ``chosen`` are the parts themselves.
        self.within_chosen = bool(self.w_text) or ("certifications" in weights and not self.dimensions)
        if "certifications" in weights:
            share = weights["certifications"] / len(query.preferred_certifications)
            self.dimensions.append([(rows, share * count) for rows, count in segment.held_counts(query, chosen)])
        if "inclusion" in weights:  # two parts: rows attested in a class (value 1), and the others (0)
            holders = segment.inclusion_rows()[0] & chosen
            self.within_chosen = self.within_chosen or not self.dimensions  # both parts are within ``chosen``
            parts = ((holders, weights["inclusion"]), (chosen - holders, 0.0))
            self.dimensions.append([(rows, bound) for rows, bound in parts if rows])
        self.capacity_dimension = len(self.dimensions) if self.w_capacity else -1
        if self.w_capacity:
            fits = segment.capacity_parts(query, chosen)
            self.dimensions.append([(rows, self.w_capacity * fit) for rows, fit in fits])
        if not self.dimensions:
            self.dimensions.append([(chosen, 0.0)])
            self.within_chosen = True  # no need to cross ``chosen`` with itself
        self.bands: list[Part] = list(
            zip(segment.bands, (self.w_performance * segment.band_ceilings).tolist(), strict=True)
        )
        self.dimensions.append(self.bands)  # last: the small first bands make cheap intersections

        self.scored_rows: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []  # the unrounded scores of ``scored_rows``
        self.best = np.empty(0, dtype=np.float64)  # the ``limit`` best scores so far: the k-th is their least
        self.kth = -math.inf
        self.crossings: dict[tuple[int, ...], BitMap] = {(): chosen}  # parts of the leading dimensions, crossed once
        self.taken_whole: set[tuple[int, ...]] = set()  # small crossings whose rows were all taken at once
        self.pending: list[PendingCell] = []
        self.pending_count = 0  # rows in ``pending``

    def run(self) -> np.ndarray:
        """The contenders, ascending."""
        for cell_bound, parts in cells_best_first(self.dimensions):
            if cell_bound < self.kth - ROUNDING_SLACK:
                break
            self._visit(cell_bound, parts)
            if self.pending_count >= SCORE_BATCH:
                self._score_pending()
        if self.pending:
            self._score_pending()
        if not self.scored_rows:
            return NO_ROWS
        every_row, every_score = np.concatenate(self.scored_rows), np.concatenate(self.scores)
        return np.sort(every_row[every_score >= self.kth - ROUNDING_SLACK])

    def _visit(self, cell_bound: float, parts: tuple[int, ...]) -> None:
        """Put the rows of the cell ``parts`` (one part of each dimension) in ``pending``."""
        leading, band = parts[:-1], parts[-1]
        if leading in self.taken_whole:
            return
        crossing = self._crossing(leading)
        if not crossing:
            return
        if len(crossing) <= WHOLE_CROSSING_ROWS:
            # Each row is filtered by its own performance below: no need to split by band.
            cell = crossing
            self.taken_whole.add(leading)
        else:
            cell = self.segment.bands[band] & crossing
            if not cell:
                return
        rest = cell_bound - self.bands[band][1]
        if self.w_capacity:
            rest -= self.dimensions[self.capacity_dimension][parts[self.capacity_dimension]][1]
        text_bound = text_scale = 0.0
        if self.w_text:
            rest -= self.dimensions[0][parts[0]][1]
            _, text_bound, text_scale = self.text_parts[parts[0]]
        self.pending.append(PendingCell(as_array(cell), rest, text_bound, text_scale))
        self.pending_count += len(cell)

    def _crossing(self, parts: tuple[int, ...]) -> BitMap:
        """The rows of ``chosen`` in ``parts`` of the leading dimensions (kept)."""
        found = self.crossings.get(parts)
        if found is None:
            if len(parts) == 1 and self.within_chosen:
                found = self.dimensions[0][parts[0]][0]
            else:
                found = self._crossing(parts[:-1])
                if found:  # an empty crossing stays empty: no need to cross further
                    found = found & self.dimensions[len(parts) - 1][parts[-1]][0]
            self.crossings[parts] = found
        return found

    def _score_pending(self) -> None:
        """Score the pending rows whose own performance, capacity fit and text bound from
        their norm, with the rest of their cell's bound, can reach the k-th."""
        segment, pending = self.segment, self.pending
        rows = np.concatenate([cell.rows for cell in pending])
        sizes = [len(cell.rows) for cell in pending]
        own = np.repeat([cell.rest for cell in pending], sizes) + self.w_performance * segment.performance(rows)
        if self.w_capacity:
            own += self.w_capacity * segment.capacity_fit(self.query, rows)
        if self.w_text:
            text_bound = np.repeat([cell.text_bound for cell in pending], sizes)
            scale = np.repeat([cell.text_scale for cell in pending], sizes)
            own += self.w_text * np.minimum(text_bound, segment.postings.row_ceilings(scale, rows))
        self._score(rows[own >= self.kth - ROUNDING_SLACK])
        self.pending = []
        self.pending_count = 0

    def _score(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        rows = np.sort(rows)
        self.scored_rows.append(rows)
        values = self.segment.criterion_values(self.query, rows, self.weights, self.terms)
        self.scores.append(raw_scores(self.weights, values, len(rows)))
        best = np.concatenate([self.best, self.scores[-1]])
        if len(best) >= self.limit:
            best = np.partition(best, len(best) - self.limit)[len(best) - self.limit :]
            self.kth = float(best.min())
        self.best = best


@dataclass(frozen=True)
class Ranking:
    """A segment's candidates for one query: counted, and the best of each set."""

    eligible_count: int
    items: list[Ranked]
    development_count: int
    development: list[Ranked]


class SegmentRanking:
    """One query over one segment: counts and best rows, eligible and development."""

    def __init__(self, segment: Segment, query: Query, weights: dict[str, float], terms: Terms) -> None:
        self.segment, self.query, self.weights, self.terms = segment, query, weights, terms

    def rank(self, removed: BitMap) -> Ranking:
        """The segment's rows but ``removed``, ranked."""
        eligible, development, short = self.segment.candidate_sets(self.query, removed)
        return Ranking(
            len(eligible),
            self.best_of(eligible, self.query.limit),
            len(development),
            self.best_of(development, self.query.development_limit, short=short),
        )

    def gap(self, row: int, short: BitMap) -> Gap:
        """What the development candidate ``row`` lacks (``short``: the rows short of capacity)."""
        query, segment = self.query, self.segment
        if row in short:
            return Gap("capacity", required=query.min_monthly_capacity, available=float(segment.capacity[row]))
        day = query.on_date.toordinal()
        held = (s for s in query.required_certifications if row not in segment.valid_certificates(s, day)[0])
        return Gap("certification", scheme=next(held))

    def best_of(self, chosen: BitMap, limit: int, short: BitMap | None = None) -> list[Ranked]:
        """The best ``limit`` of ``chosen``, scored and explained; development candidates
        (``short`` given: those of them short of capacity) with their gap."""
        if not chosen or not limit:
            return []
        return self.best(self.contenders(chosen, limit), limit, short)

    def contenders(self, chosen: BitMap, limit: int) -> np.ndarray:
        """The rows of ``chosen`` that can be in its top ``limit`` (ascending): every row
        of a set of at most ``BROAD_ROWS``, else those of a ``BoundedWalk``."""
        if len(chosen) <= BROAD_ROWS:
            return as_array(chosen)
        return BoundedWalk(self.segment, self.query, self.weights, self.terms, chosen, limit).run()

    def near_best(self, rows: np.ndarray, limit: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The rows of ``rows`` (ascending) that can be in their top ``limit``, and their criterion values."""
        values = self.segment.criterion_values(self.query, rows, self.weights, self.terms)
        if len(rows) > 4 * limit:
            # Round only where it can matter: a rounded score is within (criteria + 1) x 0.5e-9
            # of the unrounded sum, so the exact top k lies among rows within twice that of
            # the k-th best unrounded sum.
            raw = raw_scores(self.weights, values, len(rows))
            kth = np.partition(raw, len(raw) - limit)[len(raw) - limit]
            near = np.flatnonzero(raw >= kth - ROUNDING_SLACK)
            rows = rows[near]
            values = {c: v[near] for c, v in values.items()}
        return rows, values

    def leaders(self, removed: BitMap, limit: int) -> list[tuple[float, str]]:
        """The scores and ids of the best ``limit`` eligible rows but ``removed``, best first:
        the items of ``rank``, unexplained (no names, values or contributions built)."""
        eligible, _, _ = self.segment.candidate_sets(self.query, removed)
        if not eligible or not limit:
            return []
        rows, values = self.near_best(self.contenders(eligible, limit), limit)
        _, scores = rounded_scores(self.weights, values)
        best = top(scores, self.segment.id_ranks[rows], limit)
        return list(zip(scores[best].tolist(), self.segment.ids_of(rows[best]), strict=True))

    def best(self, rows: np.ndarray, limit: int, short: BitMap | None = None) -> list[Ranked]:
        """The best ``limit`` of ``rows`` (ascending), scored and explained (``short``: as in ``best_of``)."""
        if len(rows) == 0:
            return []
        segment, weights = self.segment, self.weights
        rows, values = self.near_best(rows, limit)
        contributions, scores = rounded_scores(weights, values)
        best = top(scores, segment.id_ranks[rows], limit)
        # Columns to Python lists once, not element by element.
        best_rows = rows[best].tolist()
        best_scores = scores[best].tolist()
        best_values = {c: values[c][best].tolist() for c in weights}
        best_contributions = {c: contributions[c][best].tolist() for c in weights}
        best_cards = cards(segment, self.query, best_rows, self.terms[0])
        return [
            Ranked(
                id=supplier_id,
                name=segment.names[row],
                score=best_scores[i],
                values={c: best_values[c][i] for c in weights},
                contributions={c: best_contributions[c][i] for c in weights},
                gap=self.gap(row, short) if short is not None else None,
                performance_basis=segment.performance_basis(row),
                card=best_cards[i],
            )
            for i, (row, supplier_id) in enumerate(zip(best_rows, segment.ids_of(rows[best]), strict=True))
        ]
