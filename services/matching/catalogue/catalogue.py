"""The live catalogue: an immutable main segment, a small delta, and the feed.

Queries read an immutable ``View`` (main segment, delta segment, the main rows the
delta supersedes) and never take a lock. Changes from the registry feed are written
to the store with the cursor, then published as a new view with a rebuilt delta;
when the delta grows past ``delta_limit`` (or after a bulk catch-up) the main
segment is rebuilt from the store in a worker thread, with a freshly fitted text
model: a new ``epoch``, so a new catalogue version.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from pyroaring import BitMap

from services.common.changefeed import ChangePage
from services.matching.catalogue import snapshot
from services.matching.catalogue.bitmaps import as_array
from services.matching.catalogue.query import PROXIMITY_REFERENCE_KM, SCORE_DECIMALS, Query
from services.matching.catalogue.records import SupplierRecord, supplier_from_firm
from services.matching.catalogue.segment import Segment
from services.matching.catalogue.store import CatalogueStore
from services.matching.catalogue.text import TextModel

logger = structlog.get_logger(__name__)


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


@dataclass(frozen=True)
class ShortlistResult:
    items: list[Ranked]
    eligible_count: int
    development: list[Ranked]
    development_count: int
    weights: dict[str, float]
    catalogue_version: str
    seconds: float


@dataclass(frozen=True)
class View:
    main: Segment
    text: TextModel
    removed: BitMap  # main rows superseded by the delta (changed or deleted)
    delta: Segment | None
    delta_records: dict[str, tuple[int, SupplierRecord | None]]
    seq: int  # the last applied feed sequence number
    main_seq: int

    @property
    def version(self) -> str:
        return f"{self.text.epoch}.{self.seq}"

    @property
    def size(self) -> int:
        return self.main.n - len(self.removed) + (self.delta.n if self.delta else 0)


ROUNDING_SLACK = 1e-8  # > 2 x (len(CRITERIA) + 1) x 0.5e-9, plus float error


def _top(scores: np.ndarray, rank: np.ndarray, k: int) -> np.ndarray:
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


def _raw_scores(weights: dict[str, float], values: dict[str, np.ndarray], count: int) -> np.ndarray:
    """The unrounded weighted sum, in the order of ``weights`` (the same everywhere)."""
    raw = np.zeros(count, dtype=np.float64)
    for c in weights:
        raw += weights[c] * values[c]
    return raw


GapOf = Callable[[int], Gap]  # row -> a development candidate's gap
NO_ROWS = np.empty(0, dtype=np.int64)
# A candidate set is ranked by score bounds above this many rows (below it, scoring
# every row costs less than the bounds); measured at 1M suppliers.
BROAD_ROWS = 50_000
SCORE_BATCH = 2048  # rows scored at once while walking a broad set
WHOLE_CROSSING_ROWS = 4096  # a crossing this small is scored whole, not band by band
CELL_CHUNK = 1024  # cells of a broad set's grid put in order at once


def _cells_best_first(dimensions: list[list[tuple[BitMap, float]]]) -> Iterator[tuple[float, tuple[int, ...]]]:
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


def _contenders(
    segment: Segment,
    query: Query,
    weights: dict[str, float],
    terms: tuple[np.ndarray, np.ndarray],
    chosen: BitMap,
    limit: int,
) -> np.ndarray:
    """The rows of ``chosen`` that can be in its top ``limit`` (ascending), scoring few of a broad set.

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
    if len(chosen) <= BROAD_ROWS:
        return as_array(chosen)
    w_performance, w_text = weights.get("performance", 0.0), weights.get("text", 0.0)
    # Each dimension splits ``chosen``: (part, bound of its share). A part may hold rows
    # outside ``chosen`` too: crossings start from ``chosen``.
    dimensions: list[list[tuple[BitMap, float]]] = []
    text_parts: list[tuple[BitMap, float, float]] = []  # (rows, bound of the similarity, scale over the norm)
    if w_text:  # always the first dimension
        text_parts = segment.postings.holding_counts(*terms, chosen)
        dimensions.append([(rows, w_text * bound) for rows, bound, _ in text_parts])
    if "proximity" in weights:
        assert query.latitude is not None and query.longitude is not None
        reference = query.max_distance_km or PROXIMITY_REFERENCE_KM
        rings = segment.proximity_rings(query.latitude, query.longitude, reference, chosen)
        dimensions.append([(ring, weights["proximity"] * near) for ring, near in rings])
    # Whether the first dimension's parts are subsets of ``chosen`` (the counts of terms or
    # schemes held): then its crossings with ``chosen`` are the parts themselves.
    within_chosen = bool(w_text) or ("certifications" in weights and not dimensions)
    if "certifications" in weights:
        share = weights["certifications"] / len(query.preferred_certifications)
        dimensions.append([(rows, share * count) for rows, count in segment.held_counts(query, chosen)])
    w_capacity = weights.get("capacity", 0.0)
    capacity_dimension = len(dimensions) if w_capacity else -1
    if w_capacity:
        dimensions.append([(rows, w_capacity * fit) for rows, fit in segment.capacity_parts(query, chosen)])
    if not dimensions:
        dimensions.append([(chosen, 0.0)])
        within_chosen = True  # no need to cross ``chosen`` with itself
    bands = list(zip(segment.bands, (w_performance * segment.band_ceilings).tolist(), strict=True))
    dimensions.append(bands)  # last: the small first bands make cheap intersections

    scored_rows: list[np.ndarray] = []
    scored: list[np.ndarray] = []
    best = np.empty(0, dtype=np.float64)  # the ``limit`` best scores so far: the k-th is their least
    kth = -math.inf

    def score(rows: np.ndarray) -> None:
        nonlocal best, kth
        if len(rows) == 0:
            return
        rows = np.sort(rows)
        scored_rows.append(rows)
        scored.append(_raw_scores(weights, segment.criterion_values(query, rows, weights, terms), len(rows)))
        best = np.concatenate([best, scored[-1]])
        if len(best) >= limit:
            best = np.partition(best, len(best) - limit)[len(best) - limit :]
            kth = float(best.min())

    def score_pending() -> None:
        # A row is kept if its own performance, capacity fit and text bound from its norm,
        # with the rest of its cell's bound, can reach the k-th.
        rows = np.concatenate(pending_rows)
        sizes = [len(r) for r in pending_rows]
        own = np.repeat(pending_rest, sizes) + w_performance * segment.performance(rows)
        if w_capacity:
            own += w_capacity * segment.capacity_fit(query, rows)
        if w_text:
            text_bound = np.repeat(pending_text, sizes)
            own += w_text * np.minimum(text_bound, segment.postings.row_ceilings(np.repeat(pending_scale, sizes), rows))
        score(rows[own >= kth - ROUNDING_SLACK])
        pending_rows.clear()
        pending_rest.clear()
        pending_text.clear()
        pending_scale.clear()

    crossings: dict[tuple[int, ...], BitMap] = {(): chosen}  # parts of the leading dimensions, crossed once
    taken_whole: set[tuple[int, ...]] = set()  # small crossings whose rows were all taken at once

    def crossing_of(parts: tuple[int, ...]) -> BitMap:
        found = crossings.get(parts)
        if found is None:
            if len(parts) == 1 and within_chosen:
                found = dimensions[0][parts[0]][0]
            else:
                found = crossing_of(parts[:-1])
                if found:  # an empty crossing stays empty: no need to cross further
                    found = found & dimensions[len(parts) - 1][parts[-1]][0]
            crossings[parts] = found
        return found

    pending_rows: list[np.ndarray] = []
    pending_rest: list[float] = []  # per pending cell: its bound but performance, capacity and text
    pending_text: list[float] = []  # per pending cell: its text part's bound of the similarity
    pending_scale: list[float] = []  # and its text part's scale
    pending_count = 0
    for cell_bound, parts in _cells_best_first(dimensions):
        if cell_bound < kth - ROUNDING_SLACK:
            break
        leading, band = parts[:-1], parts[-1]
        if leading in taken_whole:
            continue
        crossing = crossing_of(leading)
        if not crossing:
            continue
        if len(crossing) <= WHOLE_CROSSING_ROWS:
            # Each row is filtered by its own performance below: no need to split by band.
            cell = crossing
            taken_whole.add(leading)
        else:
            cell = segment.bands[band] & crossing
            if not cell:
                continue
        pending_rows.append(as_array(cell))
        rest = cell_bound - bands[band][1]
        if w_capacity:
            rest -= dimensions[capacity_dimension][parts[capacity_dimension]][1]
        if w_text:
            rest -= dimensions[0][parts[0]][1]
            _, similarity_bound, scale = text_parts[parts[0]]
            pending_text.append(similarity_bound)
            pending_scale.append(scale)
        pending_rest.append(rest)
        pending_count += len(cell)
        if pending_count >= SCORE_BATCH:
            score_pending()
            pending_count = 0
    if pending_rows:
        score_pending()
    if not scored_rows:
        return NO_ROWS
    every_row, every_score = np.concatenate(scored_rows), np.concatenate(scored)
    return np.sort(every_row[every_score >= kth - ROUNDING_SLACK])


