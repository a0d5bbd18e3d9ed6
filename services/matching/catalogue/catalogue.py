"""The queryable catalogue: the current view of the suppliers, and the query entry.

Queries read an immutable ``View`` (main segment, delta segment, the main rows the
delta supersedes) and never take a lock: ``run_query`` ranks each segment
(``ranking.py``) and merges their best. ``lifecycle.CatalogueLifecycle`` follows the
registry's feed and publishes each new view into the ``Catalogue``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from pyroaring import BitMap

from services.matching.catalogue.consortia import (
    EMPTY_INDEX,
    ConsortiumQuery,
    ConsortiumRanking,
    MemberRows,
    NetworkIndex,
)
from services.matching.catalogue.query import Query
from services.matching.catalogue.ranking import Ranked, SegmentRanking
from services.matching.catalogue.records import SupplierRecord
from services.matching.catalogue.segment import Segment
from services.matching.catalogue.text import TextModel


@dataclass(frozen=True)
class ShortlistResult:
    items: list[Ranked]
    eligible_count: int
    development: list[Ranked]
    development_count: int
    weights: dict[str, float]
    catalogue_version: str
    seconds: float
    words: dict[int, str] = field(default_factory=dict)  # the query's terms as the buyer wrote them
    consortia: ConsortiumRanking | None = None  # when the query asks for them


@dataclass(frozen=True)
class View:
    main: Segment
    text: TextModel
    removed: BitMap  # main rows superseded by the delta (changed or deleted)
    delta: Segment | None
    delta_records: dict[str, tuple[int, SupplierRecord | None]]
    seq: int  # the last applied feed sequence number
    main_seq: int
    networks: NetworkIndex = EMPTY_INDEX  # candidate consortia

    @property
    def version(self) -> str:
        return f"{self.text.epoch}.{self.seq}"

    @property
    def parts(self) -> list[tuple[Segment, BitMap]]:
        """The segments a query ranks, each with its rows to leave out."""
        parts = [(self.main, self.removed)]
        if self.delta is not None:
            parts.append((self.delta, BitMap()))
        return parts

    @cached_property
    def members(self) -> MemberRows:
        """The networks' members in this view's segments (resolved once per view)."""
        return MemberRows.resolve(self.networks, self.main, self.removed, self.delta)

    @property
    def size(self) -> int:
        return self.main.n - len(self.removed) + (self.delta.n if self.delta else 0)


def run_query(view: View, query: Query) -> ShortlistResult:
    """The exact shortlist for ``query`` over ``view``."""
    started = time.perf_counter()
    terms = view.text.query_vector(query.description)
    weights = query.active_weights(text_active=len(terms[0]) > 0)
    parts = view.parts
    eligible = development = 0
    items: list[Ranked] = []
    gaps: list[Ranked] = []
    for segment, removed in parts:
        ranking = SegmentRanking(segment, query, weights, terms).rank(removed)
        eligible += ranking.eligible_count
        development += ranking.development_count
        items += ranking.items
        gaps += ranking.development
    items.sort(key=lambda r: (-r.score, r.id))
    gaps.sort(key=lambda r: (-r.score, r.id))
    consortia = None
    if query.include_consortia:
        consortia = ConsortiumQuery(view.networks, view.members, parts, query, weights, terms).rank()
    return ShortlistResult(
        items[: query.limit],
        eligible,
        gaps[: query.development_limit],
        development,
        weights,
        view.version,
        time.perf_counter() - started,
        view.text.query_words(query.description) if len(terms[0]) else {},
        consortia,
    )


def build_view(records: Sequence[SupplierRecord], seq: int, epoch: int, networks: NetworkIndex = EMPTY_INDEX) -> View:
    text = TextModel.fit([r.capabilities for r in records], epoch)
    main = Segment.build(records, text)
    return View(
        main=main, text=text, removed=BitMap(), delta=None, delta_records={}, seq=seq, main_seq=seq, networks=networks
    )


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
        networks=view.networks,
    )


def with_networks(view: View, networks: NetworkIndex, seq: int) -> View:
    """``view`` with its candidate consortia replaced, at feed position ``seq``."""
    return replace(view, networks=networks, seq=max(seq, view.seq))


@dataclass
class Catalogue:
    """The current view and the registry's certification vocabulary, as queries read them.

    ``lifecycle.CatalogueLifecycle`` writes both; ``loaded`` is set once the view has
    caught up with the feed for the first time.
    """

    view: View | None = None
    schemes: set[str] = field(default_factory=set)  # the registry's certification vocabulary
    loaded: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def version(self) -> str | None:
        return self.view.version if self.view else None

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