def _rank_segment(
    segment: Segment,
    removed: BitMap,
    query: Query,
    weights: dict[str, float],
    terms: tuple[np.ndarray, np.ndarray],
) -> tuple[int, list[Ranked], int, list[Ranked]]:
    """Counts and best rows of one segment, eligible and development.

    The candidate sets are bitmaps, counted without listing them; broad ones are
    ranked by bounds (``_contenders``).
    """
    eligible, development, short = segment.candidate_sets(query, removed)
    day = query.on_date.toordinal()

    def gap_of(row: int) -> Gap:
        if row in short:
            return Gap("capacity", required=query.min_monthly_capacity, available=float(segment.capacity[row]))
        held = (s for s in query.required_certifications if row not in segment.valid_certificates(s, day)[0])
        return Gap("certification", scheme=next(held))

    plan: list[tuple[BitMap, int, GapOf | None]] = [
        (eligible, query.limit, None),
        (development, query.development_limit, gap_of),
    ]
    ranked = [
        _best(segment, query, weights, terms, _contenders(segment, query, weights, terms, chosen, limit), limit, gap)
        if chosen and limit
        else []
        for chosen, limit, gap in plan
    ]
    return len(eligible), ranked[0], len(development), ranked[1]


def _best(
    segment: Segment,
    query: Query,
    weights: dict[str, float],
    terms: tuple[np.ndarray, np.ndarray],
    rows: np.ndarray,
    limit: int,
    gap_of: GapOf | None,
) -> list[Ranked]:
    """The best ``limit`` of ``rows`` (ascending), scored and explained."""
    if len(rows) == 0:
        return []
    values = segment.criterion_values(query, rows, weights, terms)
    if len(rows) > 4 * limit:
        # Round only where it can matter: a rounded score is within (criteria + 1) x 0.5e-9
        # of the unrounded sum, so the exact top k lies among rows within twice that of
        # the k-th best unrounded sum.
        raw = _raw_scores(weights, values, len(rows))
        kth = np.partition(raw, len(raw) - limit)[len(raw) - limit]
        near = np.flatnonzero(raw >= kth - ROUNDING_SLACK)
        rows = rows[near]
        values = {c: v[near] for c, v in values.items()}
    contributions = {c: np.round(weights[c] * values[c], SCORE_DECIMALS) for c in weights}
    scores = np.round(np.sum(list(contributions.values()), axis=0), SCORE_DECIMALS)
    best = _top(scores, segment.id_ranks[rows], limit)
    # Columns to Python lists once, not element by element.
    best_rows = rows[best].tolist()
    best_scores = scores[best].tolist()
    best_values = {c: values[c][best].tolist() for c in weights}
    best_contributions = {c: contributions[c][best].tolist() for c in weights}
    return [
        Ranked(
            id=supplier_id,
            name=segment.names[row],
            score=best_scores[i],
            values={c: best_values[c][i] for c in weights},
            contributions={c: best_contributions[c][i] for c in weights},
            gap=gap_of(row) if gap_of else None,
        )
        for i, (row, supplier_id) in enumerate(zip(best_rows, segment.ids_of(rows[best]), strict=True))
    ]


def run_query(view: View, query: Query) -> ShortlistResult:
    """The exact shortlist for ``query`` over ``view``."""
    started = time.perf_counter()
    terms = view.text.query_vector(query.description)
    weights = query.active_weights(text_active=len(terms[0]) > 0)
    parts = [(view.main, view.removed)]
    if view.delta is not None:
        parts.append((view.delta, BitMap()))
    eligible = development = 0
    items: list[Ranked] = []
    gaps: list[Ranked] = []
    for segment, removed in parts:
        count, best, dev_count, dev_best = _rank_segment(segment, removed, query, weights, terms)
        eligible += count
        development += dev_count
        items += best
        gaps += dev_best
    items.sort(key=lambda r: (-r.score, r.id))
    gaps.sort(key=lambda r: (-r.score, r.id))
    return ShortlistResult(
        items[: query.limit],
        eligible,
        gaps[: query.development_limit],
        development,
        weights,
        view.version,
        time.perf_counter() - started,
    )


def build_view(records: Sequence[SupplierRecord], seq: int, epoch: int) -> View:
    text = TextModel.fit([r.capabilities for r in records], epoch)
    main = Segment.build(records, text)
    return View(main=main, text=text, removed=BitMap(), delta=None, delta_records={}, seq=seq, main_seq=seq)


def with_delta(view: View, delta_records: dict[str, tuple[int, SupplierRecord | None]], seq: int) -> View:
    """``view`` with its delta replaced: the main rows of changed ids are removed."""
    removed = BitMap(r for r in (view.main.row_of(i) for i in delta_records) if r is not None)
    live = [record for _, record in delta_records.values() if record is not None]
    delta = Segment.build(live, view.text) if live else None
    return View(
        main=view.main,
        text=view.text,
        removed=removed,
        delta=delta,
        delta_records=delta_records,
        seq=seq,
        main_seq=view.main_seq,
    )


@dataclass
class Catalogue:
    """Owns the current view, applies feed pages and rebuilds the main segment.

    ``loaded`` is set once the view has caught up with the feed for the first time.
    """

    store: CatalogueStore
    snapshots: Path | None = None  # where main segments are saved for fast restarts
    delta_limit: int = 5000
    small_catalogue: int = 1000  # up to this many suppliers every change rebuilds the main segment
    view: View | None = None
    schemes: set[str] = field(default_factory=set)  # the registry's certification vocabulary
    loaded: asyncio.Event = field(default_factory=asyncio.Event)
    _rebuild_needed: bool = False
    _rebuilding: asyncio.Task[None] | None = None
    _publish: asyncio.Lock = field(default_factory=asyncio.Lock)
    _applying: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def version(self) -> str | None:
        return self.view.version if self.view else None

    async def load_cursor(self) -> int:
        """FeedConsumer: where the store stopped; builds the first view from the store."""
        if self.view is None:
            self.schemes = await asyncio.to_thread(self.store.schemes)
            if not await self._restore():
                await self._rebuild(epoch=1)
        return await asyncio.to_thread(self.store.cursor)

    async def _restore(self) -> bool:
        """Open the newest snapshot and put what the store has beyond it in the delta."""
        path = snapshot.latest(self.snapshots) if self.snapshots else None
        if path is None:
            return False
        started = time.perf_counter()
        try:
            main, text, seq = await asyncio.to_thread(snapshot.load, path)
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("snapshot_unreadable", path=str(path), error=repr(exc))
            return False
        delta = {i: (s, r) for i, s, r in await asyncio.to_thread(lambda: list(self.store.changed_after(seq)))}
        base = View(main=main, text=text, removed=BitMap(), delta=None, delta_records={}, seq=seq, main_seq=seq)
        cursor = await asyncio.to_thread(self.store.cursor)
        self.view = await asyncio.to_thread(with_delta, base, delta, max(cursor, seq)) if delta else base
        if len(delta) > self.delta_limit:
            self._rebuild_needed = True
        logger.info(
            "catalogue_restored",
            path=str(path),
            suppliers=main.n,
            delta=len(delta),
            seconds=round(time.perf_counter() - started, 3),
        )
        return True

    async def apply(self, page: ChangePage) -> None:
        """FeedConsumer: store the page with its cursor, then publish the change.

        Pages are applied one at a time, in feed order (a background rebuild may run
        meanwhile): the store's cursor must never pass a page not yet stored.
        """
        async with self._applying:
            await self._apply(page)

    async def _apply(self, page: ChangePage) -> None:
        changes: list[tuple[str, int, SupplierRecord | None]] = []
        schemes: list[str] = []
        for change in page.items:
            if change.entity == "certification_scheme" and change.op != "deleted":
                schemes.append(change.entity_id)
            elif change.entity == "firm":
                record = supplier_from_firm(change.data) if change.op != "deleted" and change.data else None
                changes.append((change.entity_id, change.seq, record))
        await asyncio.to_thread(self.store.apply, changes, page.next_after, schemes)
        self.schemes.update(schemes)
        if page.has_more:
            self._rebuild_needed = True  # catching up: one rebuild once the feed is drained
            return
        if self._rebuild_needed or self.view is None:
            await self._rebuild(epoch=(self.view.text.epoch + 1) if self.view else 1)
            self.loaded.set()
            return
        current = self.view
        delta = dict(current.delta_records)
        for supplier_id, seq, record in changes:
            delta[supplier_id] = (seq, record)
        if current.main.n + len(delta) <= self.small_catalogue:
            # A small catalogue is rebuilt whole (milliseconds), so its text model knows every word.
            await self._rebuild(epoch=current.text.epoch + 1)
            self.loaded.set()
            return
        async with self._publish:
            current = self.view
            delta = dict(current.delta_records)
            for supplier_id, seq, record in changes:
                delta[supplier_id] = (seq, record)
            self.view = await asyncio.to_thread(with_delta, current, delta, page.next_after)
        self.loaded.set()
        if len(delta) > self.delta_limit and self._rebuilding is None:
            self._rebuilding = asyncio.create_task(self._rebuild(epoch=current.text.epoch + 1))

    async def caught_up(self) -> None:
        """Called by the follower when a poll found nothing new."""
        if self._rebuild_needed or self.view is None:
            await self._rebuild(epoch=(self.view.text.epoch + 1) if self.view else 1)
        self.loaded.set()

    async def _rebuild(self, epoch: int) -> None:
        try:
            seq, records = await asyncio.to_thread(self.store.live_records)
            started = time.perf_counter()
            fresh = await asyncio.to_thread(build_view, records, seq, epoch)
            async with self._publish:
                # Changes applied while building stay in the delta of the new main segment.
                current = self.view
                pending = {i: v for i, v in (current.delta_records if current else {}).items() if v[0] > seq}
                current_seq = max(seq, current.seq if current else 0)
                self.view = await asyncio.to_thread(with_delta, fresh, pending, current_seq) if pending else fresh
            self._rebuild_needed = False
            if self.snapshots is not None:
                await asyncio.to_thread(snapshot.save, self.snapshots, fresh.main, fresh.text, epoch=epoch, seq=seq)
            logger.info(
                "catalogue_built",
                suppliers=fresh.main.n,
                epoch=epoch,
                seq=seq,
                seconds=round(time.perf_counter() - started, 3),
                bytes=fresh.main.nbytes,
            )
        finally:
            self._rebuilding = None

    async def wait_rebuilt(self) -> None:
        if self._rebuilding is not None:
            await asyncio.shield(self._rebuilding)

    def query(self, query: Query) -> ShortlistResult:
        view = self.view
        assert view is not None, "catalogue not loaded"
        return run_query(view, query)

    def stats(self) -> dict[str, Any]:
        view = self.view
        if view is None:
            return {"loaded": False}
        nbytes = view.main.nbytes + (view.delta.nbytes if view.delta else 0)
        return {
            "loaded": self.loaded.is_set(),
            "version": view.version,
            "suppliers": view.size,
            "delta": len(view.delta_records),
            "bytes": nbytes,
            "bytes_per_supplier": round(nbytes / view.size, 1) if view.size else None,
        }


def store_path(data_dir: Path) -> Path:
    return data_dir / "matching-catalogue" / "store.sqlite3"


def snapshot_folder(data_dir: Path) -> Path:
    return data_dir / "matching-catalogue" / "snapshots"
