"""Consortia: active horizontal networks whose members, together, meet a buyer's standards.

A network is a candidate consortium while it is horizontal and active (the registry's
``NetworkRecord``). For one query (the contract; see docs/matching.md, "Consortia"):

* a member **counts** when it passes every per-firm constraint but the minimum capacity
  (sector, products, required certificates valid on the date, place, distance, size
  class, cluster, the inclusion classes required, exclusions); a network listed in the exclusions is left out whole;
* a consortium is **eligible** when at least ``MIN_MEMBERS`` members count and their
  monthly capacities in the query's unit add up to the minimum (if one is asked);
* its **score** uses the single-firm criteria, aggregated: ``text``, ``certifications``,
  ``performance`` and ``inclusion`` are the means of the counted members' values weighted by their
  **shares** (each member's capacity in the query's unit over the consortium's, when the
  query names a unit and that total is above 0; equal shares otherwise); ``proximity``
  is the farthest counted member's; ``capacity`` is ``min(1, total / target)``. Weights,
  rounding and ties (by network id) are as for single firms, and a member's
  **contribution** is its share of the mean criteria's part of the score;
* a **development candidate** is a consortium that is not eligible but would be with one
  upgrade: one member that fails only one required certificate (counted, it makes the
  consortium eligible; the one with the most capacity, then the lowest id, is named),
  or counted members whose capacity falls short of the minimum by at most
  ``DEVELOPMENT_CAPACITY_MARGIN``. It is scored with the named member counted.

Membership is kept as flat arrays (``NetworkIndex``), resolved to catalogue rows once
per view (``MemberRows``, with the memberships grouped by row). A query reads the
smaller of the passing and the failing members, counts them per network from
per-network figures kept with the main segment and derived per view for the networks
its delta changes (``NetworkFigures``), sums exactly (in member order, the order the
reference adds them in) only the capacities near a threshold it compares them with,
names each development candidate's member one certificate short (from those members'
memberships, or from each network's members in order of capacity, a figure too),
bounds networks from the figures, and scores only those whose bound can reach the top
(``ConsortiumQuery``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
from pyroaring import BitMap

from services.common.feeds import NetworkRecord, read_record
from services.common.geo import haversine_km
from services.matching.catalogue.bitmaps import as_array, bitmap_of
from services.matching.catalogue.query import (
    DEVELOPMENT_CAPACITY_MARGIN,
    PROXIMITY_REFERENCE_KM,
    SCORE_DECIMALS,
    Query,
)
from services.matching.catalogue.ranking import ROUNDING_SLACK, Gap, Terms, top
from services.matching.catalogue.segment import (
    ROUGH_DISTANCE_LIMIT_KM,
    ROUGH_MARGIN_KM,
    ROUGH_MARGIN_SHARE,
    Segment,
)
from services.matching.catalogue.segment import members as among
from services.matching.catalogue.text import NUMERATOR_MARGIN

# The default of ``MATCHING_CONSORTIUM_FIGURES_BYTES``: the per-network figures kept (the main
# segment's, and a view's whose delta changes members; a figure per member is ~7 MB at 1M).
FIGURES_BYTES = 1024 * 2**20
MIN_MEMBERS = 2  # a consortium is firms acting jointly: one firm alone is a single-firm item
# Share-weighted means of the members' values.
MEAN_CRITERIA = ("text", "certifications", "performance", "inclusion")
BOUNDED_CRITERIA = {"text", "proximity"}  # bounded before scoring; the others are exact at once
QUALIFYING, ONE_CERTIFICATE_SHORT = 2, 1


@dataclass(frozen=True, slots=True)
class NetworkEntry:
    """A candidate consortium: an active horizontal network and its member firms (sorted)."""

    id: str
    name: str
    agency_id: str | None
    member_ids: tuple[str, ...]


def network_from_record(data: dict[str, Any]) -> NetworkEntry | None:
    """The candidate consortium of a registry network, or None when it cannot be one
    (vertical, not active, or without members). ``FeedContractError`` on a bad record."""
    network = read_record(NetworkRecord, data)
    if network.kind != "horizontal" or network.status != "active" or not network.members:
        return None
    members = tuple(sorted({m.firm_id for m in network.members}, key=str.encode))
    return NetworkEntry(network.id, network.name, network.agency_id, members)


@dataclass(frozen=True)
class RowMembers:
    """A segment's rows that are members of networks, and their memberships grouped by row."""

    rows: BitMap
    slots: np.ndarray  # per row of the segment: its place among the member rows (-1: none)
    starts: np.ndarray  # per member row, where its memberships start (one more at the end)
    memberships: np.ndarray  # membership indices, grouped by row
    networks: np.ndarray  # the network of each of ``memberships`` (a query counts them unread)

    @classmethod
    def build(cls, memberships: np.ndarray, rows: np.ndarray, size: int, network_of: np.ndarray) -> RowMembers:
        """``network_of``: the network of each membership, as ``memberships`` number them."""
        order = np.argsort(rows, kind="stable")
        unique, starts = np.unique(rows[order], return_index=True)
        slots = np.full(size, -1, dtype=np.int32)
        slots[unique] = np.arange(len(unique), dtype=np.int32)
        grouped = memberships[order]
        return cls(
            bitmap_of(unique), slots, np.append(starts, len(order)).astype(np.int64), grouped, network_of[grouped]
        )

    def positions(self, hit: BitMap) -> np.ndarray:
        """Where the memberships of the rows ``hit`` (member rows) are in ``memberships``,
        ascending: the work follows the rows hit (no pass over every membership)."""
        if not hit:
            return NO_MEMBERS
        at = self.slots[as_array(hit)]
        return ranges(self.starts[at], self.starts[at + 1] - self.starts[at])

    def memberships_unordered(self, hit: BitMap) -> np.ndarray:
        """The memberships of the rows ``hit`` (member rows), grouped by row (what earlier
        revisions' queries read: ``bench/consortia.py --baseline`` runs them on these)."""
        grouped: np.ndarray = self.memberships[self.positions(hit)]
        return grouped


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The indices ``starts[i] .. starts[i] + counts[i] - 1`` of each range, laid end to end."""
    laid: np.ndarray = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    return laid


NO_MEMBERS = np.empty(0, dtype=np.int64)


class NetworkIndex:
    """Candidate consortia by id order, their members as one flat array, network by network.

    ``figures_bytes`` caps the per-network figures kept for the views over it
    (``NetworkFigures``; the matching setting ``MATCHING_CONSORTIUM_FIGURES_BYTES``)."""

    def __init__(self, entries: Sequence[NetworkEntry], figures_bytes: int = FIGURES_BYTES) -> None:
        self.figures_bytes = figures_bytes
        entries = sorted(entries, key=lambda e: e.id.encode())
        counts = np.array([len(e.member_ids) for e in entries], dtype=np.int64)
        width = max([len(m) for e in entries for m in e.member_ids] + [1])
        member_ids = np.array([m.encode() for e in entries for m in e.member_ids], dtype=f"S{width}")
        self._set([e.id for e in entries], [e.name for e in entries], counts, member_ids)
        self._main: tuple[Segment, Resolution] | None = None

    def _set(self, ids: list[str], names: list[str], counts: np.ndarray, member_ids: np.ndarray) -> None:
        self.n = len(ids)
        self.ids, self.names = ids, names
        self.positions = {network_id: i for i, network_id in enumerate(ids)}
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.member_ids = member_ids
        self.network_of = np.repeat(np.arange(self.n, dtype=np.int64), counts)

    def changed(self, changes: Mapping[str, NetworkEntry | None]) -> NetworkIndex:
        """This index with ``changes`` (a network's new entry, or None when it is no longer
        a candidate), reusing the unchanged networks' arrays and their resolution in the
        main segment: a change shows in a fraction of the time a rebuild takes."""
        if not changes:
            return self
        fresh = sorted((e for e in changes.values() if e is not None), key=lambda e: e.id.encode())
        order = sorted(
            [(network_id.encode(), 0, i) for i, network_id in enumerate(self.ids) if network_id not in changes]
            + [(e.id.encode(), 1, j) for j, e in enumerate(fresh)]
        )
        fresh_counts = np.array([len(e.member_ids) for e in fresh], dtype=np.int64)
        fresh_starts = self.members + np.concatenate([[0], np.cumsum(fresh_counts)])[:-1]
        old_counts = np.diff(self.offsets)
        starts = np.array([self.offsets[i] if kind == 0 else fresh_starts[i] for _, kind, i in order], dtype=np.int64)
        counts = np.array([old_counts[i] if kind == 0 else fresh_counts[i] for _, kind, i in order], dtype=np.int64)
        taken = ranges(starts, counts)
        fresh_ids = [m.encode() for e in fresh for m in e.member_ids]
        width = max([self.member_ids.dtype.itemsize, 1] + [len(m) for m in fresh_ids])
        pool = np.concatenate([self.member_ids.astype(f"S{width}"), np.array(fresh_ids, dtype=f"S{width}")])
        updated = NetworkIndex([], self.figures_bytes)
        names = [self.names[i] if kind == 0 else fresh[i].name for _, kind, i in order]
        updated._set([key.decode() for key, _, _ in order], names, counts, pool[taken])
        if self._main is not None:
            main, resolution = self._main
            added = _rows_in(main, pool[self.members :])
            rows = np.concatenate([resolution.rows, added])[taken]
            columns = [
                np.concatenate([old, new])[taken]
                for old, new in zip(resolution.columns, columns_of(main, added), strict=True)
            ]
            found = np.flatnonzero(rows >= 0)
            by_row = RowMembers.build(found, rows[found], main.n, updated.network_of)
            updated._main = (main, Resolution(rows, by_row, *columns))
        return updated

    @property
    def members(self) -> int:
        return len(self.member_ids)

    @property
    def shape(self) -> Shape:
        return Shape(self.network_of, self.n, self.members)

    def in_main(self, main: Segment) -> Resolution:
        """The members in ``main`` (kept for the last segment asked: every view over one main
        segment shares it; rows a view removes never pass its queries)."""
        cached = self._main
        if cached is not None and cached[0] is main:
            return cached[1]
        rows = _rows_in(main, self.member_ids)
        found = np.flatnonzero(rows >= 0)
        resolution = Resolution.of(main, rows, RowMembers.build(found, rows[found], main.n, self.network_of))
        self._main = (main, resolution)
        return resolution


@dataclass(frozen=True)
class Resolution:
    """Each member's row in one segment (-1: none) and the columns queries read of it,
    copied in membership order so a query reads them in order, not scattered."""

    rows: np.ndarray  # int64
    by_row: RowMembers
    capacity: np.ndarray  # float64, NaN when unknown
    unit: np.ndarray  # int16: the segment's unit code, -1 when none
    performance: np.ndarray  # float64: the performance criterion's value
    # The figures of the members in the segment (``NetworkFigures``), kept with it: every
    # view over it reads them, recomputing only the networks its delta changes.
    figures: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, segment: Segment, rows: np.ndarray, by_row: RowMembers) -> Resolution:
        return cls(rows, by_row, *columns_of(segment, rows))

    @cached_property
    def alone(self) -> MemberRows:
        """The members as a view of this segment alone (nothing removed, no delta) sees them."""
        segment = np.where(self.rows >= 0, 0, -1).astype(np.int8)
        return MemberRows(segment, self.rows, (self.by_row,), self.capacity, self.unit, self.performance, self.figures)

    @property
    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.capacity, self.unit, self.performance


def columns_of(segment: Segment, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The capacity, unit code and performance of ``rows`` of ``segment`` (-1: none)."""
    found = rows >= 0
    if not segment.n:
        return np.full(len(rows), np.nan), np.full(len(rows), -1, dtype=np.int16), np.zeros(len(rows))
    at = np.maximum(rows, 0)
    capacity = np.where(found, segment.capacity[at], np.nan)
    unit = np.where(found, segment.capacity_unit[at], -1).astype(np.int16)
    performance = np.where(found, segment.performance(at), 0.0)
    return capacity, unit, performance


EMPTY_INDEX = NetworkIndex([])


def _rows_in(segment: Segment, member_ids: np.ndarray) -> np.ndarray:
    """The rows of ``member_ids`` in ``segment``, -1 where absent."""
    if segment.n == 0 or len(member_ids) == 0:
        return np.full(len(member_ids), -1, dtype=np.int64)
    ranks = np.searchsorted(segment.ids, member_ids)
    inside = ranks < segment.n
    found = np.zeros(len(member_ids), dtype=bool)
    found[inside] = segment.ids[ranks[inside]] == member_ids[inside]
    rows = np.full(len(member_ids), -1, dtype=np.int64)
    rows[found] = segment.rows_by_id[ranks[found]]
    return rows


@dataclass(frozen=True)
class MemberRows:
    """Where each member of a ``NetworkIndex`` is in one view: its segment's index in
    the view's parts (0 main, 1 delta) and row, or -1 when it is no live supplier; the
    memberships by row, per part; and each member's capacity, unit (its segment's code)
    and performance. The main part's are shared by every view over one main segment."""

    segment: np.ndarray  # int8
    row: np.ndarray  # int64
    by_row: tuple[RowMembers, ...]  # per part
    capacity: np.ndarray
    unit: np.ndarray
    performance: np.ndarray
    # Per-network figures that do not depend on the query, computed when a query first
    # needs them (``NetworkFigures``): the main segment's own when the view changes none
    # of its members, else this view's, derived from them (``changes``).
    figures: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    changes: Changes | None = None

    @classmethod
    def resolve(cls, index: NetworkIndex, main: Segment, removed: BitMap, delta: Segment | None) -> MemberRows:
        in_main = index.in_main(main)
        rows, capacity, unit, performance = in_main.rows, in_main.capacity, in_main.unit, in_main.performance
        segment = np.zeros(len(rows), dtype=np.int8)
        stale = rows < 0
        if removed:
            superseded = np.zeros(main.n, dtype=bool)
            superseded[as_array(removed)] = True
            stale |= superseded[np.maximum(rows, 0)] & (rows >= 0)
        at = np.flatnonzero(stale)
        segment[at] = -1
        by_row = [in_main.by_row]
        changed = at[rows[at] >= 0]  # in the main segment, but not live there in this view
        if len(at):  # members changed since the main segment: copies, changed where they are
            rows, capacity, unit, performance = rows.copy(), capacity.copy(), unit.copy(), performance.copy()
            rows[at] = -1
            if delta is not None:
                in_delta = _rows_in(delta, index.member_ids[at])
                found = at[in_delta >= 0]
                delta_rows = in_delta[in_delta >= 0]
                rows[found] = delta_rows
                segment[found] = 1
                by_delta_row = RowMembers.build(found, delta_rows, delta.n, index.network_of)
                columns = Resolution.of(delta, delta_rows, by_delta_row)
                capacity[found], unit[found], performance[found] = columns.capacity, columns.unit, columns.performance
                by_row.append(columns.by_row)
                changed = np.union1d(changed, found)
        if not len(changed) and len(by_row) == 1:  # the main segment's members as they are: its figures
            return cls(segment, rows, tuple(by_row), capacity, unit, performance, in_main.figures)
        return cls(
            segment, rows, tuple(by_row), capacity, unit, performance, changes=Changes.of(index, in_main, changed)
        )


@dataclass(frozen=True)
class Changes:
    """How a view's members differ from the main segment's alone (``Resolution.alone``):
    the networks with a member changed (in the main segment but not live there, or in
    the delta) and their memberships, so figures are recomputed for those networks only."""

    base: MemberRows  # the members as the main segment alone has them, with its figures
    networks: np.ndarray  # ascending
    at: np.ndarray  # all their memberships, ascending
    network_of: np.ndarray  # the place in ``networks`` of each of ``at``

    @classmethod
    def of(cls, index: NetworkIndex, in_main: Resolution, changed: np.ndarray) -> Changes:
        networks = np.unique(index.network_of[changed])
        first = index.offsets[networks]
        counts = index.offsets[networks + 1] - first
        at = ranges(first, counts)
        return cls(in_main.alone, networks, at, np.repeat(np.arange(len(networks), dtype=np.int64), counts))

    def members(self, view: MemberRows, parts: list[tuple[Segment, BitMap]]) -> MemberRows:
        """The view's members of the changed networks alone, numbered by their place in ``at``."""
        segment = view.segment[self.at]
        rows = view.row[self.at]
        by_row = []
        for position, (part, _) in enumerate(parts[: len(view.by_row)]):
            mine = np.flatnonzero(segment == position)
            by_row.append(RowMembers.build(mine, rows[mine], part.n, self.network_of))
        return MemberRows(
            segment, rows, tuple(by_row), view.capacity[self.at], view.unit[self.at], view.performance[self.at]
        )


@dataclass(frozen=True)
class MemberScore:
    id: str
    name: str
    monthly_capacity: float | None  # as declared, in ``capacity_unit``
    capacity_unit: str | None
    share: float
    contribution: float
    values: dict[str, float]


@dataclass(frozen=True)
class ConsortiumGap(Gap):
    """A single firm's gap, and for a certification the member lacking it (the capacity
    gap is the counted members' together)."""

    member_id: str | None = None


@dataclass(frozen=True)
class RankedConsortium:
    id: str
    name: str
    score: float
    values: dict[str, float]
    contributions: dict[str, float]
    monthly_capacity: float  # the counted members' total in the query's unit (0 without one)
    members: tuple[MemberScore, ...]
    gap: ConsortiumGap | None = None


@dataclass(frozen=True)
class ConsortiumRanking:
    eligible_count: int
    items: list[RankedConsortium]
    development_count: int
    development: list[RankedConsortium]


NO_CONSORTIA = ConsortiumRanking(0, [], 0, [])


def sums(networks: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Per network, the sum of ``values`` in their order (float64 even when there are none)."""
    total: np.ndarray = np.bincount(networks, weights=values, minlength=count).astype(np.float64, copy=False)
    return total


@dataclass(frozen=True)
class MemberFacts:
    """The members of some networks that count in one query (``QUALIFYING``: they pass
    every per-firm constraint but the minimum capacity) and their named members, one
    certificate short (``ONE_CERTIFICATE_SHORT``), with their capacity in the query's
    unit (else 0)."""

    at: np.ndarray  # membership indices, ascending
    networks: np.ndarray  # their networks; the rest per membership of ``at`` too
    status: np.ndarray  # int8
    capacity: np.ndarray


@dataclass(frozen=True)
class Counted:
    """The members counted in some networks ``chosen`` (ascending): positions in
    ``MemberFacts``, ascending by network, and each one's network as its place in
    ``chosen``, so per-network sums are arrays of the batch's size, not the index's."""

    positions: np.ndarray
    local: np.ndarray  # the place of each one's network in ``chosen``
    shares: np.ndarray
    totals: np.ndarray  # per network of ``chosen``: the counted members' capacity


@dataclass(frozen=True)
class Evaluation:
    """Networks scored exactly."""

    counted: Counted
    member_values: dict[str, np.ndarray]
    values: dict[str, np.ndarray]  # per network scored
    contributions: dict[str, np.ndarray]
    scores: np.ndarray


FIGURES_KEPT = 500  # kinds of figures kept per view (units, schemes on a day, text terms)
BOUND_MARGIN = 1e-9  # relative: float sums taken in another order differ far less
ANCHOR_MARGIN_KM = 1e-3  # the haversine's rounding, far below a metre


def _nbytes(kept: Any) -> int:
    """The bytes of the arrays in a kept figure."""
    if isinstance(kept, np.ndarray):
        return int(kept.nbytes)
    if isinstance(kept, MemberFigure):
        return _nbytes(kept.values) + _nbytes(kept.parts) + _nbytes(kept.rows)
    if isinstance(kept, MemberOrder):
        return _nbytes(kept.order)
    if isinstance(kept, tuple | list):
        return sum(map(_nbytes, kept))
    return 0


@dataclass(frozen=True)
class MemberFigure:
    """One value per membership (0 for members that are no live supplier) and, per part
    of the view, each network's sum of it over its members in that part, and the values
    in the order of the part's ``RowMembers.memberships`` (``rows``, set once kept): a
    query reads them at ascending places there, not at scattered memberships."""

    values: np.ndarray
    parts: list[np.ndarray]
    rows: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True)
class MemberOrder:
    """A permutation of the memberships that keeps each network's range
    (``NetworkFigures.capacity_order``)."""

    order: np.ndarray


@dataclass(frozen=True)
class MembersRead:
    """Per part of a view, the live member rows read for one query (those that count, or
    with ``complement`` those that do not), their memberships' places in the part's
    ``RowMembers`` and their networks: enough to count each network's members."""

    complement: list[bool]
    rows: list[BitMap]
    positions: list[np.ndarray]
    networks: list[np.ndarray]

    def counts(self, live: MemberFigure, count: int) -> np.ndarray:
        """Per network, how many members count (``live``: how many each has per part)."""
        total = np.zeros(count, dtype=np.int64)
        for position, (complement, networks) in enumerate(zip(self.complement, self.networks, strict=True)):
            part = np.bincount(networks, minlength=count)
            total += np.rint(live.parts[position]).astype(np.int64) - part if complement else part
        return total


@dataclass(frozen=True)
class CountedMembers:
    """Per part of a view, the live memberships that count in one query, or
    (``complement``) those of its live member rows that do not, when most count: of the
    networks where enough count to be eligible or candidates only (``kept``), so its
    sums are right for those networks only (a broad query's failing members are mostly
    in networks that fail whole, whose figures no one reads)."""

    complement: list[bool]
    rows: list[BitMap]  # member rows holding every one of ``at`` (and maybe more of those read)
    at: list[np.ndarray]  # grouped by row
    places: list[np.ndarray]  # where each of ``at`` is in its part's ``RowMembers``, ascending
    networks: list[np.ndarray]  # the network of each of ``at`` (read once, summed per figure)
    # Per figure (by identity), its values at ``at`` and its sums: a query reads each once.
    gathered: dict[int, tuple[MemberFigure, list[np.ndarray]]] = field(default_factory=dict, compare=False, repr=False)
    summed: dict[int, tuple[MemberFigure, np.ndarray]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def kept(cls, read: MembersRead, wanted: np.ndarray, members: MemberRows, network_of: np.ndarray) -> CountedMembers:
        """The memberships ``read`` of the networks ``wanted`` (a mask)."""
        rows, at, places, networks = [], [], [], []
        for by_row, hit, where, of in zip(members.by_row, read.rows, read.positions, read.networks, strict=True):
            keep = where[wanted[of]]
            mine = by_row.memberships[keep]
            at.append(mine)
            places.append(keep)
            networks.append(by_row.networks[keep])
            # Each row once, all its memberships summed (``_text_sums``): any rows read holding
            # those kept will do, so the rows read unless few are kept.
            rows.append(bitmap_of(np.unique(members.row[mine])) if 2 * len(mine) < len(where) else hit)
        return cls(read.complement, rows, at, places, networks)

    def values(self, figure: MemberFigure) -> list[np.ndarray]:
        """Per part, ``figure``'s values at ``at`` (gathered once per query, in row order:
        a scattered read of every membership's values cost about 1 ms a figure at 1M)."""
        found = self.gathered.get(id(figure))
        if found is None or found[0] is not figure:
            values = [rows[places] for rows, places in zip(figure.rows, self.places, strict=True)]
            found = self.gathered[id(figure)] = (figure, values)
        return found[1]

    def sums(
        self, figure: MemberFigure, count: int, product_of: tuple[MemberFigure, MemberFigure] | None = None
    ) -> np.ndarray:
        """Per network, the counted members' sum of ``figure``, up to rounding
        (``BOUND_MARGIN`` of the live members' sum); read only. ``product_of``: two figures
        whose values' product ``figure``'s values are, read instead (each read once)."""
        found = self.summed.get(id(figure))
        if found is not None and found[0] is figure:
            return found[1]
        if product_of is None:
            values = self.values(figure)
        else:
            values = [a * b for a, b in zip(*(self.values(f) for f in product_of), strict=True)]
        total = np.zeros(count, dtype=np.float64)
        for position, (complement, networks) in enumerate(zip(self.complement, self.networks, strict=True)):
            part = sums(networks, values[position], count)
            total += figure.parts[position] - part if complement else part
        total.flags.writeable = False  # shared by the query's later reads
        self.summed[id(figure)] = (figure, total)
        return total


@dataclass(frozen=True)
class Shape:
    """What figures read of a ``NetworkIndex``: each membership's network, and how many
    networks and memberships there are."""

    network_of: np.ndarray
    n: int
    members: int


class NetworkFigures:
    """Figures of the networks' live members that do not depend on the query (each
    member's value in the part of the view it is in, and each network's sums of them):
    computed the first time a query needs them, once per kind (a capacity unit, a
    certificate scheme on a day), and kept in ``MemberRows.figures``. The main segment's
    are kept with it (``Resolution.figures``); a view whose delta changes members takes
    them and recomputes only the networks changed (``Changes``). With the members
    counted in a query (``CountedMembers``) they give the counted members' sums while
    reading only the smaller of the memberships that count and those that do not."""

    def __init__(
        self, shape: Shape, members: MemberRows, parts: list[tuple[Segment, BitMap]], budget: int = FIGURES_BYTES
    ) -> None:
        self.shape, self.members, self.parts, self.budget = shape, members, parts[: len(members.by_row)], budget

    def _kept(self, key: Any, compute: Callable[[NetworkFigures], Any]) -> Any:
        cache, key = self.members.figures, (FIGURES_FORM, key)
        found = cache.get(key)
        if found is None:
            changes = self.members.changes
            if changes is None:
                found = compute(self)
            else:  # the main segment's, with the changed networks recomputed
                main = NetworkFigures(self.shape, changes.base, self.parts[:1], self.budget)._kept(key, compute)
                shape = Shape(changes.network_of, len(changes.networks), len(changes.at))
                changed = compute(NetworkFigures(shape, self._changed_members(changes), self.parts, self.budget))
                found = _merged(main, changed, changes, len(self.parts))
            found = _in_row_order(found, self.members)
            # Checked once computed: a figure computes those it is made of first (kept too).
            if len(cache) >= FIGURES_KEPT or sum(map(_nbytes, cache.values())) + _nbytes(found) > self.budget:
                cache.clear()
            cache[key] = found
        return found

    def _changed_members(self, changes: Changes) -> MemberRows:
        """The view's members of the changed networks (built once per view)."""
        key = (FIGURES_FORM, CHANGED_MEMBERS)
        found: MemberRows | None = self.members.figures.get(key)
        if found is None:
            found = self.members.figures[key] = changes.members(self.members, self.parts)
        return found

    def _figure(self, values: np.ndarray) -> MemberFigure:
        segment, network_of, n = self.members.segment, self.shape.network_of, self.shape.n
        parts = [sums(network_of, np.where(segment == p, values, 0.0), n) for p in range(len(self.parts))]
        return MemberFigure(values, parts)

    def _per_member(self, of_rows: Any) -> np.ndarray:
        """``of_rows(segment, rows)`` for each live member's row, 0 for the others."""
        values = np.zeros(self.shape.members, dtype=np.float64)
        for position, (segment, _) in enumerate(self.parts):
            mine = np.flatnonzero(self.members.segment == position)
            if len(mine):
                values[mine] = of_rows(segment, self.members.row[mine])
        return values

    def live(self) -> MemberFigure:
        """1 per live member: per part, how many members each network has there."""
        found: MemberFigure = self._kept("live", lambda f: f._figure((f.members.segment >= 0).astype(np.float64)))
        return found

    def capacity(self, unit: str) -> tuple[MemberFigure, bool]:
        """Each member's capacity in ``unit`` (0 in another or unknown), and whether any is
        negative (then no bound relies on it)."""

        def compute(f: NetworkFigures) -> tuple[MemberFigure, bool]:
            members = f.members
            capacity = np.zeros(f.shape.members, dtype=np.float64)
            for position, (segment, _) in enumerate(f.parts):
                code = segment.units.index(unit) if unit in segment.units else -2
                mine = (members.segment == position) & (members.unit == code) & ~np.isnan(members.capacity)
                capacity[mine] = members.capacity[mine]
            return f._figure(capacity), bool((capacity < 0).any())

        found: tuple[MemberFigure, bool] = self._kept(("capacity", unit), compute)
        return found

    def capacity_order(self, unit: str) -> np.ndarray:
        """The memberships of each network, in its range of memberships, by their capacity
        in ``unit`` (``capacity``), most first, then by id: a network's first member of
        some set in this order has the most capacity of them (``_named_in_order``)."""

        def compute(f: NetworkFigures) -> MemberOrder:
            capacity = f.capacity(unit)[0].values
            order = np.lexsort((np.arange(f.shape.members), -capacity, f.shape.network_of))
            return MemberOrder(order)

        found: MemberOrder = self._kept(("capacity order", unit), compute)
        return found.order

    def mean(self, key: Any, of_rows: Any, unit: str | None) -> tuple[MemberFigure, MemberFigure | None]:
        """Each member's value of a mean criterion (``of_rows``), and with a unit, its value
        times its capacity in it."""

        plain: MemberFigure = self._kept(key, lambda f: f._figure(f._per_member(of_rows)))
        if unit is None:
            return plain, None
        weighted: MemberFigure = self._kept(
            (key, unit), lambda f: f._figure(f.mean(key, of_rows, None)[0].values * f.capacity(unit)[0].values)
        )
        return plain, weighted

    def term(self, term: int, unit: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Per network, its live members' sum of their weight of the text ``term`` (and of
        it times their capacity in ``unit``): the query's weights times these bound the
        members' text similarity from above, with no query's rows read."""

        def compute(f: NetworkFigures) -> tuple[np.ndarray, np.ndarray | None]:
            network_of, n, members = f.shape.network_of, f.shape.n, f.members
            plain = np.zeros(n, dtype=np.float64)
            weighted = None if unit is None else np.zeros(n, dtype=np.float64)
            capacity = None if unit is None else f.capacity(unit)[0].values
            for position, (segment, _) in enumerate(f.parts):
                postings, by_row = segment.postings, members.by_row[position]
                if term >= len(postings.terms):
                    continue
                rows = as_array(postings.terms[term] & by_row.rows)
                if not len(rows):
                    continue
                slots = by_row.slots[rows]
                first, counts = by_row.starts[slots], by_row.starts[slots + 1] - by_row.starts[slots]
                at = by_row.memberships[ranges(first, counts)]
                values = np.repeat(postings.weights(term, rows).astype(np.float64), counts)
                live = members.segment[at] == position  # not those gone to the delta
                at, values = at[live], values[live]
                plain += sums(network_of[at], values, n)
                if weighted is not None and capacity is not None:
                    weighted += sums(network_of[at], values * capacity[at], n)
            return plain, weighted

        found: tuple[np.ndarray, np.ndarray | None] = self._kept(("term", term, unit), compute)
        return found

    def anchors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, MemberFigure]:
        """Per network, one located live member's coordinates (NaN: none) and the largest
        distance from it to another (km): no member is nearer a point than the anchor's
        distance less that radius (the triangle inequality); and 1 per live member
        without coordinates (its proximity is 0, so is its consortium's when it counts)."""

        def compute(f: NetworkFigures) -> tuple[np.ndarray, np.ndarray, np.ndarray, MemberFigure]:
            n = f.shape.n
            latitude = f._per_member(lambda segment, rows: segment.latitude[rows])
            longitude = f._per_member(lambda segment, rows: segment.longitude[rows])
            located = np.flatnonzero((f.members.segment >= 0) & ~np.isnan(latitude) & ~np.isnan(longitude))
            networks = f.shape.network_of[located]
            anchored, first = np.unique(networks, return_index=True)
            lat, lon = np.full(n, np.nan), np.full(n, np.nan)
            lat[anchored], lon[anchored] = latitude[located[first]], longitude[located[first]]
            radius = np.zeros(n, dtype=np.float64)
            if len(located):
                away = haversine_km(latitude[located], longitude[located], lat[networks], lon[networks])
                radius[anchored] = np.maximum.reduceat(away, first)
            unlocated = (f.members.segment >= 0) & (np.isnan(latitude) | np.isnan(longitude))
            return lat, lon, radius, f._figure(unlocated.astype(np.float64))

        found: tuple[np.ndarray, np.ndarray, np.ndarray, MemberFigure] = self._kept("anchors", compute)
        return found


CHANGED_MEMBERS = "changed members"  # a view's members of its changed networks, kept with its figures
# The figures' layout, part of their keys: a process running two revisions side by side
# (``bench/consortia.py --baseline``) shares ``MemberRows.figures``, and keeps each one's apart.
FIGURES_FORM = "row order"


def _in_row_order(kept: Any, members: MemberRows) -> Any:
    """A kept figure (or a tuple holding some) with each ``MemberFigure``'s values also in
    the order of each part's memberships by row (``MemberFigure.rows``)."""
    if isinstance(kept, MemberFigure):
        return replace(kept, rows=tuple(kept.values[by_row.memberships] for by_row in members.by_row))
    if isinstance(kept, tuple):
        return tuple(_in_row_order(k, members) for k in kept)
    return kept


def _merged(main: Any, changed: Any, changes: Changes, parts: int) -> Any:
    """A figure of the main segment alone (``main``) with the networks ``changes`` names
    taken from their figure in the view (``changed``, numbered as in ``changes``)."""
    if isinstance(main, MemberFigure):
        values = main.values.copy()
        values[changes.at] = changed.values
        merged = []
        for position in range(parts):
            part = main.parts[position].copy() if position < len(main.parts) else np.zeros(len(main.parts[0]))
            part[changes.networks] = changed.parts[position]
            merged.append(part)
        return MemberFigure(values, merged)
    if isinstance(main, MemberOrder):  # the changed networks' ranges reordered
        order = main.order.copy()
        order[changes.at] = changes.at[changed.order]
        return MemberOrder(order)
    if isinstance(main, np.ndarray):  # one value per network
        per_network = main.copy()
        per_network[changes.networks] = changed
        return per_network
    if isinstance(main, tuple):
        return tuple(_merged(m, c, changes, parts) for m, c in zip(main, changed, strict=True))
    if isinstance(main, bool):  # whether any capacity is negative: the main segment's may be gone (kept: looser)
        return main or changed
    return changed  # None


NETWORK_READ_COST = 4  # a membership probed from its network's side, in memberships read from rows
EXACT_NETWORKS = 512  # up to this many candidate networks are scored without bounds
FIRST_SCORED = 64  # else the best-bounded this many, and at least
FIRST_PER_LIMIT = 4  # this many times the limit, are scored first, then twice as many each time


class ConsortiumQuery:
    """One query's consortia over one view's segments (``parts``: segment and removed rows).

    The members that count are found from the per-firm candidate sets and the members'
    rows (``RowMembers``), and counted per network from ``NetworkFigures``. Up to
    ``EXACT_NETWORKS`` candidates (eligible, or development candidates) are scored
    exactly; a larger set (a broad query) is bounded first from the figures (``_figure_bounds``),
    then scored in batches, best bound first, until the next bound falls below the k-th
    best score found (less ``ROUNDING_SLACK``): no network left can enter the top k.
    """

    def __init__(
        self,
        index: NetworkIndex,
        members: MemberRows,
        parts: list[tuple[Segment, BitMap]],
        query: Query,
        weights: dict[str, float],
        terms: Terms,
    ) -> None:
        self.index, self.members, self.parts = index, members, parts
        self.query, self.weights, self.terms = query, weights, terms
        unit = (query.capacity_unit or "").strip().lower()
        self.unit = unit or None
        self.figures = NetworkFigures(index.shape, members, parts, index.figures_bytes)
        # Per-network bounds' parts of every network, kept for a second set of networks bounded.
        self.kept: dict[str, Any] = {}

    def rank(self) -> ConsortiumRanking:
        """The query's consortia. The members that count per network are taken from the
        member rows passing, or, when most pass, from those failing (``CountedMembers``),
        so the work follows the smaller set, never every membership; the counted members'
        number and capacity per network come from ``NetworkFigures`` (a capacity near a
        threshold is summed exactly, ``_totals``). Up to ``EXACT_NETWORKS`` eligible (or
        development) networks are scored whole; more are bounded from the figures and
        scored best bound first (``_best_bounded``), each from its own memberships only."""
        index, query, members = self.index, self.query, self.members
        if index.n == 0:
            return NO_CONSORTIA
        figures = self.figures
        per_firm = replace(query, min_monthly_capacity=None)
        counting: list[BitMap] = []
        short: list[BitMap] = []
        complement: list[bool] = []
        read: list[BitMap] = []
        positions: list[np.ndarray] = []
        for position, (segment, removed) in enumerate(self.parts[: len(members.by_row)]):
            by_row = members.by_row[position]
            passing, nearly, _ = segment.candidate_sets(per_firm, removed)
            rows = passing & by_row.rows
            counting.append(rows)
            short.append(nearly & by_row.rows if query.include_development else BitMap())
            complement.append(2 * len(rows) > len(by_row.rows))
            # Rows the view removes are members elsewhere (the delta) or no longer live.
            read.append((by_row.rows - removed if removed else by_row.rows) - rows if complement[-1] else rows)
            positions.append(by_row.positions(read[-1]))
        networks_read = [by_row.networks[at] for by_row, at in zip(members.by_row, positions, strict=True)]
        every = MembersRead(complement, read, positions, networks_read)
        counts = every.counts(figures.live(), index.n)
        open_ = np.ones(index.n, dtype=bool)
        open_[[index.positions[i] for i in query.exclude_ids if i in index.positions]] = False
        minimum = query.min_monthly_capacity
        # Only networks with a member counting (with development, or one named) can be
        # eligible or candidates: the figures are summed over their memberships alone.
        relevant = open_ & (counts >= (MIN_MEMBERS - 1 if query.include_development else MIN_MEMBERS))
        counted = CountedMembers.kept(every, relevant, members, index.network_of)
        total, negative, margin = self._totals(relevant, counted, counting, figures)
        eligible = open_ & (counts >= MIN_MEMBERS)
        if minimum is not None:
            eligible &= total >= minimum
        chosen = np.flatnonzero(eligible)
        facts_of = self._counted_facts(counting, None)
        limit = query.consortium_limit
        if len(chosen) > EXACT_NETWORKS and limit:
            bounds = self._figure_bounds(chosen, counts, counted, figures)
            chosen = self._best_bounded(chosen, self._bound(bounds), limit, facts_of)
        items = self._explained(chosen, *facts_of(chosen), limit) if limit else []
        if not query.include_development:
            return ConsortiumRanking(int(eligible.sum()), items, 0, [])
        # Named members only where they can make a candidate: not eligible, one member short
        # at most, and (with a minimum) some member's capacity can make up the rest.
        upgradeable = relevant & ~eligible
        floor = None
        if minimum is not None and self.unit is not None and not negative:
            floor = minimum - total - 2 * margin
        named, named_capacity = self._named_members(short, upgradeable, floor)
        certification = upgradeable & (named >= 0)
        if minimum is not None:
            # A total compared with the minimum less the named member's capacity: exact there too.
            near = np.abs(total - (minimum - named_capacity)) <= 2 * margin
            self._sum_exactly(total, certification & near & ~negative, counting)
            certification &= total + named_capacity >= minimum
        capacity_short = np.zeros(index.n, dtype=bool)
        if minimum is not None:
            lowest = minimum * (1 - DEVELOPMENT_CAPACITY_MARGIN)
            capacity_short = open_ & ~eligible & ~certification & (counts >= MIN_MEMBERS) & (total >= lowest)
        candidates = np.flatnonzero(certification | capacity_short)
        named_in = np.where(certification, named, -1)
        facts_of = self._counted_facts(counting, named_in)
        limit = query.development_limit
        chosen = candidates
        if len(candidates) > EXACT_NETWORKS and limit and not negative:
            bounds = self._figure_bounds(candidates, counts, counted, figures)
            self._with_named(bounds, candidates, named_in, named_capacity)
            chosen = self._best_bounded(candidates, self._bound(bounds), limit, facts_of)
        development = self._explained(chosen, *facts_of(chosen), limit) if limit else []
        return ConsortiumRanking(int(eligible.sum()), items, len(candidates), development)

    def _named_members(
        self, short: list[BitMap], wanted: np.ndarray, floor: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per network of ``wanted`` (a mask), the member one certificate short (``short``: per
        part, such member rows) with the most capacity in the query's unit, then the lowest
        id, as a membership (-1: none, or one whose capacity is below the network's
        ``floor``: it cannot make the network a candidate); and that capacity (0 with none)."""
        index = self.index
        named = np.full(index.n, -1, dtype=np.int64)
        capacity = np.zeros(index.n, dtype=np.float64)
        chosen = np.flatnonzero(wanted)
        # From the rows short, or from the networks wanted, each probed in its members'
        # order by capacity until one is short, where that reads fewer memberships.
        member_rows = sum(len(by_row.rows) for by_row in self.members.by_row)
        short_rows = sum(map(len, short))
        by_rows = short_rows * index.members / max(member_rows, 1)
        probes = len(chosen) * member_rows / max(short_rows, 1)  # about one in that many is short
        read = int(index.offsets[chosen + 1].sum() - index.offsets[chosen].sum())
        if NETWORK_READ_COST * min(probes, read) + short_rows <= by_rows:
            return self._named_in_order(chosen, short, floor)
        read_at, of = [NO_MEMBERS], [NO_MEMBERS]
        for by_row, rows in zip(self.members.by_row, short, strict=True):
            where = by_row.positions(rows)
            where = where[wanted[by_row.networks[where]]]
            read_at.append(by_row.memberships[where])
            of.append(by_row.networks[where])
        at, networks = np.concatenate(read_at), np.concatenate(of)
        if not len(at):
            return named, capacity
        values = self._unit_capacity(at)
        # Unsorted, O(memberships): the most capacity per network, then the lowest membership
        # holding it (memberships ascend by id within a network). A lexsort took 10 times longer.
        most = np.full(index.n, -np.inf)
        np.maximum.at(most, networks, values)
        holding = values == most[networks]
        lowest = np.full(index.n, index.members, dtype=np.int64)
        np.minimum.at(lowest, networks[holding], at[holding])
        found = np.flatnonzero(lowest < index.members)
        named[found], capacity[found] = lowest[found], most[found]
        return named, capacity

    def _named_in_order(
        self, chosen: np.ndarray, short: list[BitMap], floor: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``_named_members`` of the networks ``chosen``, from their members in order of
        capacity (``NetworkFigures.capacity_order``; by id without a unit): the first member
        short is the one named. Each round tests every network's next member, so where
        most members are short a round or two names nearly all; a network leaves once its
        next member's capacity is below its ``floor``."""
        index, members = self.index, self.members
        named = np.full(index.n, -1, dtype=np.int64)
        capacity = np.zeros(index.n, dtype=np.float64)
        masks = []
        for (segment, _), rows in zip(self.parts[: len(short)], short, strict=True):
            mask = np.zeros(segment.n, dtype=bool)
            mask[as_array(rows)] = True
            masks.append(mask)
        order: np.ndarray | None = None
        values: np.ndarray | None = None
        if self.unit is not None:
            order = self.figures.capacity_order(self.unit)
            values = self.figures.capacity(self.unit)[0].values
        starts = index.offsets[chosen]
        sizes = index.offsets[chosen + 1] - starts
        pending = np.arange(len(chosen))
        rank = 0
        while len(pending):
            pending = pending[sizes[pending] > rank]
            at = starts[pending] + rank
            if order is not None:
                at = order[at]
            if floor is not None and values is not None:
                reaching = values[at] >= floor[chosen[pending]]
                pending, at = pending[reaching], at[reaching]
            part, rows = members.segment[at], members.row[at]
            hit = np.zeros(len(at), dtype=bool)
            for position, mask in enumerate(masks):
                mine = np.flatnonzero(part == position)
                hit[mine] = mask[rows[mine]]
            networks = chosen[pending[hit]]
            named[networks] = at[hit]
            pending = pending[~hit]
            rank += 1
        found = np.flatnonzero(named >= 0)
        capacity[found] = self._unit_capacity(named[found])
        return named, capacity

    def _totals(
        self, relevant: np.ndarray, counted: CountedMembers, counting: list[BitMap], figures: NetworkFigures
    ) -> tuple[np.ndarray, bool, np.ndarray]:
        """Per network, the counted members' capacity in the query's unit, exact wherever
        the query compares it with the minimum or the development margin's lowest
        (``relevant`` networks): from the capacity figure, widened by the margin returned
        (``BOUND_MARGIN`` of the live members' sum), and summed exactly from the network's
        own memberships (``_sum_exactly``) where that range holds the threshold; and
        whether any capacity is negative (then every relevant network is summed exactly).
        0 without a unit or a minimum."""
        index, minimum = self.index, self.query.min_monthly_capacity
        total = np.zeros(index.n, dtype=np.float64)
        if self.unit is None or minimum is None:
            return total, False, np.zeros(index.n)
        capacity, negative = figures.capacity(self.unit)
        total = np.where(relevant, counted.sums(capacity, index.n), 0.0)
        margin = BOUND_MARGIN * (np.sum(capacity.parts, axis=0) + 1.0)
        near = np.abs(total - minimum) <= 2 * margin
        if self.query.include_development:
            near |= np.abs(total - minimum * (1 - DEVELOPMENT_CAPACITY_MARGIN)) <= 2 * margin
        self._sum_exactly(total, relevant & (near | negative), counting)
        return total, negative, margin

    def _sum_exactly(self, total: np.ndarray, networks: np.ndarray, counting: list[BitMap]) -> None:
        """``total`` of the ``networks`` (a mask) summed, in place, from their own memberships
        in member order, as eligibility is defined."""
        exact = np.flatnonzero(networks)
        if len(exact):
            facts, _ = self._counted_facts(counting, None)(exact)
            total[exact] = self._counted(exact, facts, None).totals

    def _counted_facts(
        self, counting: list[BitMap], named: np.ndarray | None
    ) -> Callable[[np.ndarray], tuple[MemberFacts, np.ndarray | None]]:
        """The facts of networks chosen: their members that count (``_facts_of``) and, per
        network, its named member (``named``: a membership, -1 none) as a position in them."""

        def facts_of(chosen: np.ndarray) -> tuple[MemberFacts, np.ndarray | None]:
            facts = self._facts_of(chosen, counting)
            if named is None:
                return facts, None
            extra = named[chosen]
            extra = extra[extra >= 0]
            at = np.concatenate([facts.at, extra])
            order = np.argsort(at, kind="stable")  # two ascending runs merged
            status = np.concatenate([facts.status, np.full(len(extra), ONE_CERTIFICATE_SHORT, dtype=np.int8)])
            capacity = np.concatenate([facts.capacity, self._unit_capacity(extra)])
            merged = MemberFacts(at[order], self.index.network_of[at[order]], status[order], capacity[order])
            positions = np.full(self.index.n, -1, dtype=np.int64)
            placed = np.flatnonzero(merged.status == ONE_CERTIFICATE_SHORT)
            positions[merged.networks[placed]] = placed
            return merged, positions

        return facts_of

    def _with_named(
        self,
        bounds: dict[str, np.ndarray],
        candidates: np.ndarray,
        named: np.ndarray,
        named_capacity: np.ndarray,
    ) -> None:
        """Widen the bounds of ``candidates`` (their counted members') to count each one's
        named member too: a share-weighted mean with one more member is at most the larger
        of the mean before and the member's value (shares are not negative); proximity
        can only fall; capacity adds the member's."""
        upgraded = np.flatnonzero(named[candidates] >= 0)
        if not len(upgraded):
            return
        networks = candidates[upgraded]
        mean = [c for c in self.weights if c in MEAN_CRITERIA]
        values = self._member_values(named[networks], mean)
        for c in mean:
            bounds[c][upgraded] = np.minimum(
                np.maximum(bounds[c][upgraded], values[c] * (1 + BOUND_MARGIN) + BOUND_MARGIN), 1.0
            )
        if "capacity" in bounds:
            target = self.query.capacity_target
            assert target is not None
            added = named_capacity[networks] / target * (1 + BOUND_MARGIN) + BOUND_MARGIN
            bounds["capacity"][upgraded] = np.minimum(bounds["capacity"][upgraded] + added, 1.0)

    def _bound(self, bounds: dict[str, np.ndarray]) -> np.ndarray:
        """The weighted sum of per-criterion bounds."""
        weights = self.weights
        bound: np.ndarray = np.sum([weights[c] * bounds[c] for c in weights], axis=0)
        return bound

    def _facts_of(self, chosen: np.ndarray, counting: list[BitMap]) -> MemberFacts:
        """The members that count of the networks ``chosen`` (ascending), read from their
        memberships alone (``counting``: per part, the member rows that count)."""
        at = self._members_among(chosen, counting)
        status = np.full(len(at), QUALIFYING, dtype=np.int8)
        return MemberFacts(at, self.index.network_of[at], status, self._unit_capacity(at))

    def _members_among(self, chosen: np.ndarray, rows_of: list[BitMap]) -> np.ndarray:
        """The memberships of the networks ``chosen`` (ascending) whose rows are among
        ``rows_of`` (per part), ascending: read from those networks' memberships alone."""
        index, members = self.index, self.members
        first = index.offsets[chosen]
        at = ranges(first, index.offsets[chosen + 1] - first)  # ascending
        part_of = members.segment[at]
        held = np.zeros(len(at), dtype=bool)
        for position in range(len(members.by_row)):
            mine = np.flatnonzero(part_of == position)
            if not len(mine):
                continue
            rows = members.row[at[mine]]
            held[mine] = among(rows, as_array(bitmap_of(np.sort(rows)) & rows_of[position]))  # sorted: faster
        return at[held]

    def _unit_capacity(self, at: np.ndarray) -> np.ndarray:
        """The capacity of the live members ``at`` in the query's unit (0 in another, unknown, or without one)."""
        if self.unit is None:
            return np.zeros(len(at), dtype=np.float64)
        in_unit: np.ndarray = self.figures.capacity(self.unit)[0].values[at]
        return in_unit

    def _figure_bounds(
        self,
        eligible: np.ndarray,
        counts: np.ndarray,
        counted: CountedMembers,
        figures: NetworkFigures,
    ) -> dict[str, np.ndarray]:
        """Upper bounds of each criterion's value (in [0, 1]) of the networks ``eligible``,
        for their counted members: each share-weighted mean
        from the counted members' sum of their values (text: ceilings) over their number,
        or with a unit, of their values times their capacity over their total capacity;
        proximity from the nearest a member can be (``NetworkFigures.anchors``); capacity
        from the counted total. Sums taken by difference are widened by ``BOUND_MARGIN``."""
        query, weights, index = self.query, self.weights, self.index
        n = index.n

        def within(
            figure: MemberFigure, product_of: tuple[MemberFigure, MemberFigure] | None = None
        ) -> tuple[np.ndarray, np.ndarray]:
            """The counted members' sum of ``figure``, and its margin."""
            live = np.sum([part[eligible] for part in figure.parts], axis=0)
            return counted.sums(figure, n, product_of)[eligible], BOUND_MARGIN * (live + 1.0)

        number = counts[eligible].astype(np.float64)
        low = high = np.zeros(0)
        none_for_sure = np.zeros(len(eligible), dtype=bool)
        negative = False
        capacity: MemberFigure | None = None
        if self.unit is not None:
            capacity, negative = figures.capacity(self.unit)
            total, margin = within(capacity)
            high = total + margin
            low = np.full(len(eligible), -np.inf) if negative else total - margin
            live = np.sum([part[eligible] for part in capacity.parts], axis=0)
            none_for_sure = (live == 0) & (not negative)  # no capacity in the unit: equal shares
        day = query.on_date.toordinal()
        bounds: dict[str, np.ndarray] = {}
        for c in weights:
            if c in MEAN_CRITERIA:
                if c == "text":
                    if any(counted.complement):  # most members count: the live members' term sums
                        plain, weighted = self._text_sums(eligible, counted, figures)
                    else:
                        plain, weighted = self._ceiling_sums(eligible, counted)
                else:
                    figure, by_capacity = self._figures_of(c, day, figures)
                    plain = np.add(*within(figure))
                    # ``NetworkFigures.mean``: times the capacity, from the values read already.
                    by = None if capacity is None else (figure, capacity)
                    weighted = None if by_capacity is None else np.add(*within(by_capacity, by))
                value = plain / number
                if weighted is not None:
                    shared = weighted / np.where(low > 0, low, 1.0)
                    value = np.where(low > 0, shared, np.where(none_for_sure, value, 1.0))
                value = value * (1 + BOUND_MARGIN) + BOUND_MARGIN
            elif c == "proximity" and not any(counted.complement):
                value = self._farthest_counted(counted)[eligible] + BOUND_MARGIN
            elif c == "proximity":
                assert query.latitude is not None and query.longitude is not None
                latitude, longitude, radius, unlocated = figures.anchors()
                reference = query.max_distance_km or PROXIMITY_REFERENCE_KM
                distance = self._distances_at_least(latitude[eligible], longitude[eligible])
                # Every live member counted: the anchor is, and the farthest is no nearer than it.
                every = counts[eligible] == np.rint(np.sum([part[eligible] for part in figures.live().parts], axis=0))
                nearest = np.where(every, distance, distance - radius[eligible]) - ANCHOR_MARGIN_KM
                value = np.nan_to_num(np.maximum(1.0 - np.maximum(nearest, 0.0) / reference, 0.0), nan=0.0)
                value[np.rint(counted.sums(unlocated, n)[eligible]) > 0] = 0.0  # one counted is unlocated
                value += BOUND_MARGIN
            else:  # capacity
                target = query.capacity_target
                assert target is not None
                value = high / target if not negative else np.ones(len(eligible))
            bounds[c] = np.minimum(value, 1.0)
        return bounds

    def _farthest_counted(self, counted: CountedMembers) -> np.ndarray:
        """Per network, the proximity of its farthest counted member (1 with none), from the
        memberships that count (``counted`` holds them when few count): one distance per
        counted row, so a point query's bounds of it are its values, up to the rough
        haversine's margin (``_proximity_ceilings``)."""
        found: np.ndarray | None = self.kept.get("farthest")
        if found is None:
            found = self.kept["farthest"] = self._all_farthest(counted)
        return found

    def _all_farthest(self, counted: CountedMembers) -> np.ndarray:
        """``_farthest_counted``, computed."""
        nearest = np.ones(self.index.n, dtype=np.float64)
        for position, (segment, _) in enumerate(self.parts[: len(self.members.by_row)]):
            rows = as_array(counted.rows[position])  # those that count, of the networks kept (or more)
            if not len(rows):
                continue
            by_row = self.members.by_row[position]
            per_slot = np.ones(len(by_row.starts) - 1, dtype=np.float64)  # per member row of the part
            per_slot[by_row.slots[rows]] = self._proximity_ceilings(segment, rows)
            at = counted.at[position]
            np.minimum.at(nearest, counted.networks[position], per_slot[by_row.slots[self.members.row[at]]])
        return nearest

    def _distances_at_least(self, latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
        """Lower bounds of the float64 haversine of points (float32 values) from the query's
        point: the float32 one less its margin at ``ROUGH_DISTANCE_LIMIT_KM`` (``within_km``'s)
        up to there, the float64 one beyond (where no margin is measured)."""
        query = self.query
        assert query.latitude is not None and query.longitude is not None
        rough = haversine_km(latitude, longitude, query.latitude, query.longitude, np.float32).astype(np.float64)
        margin = ROUGH_MARGIN_KM + ROUGH_MARGIN_SHARE * ROUGH_DISTANCE_LIMIT_KM
        lower: np.ndarray = rough - margin  # NaN without coordinates
        far = np.flatnonzero(rough > ROUGH_DISTANCE_LIMIT_KM - margin)
        lower[far] = haversine_km(latitude[far], longitude[far], query.latitude, query.longitude)
        return lower

    def _proximity_ceilings(self, segment: Segment, rows: np.ndarray) -> np.ndarray:
        """Upper bounds of the proximity of ``rows``: from the float32 haversine less its
        margin at ``ROUGH_DISTANCE_LIMIT_KM`` (``within_km``'s), ten times faster than the
        float64 one shortlists score. Up to that distance the rough one is within the
        margin; beyond it proximity is 0 wherever the reference distance is shorter (else
        the float64 one is taken)."""
        query = self.query
        assert query.latitude is not None and query.longitude is not None
        lat, lon = segment.latitude[rows], segment.longitude[rows]
        reference = query.max_distance_km or PROXIMITY_REFERENCE_KM
        if reference > ROUGH_DISTANCE_LIMIT_KM:
            nearest = haversine_km(lat, lon, query.latitude, query.longitude)
        else:
            rough = haversine_km(lat, lon, query.latitude, query.longitude, np.float32).astype(np.float64)
            nearest = rough - (ROUGH_MARGIN_KM + ROUGH_MARGIN_SHARE * ROUGH_DISTANCE_LIMIT_KM)
        ceilings: np.ndarray = np.nan_to_num(np.clip(1.0 - np.maximum(nearest, 0.0) / reference, 0.0, 1.0), nan=0.0)
        return ceilings

    def _figures_of(
        self, criterion: str, day: int, figures: NetworkFigures
    ) -> tuple[MemberFigure, MemberFigure | None]:
        """The members' values of a mean criterion but text (and times their capacity)."""
        unit = self.unit
        if criterion == "performance":
            return figures.mean("performance", lambda segment, rows: segment.performance(rows), unit)
        if criterion == "inclusion":
            return figures.mean(
                "inclusion", lambda segment, rows: among(rows, segment.inclusion_rows()[1]).astype(np.float64), unit
            )
        schemes = self.query.preferred_certifications  # certifications: the share of them held

        def held(segment: Segment, rows: np.ndarray) -> np.ndarray:
            counts = sum((among(rows, segment.valid_certificates(s, day)[1]) for s in schemes), np.zeros(len(rows)))
            share: np.ndarray = counts / len(schemes)
            return share

        return figures.mean(("certifications", schemes, day), held, unit)

    def _text_sums(
        self, eligible: np.ndarray, counted: CountedMembers, figures: NetworkFigures
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Upper bounds of the counted members' sum of their text similarity (and of it
        times their capacity): the query's weights times the live members' term sums
        (a member's similarity is its terms' weights times the query's), less the
        similarity of the members failing in the parts where most count (``counted``):
        the counted members' sums, up to rounding (widened by ``BOUND_MARGIN`` of the live
        members' sums)."""
        found = self.kept.get("text sums")
        if found is None:
            found = self.kept["text sums"] = self._all_text_sums(counted, figures)
        plain, weighted = found
        return plain[eligible], None if weighted is None else weighted[eligible]

    def _all_text_sums(self, counted: CountedMembers, figures: NetworkFigures) -> tuple[np.ndarray, np.ndarray | None]:
        """``_text_sums`` of every network (right for those ``counted`` keeps)."""
        n = self.index.n
        plain = np.zeros(n, dtype=np.float64)
        weighted = None if self.unit is None else np.zeros(n, dtype=np.float64)
        for term, weight in zip(*(part.tolist() for part in self.terms), strict=True):
            term_sums, term_weighted = figures.term(term, self.unit)
            plain += weight * term_sums
            if weighted is not None and term_weighted is not None:
                weighted += weight * term_weighted
        plain_margin = BOUND_MARGIN * (plain + 1.0)
        weighted_margin = None if weighted is None else BOUND_MARGIN * (weighted + 1.0)
        capacity = None if self.unit is None else figures.capacity(self.unit)[0].rows  # read at ``where``
        members = self.members
        for position, (segment, _) in enumerate(self.parts[: len(members.by_row)]):
            if not counted.complement[position]:
                continue
            by_row, failing = members.by_row[position], counted.rows[position]
            holders = as_array(BitMap.union(*held)) if (held := self._holding(segment, failing)) else NO_MEMBERS
            if not len(holders):
                continue
            similarity = segment.postings.scores(holders, *self.terms)
            slots = by_row.slots[holders]
            counts = by_row.starts[slots + 1] - by_row.starts[slots]
            where, values = ranges(by_row.starts[slots], counts), np.repeat(similarity, counts)
            plain -= sums(by_row.networks[where], values, n)  # the rows read are live: all their memberships
            if weighted is not None and capacity is not None:
                weighted -= sums(by_row.networks[where], values * capacity[position][where], n)
        plain = np.maximum(plain, 0.0) + plain_margin
        if weighted is None or weighted_margin is None:
            return plain, None
        return plain, np.maximum(weighted, 0.0) + weighted_margin

    def _holding(self, segment: Segment, rows: BitMap) -> list[BitMap]:
        """The rows of ``rows`` holding each query term the segment knows."""
        postings = segment.postings
        return [postings.terms[t] & rows for t in self.terms[0].tolist() if t < len(postings.terms)]

    def _ceiling_sums(self, eligible: np.ndarray, counted: CountedMembers) -> tuple[np.ndarray, np.ndarray | None]:
        """The counted members' sums of their text ceilings (and times their capacity): read
        from the counted rows holding a query term, so for queries where few members count."""
        found = self.kept.get("ceiling sums")
        if found is None:
            found = self.kept["ceiling sums"] = self._all_ceiling_sums(counted.rows)
        plain, weighted = found
        return plain[eligible], None if weighted is None else weighted[eligible]

    def _all_ceiling_sums(self, counting: list[BitMap]) -> tuple[np.ndarray, np.ndarray | None]:
        """``_ceiling_sums`` of every network with a member of ``counting`` (rows that count)."""
        index, members = self.index, self.members
        plain = np.zeros(index.n, dtype=np.float64)
        weighted = None if self.unit is None else np.zeros(index.n, dtype=np.float64)
        for position, (segment, _) in enumerate(self.parts[: len(members.by_row)]):
            holders, ceilings = self._row_ceilings(segment, counting[position])
            if not len(holders):
                continue
            by_row = members.by_row[position]
            slots = by_row.slots[holders]
            counts = by_row.starts[slots + 1] - by_row.starts[slots]
            where = ranges(by_row.starts[slots], counts)
            at, networks = by_row.memberships[where], by_row.networks[where]
            values = np.repeat(ceilings, counts)
            plain += sums(networks, values, index.n)
            if weighted is not None:
                unit_capacity = (
                    np.where(
                        (members.unit[at] == segment.units.index(self.unit)) & ~np.isnan(members.capacity[at]),
                        members.capacity[at],
                        0.0,
                    )
                    if self.unit in segment.units
                    else np.zeros(len(at))
                )
                weighted += sums(networks, values * unit_capacity, index.n)
        return plain + BOUND_MARGIN * (plain + 1.0), None if weighted is None else weighted * (
            1 + BOUND_MARGIN
        ) + BOUND_MARGIN

    def _best_bounded(
        self,
        eligible: np.ndarray,
        bound: np.ndarray,
        limit: int,
        facts_of: Callable[[np.ndarray], tuple[MemberFacts, np.ndarray | None]],
    ) -> np.ndarray:
        """The best ``limit`` networks of ``eligible`` (ascending): the best-bounded are scored
        in batches (each twice the last) until every network left is bounded below the
        k-th best score found (less the rounding slack), so none of them can enter."""
        remaining = np.arange(len(eligible))
        scored: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        best = np.empty(0, dtype=np.float64)  # the ``limit`` best scores so far
        kth, batch = -math.inf, max(FIRST_SCORED, FIRST_PER_LIMIT * limit)
        while len(remaining):
            taken = np.ones(len(remaining), dtype=bool)
            if len(remaining) > batch:
                taken[:] = False
                taken[np.argpartition(-bound[remaining], batch - 1)[:batch]] = True
            networks = eligible[remaining[taken]]  # ascending
            remaining, batch = remaining[~taken], 2 * batch
            scored.append(networks)
            scores.append(self._evaluate(networks, *facts_of(networks)).scores)
            best = np.concatenate([best, scores[-1]])
            if len(best) >= limit:
                best = np.partition(best, len(best) - limit)[len(best) - limit :]
                kth = float(best.min())
            remaining = remaining[bound[remaining] >= kth - ROUNDING_SLACK]
        networks, network_scores = np.concatenate(scored), np.concatenate(scores)
        return np.sort(networks[top(network_scores, networks, limit)])

    def _row_ceilings(self, segment: Segment, hit: BitMap) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``hit`` holding a query term (most members hold none), and upper
        bounds of their text value: the terms each holds, each at its largest weight
        anywhere, or the terms' largest numerators over the row's norm."""
        postings = segment.postings
        held = [
            (
                postings.terms[term] & hit,
                weight * float(postings.max_weights[term]),
                weight * float(postings.max_numerators[term]),
            )
            for term, weight in zip(*(part.tolist() for part in self.terms), strict=True)
            if term < len(postings.terms)
        ]
        holders = as_array(BitMap.union(*(h[0] for h in held))) if held else NO_MEMBERS
        if not len(holders):
            return holders, np.zeros(0)
        products = np.zeros(len(holders), dtype=np.float64)
        numerators = np.zeros(len(holders), dtype=np.float64)
        for rows, product, numerator in held:
            k = np.searchsorted(holders, as_array(rows))
            products[k] += product
            numerators[k] += numerator
        by_norm = NUMERATOR_MARGIN * numerators / postings.norms[holders]
        return holders, np.minimum(np.minimum(products * NUMERATOR_MARGIN, by_norm), 1.0)

    def _counted(self, chosen: np.ndarray, facts: MemberFacts, named: np.ndarray | None) -> Counted:
        """The members counted in the networks ``chosen``: those that count, and the named ones."""
        # ``facts`` ascend by membership, so by network: each network's members are one range.
        first = np.searchsorted(facts.networks, chosen, side="left")
        counts = np.searchsorted(facts.networks, chosen, side="right") - first
        positions = ranges(first, counts)
        local = np.repeat(np.arange(len(chosen), dtype=np.int64), counts)
        counting = facts.status[positions] == QUALIFYING
        positions, local = positions[counting], local[counting]
        if named is not None:  # named members are one certificate short: never among those counting
            extra = named[chosen]
            has = np.flatnonzero(extra >= 0)
            order = np.argsort(np.concatenate([positions, extra[has]]), kind="stable")  # two runs merged
            positions, local = np.concatenate([positions, extra[has]])[order], np.concatenate([local, has])[order]
        capacity = facts.capacity[positions]
        counts = np.bincount(local, minlength=len(chosen))
        totals = sums(local, capacity, len(chosen))
        if self.unit is not None:
            shares = np.where(totals[local] > 0, capacity / np.maximum(totals[local], 1e-300), 0.0)
            equal = totals[local] <= 0
            shares[equal] = 1.0 / counts[local][equal]
        else:
            shares = 1.0 / counts[local]
        return Counted(positions, local, shares, totals)

    def _aggregate(
        self, chosen: np.ndarray, counted: Counted, per_member: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Each criterion's value of the networks ``chosen`` from their members' (``per_member``)."""
        values: dict[str, np.ndarray] = {}
        local = counted.local
        for c in self.weights:
            if c in MEAN_CRITERIA:
                weighted = counted.shares * per_member[c]
                values[c] = sums(local, weighted, len(chosen))
            elif c == "proximity":
                if c in per_member:
                    nearest = np.full(len(chosen), np.inf)
                    starts = np.searchsorted(local, np.arange(len(chosen)))
                    held = starts < np.append(starts[1:], len(local))  # networks with a member counted
                    if len(local):
                        nearest[held] = np.minimum.reduceat(per_member[c], starts[held])
                    values[c] = nearest
                else:  # bounding: the farthest member is at most at the point
                    values[c] = np.ones(len(chosen))
            else:  # capacity
                target = self.query.capacity_target
                assert target is not None
                values[c] = np.minimum(1.0, counted.totals / target)
        return values

    def _evaluate(self, chosen: np.ndarray, facts: MemberFacts, named: np.ndarray | None) -> Evaluation:
        """The networks ``chosen`` (ascending) scored exactly."""
        counted = self._counted(chosen, facts, named)
        member_values = self._member_values(facts.at[counted.positions])
        values = self._aggregate(chosen, counted, member_values)
        contributions = {c: np.round(self.weights[c] * values[c], SCORE_DECIMALS) for c in self.weights}
        scores = np.round(np.sum(list(contributions.values()), axis=0), SCORE_DECIMALS)
        return Evaluation(counted, member_values, values, contributions, scores)

    def _explained(
        self, chosen: np.ndarray, facts: MemberFacts, named: np.ndarray | None, limit: int
    ) -> list[RankedConsortium]:
        """The best ``limit`` of the networks ``chosen`` (ascending), all scored, and explained;
        ``named``: per network, the member counted besides those that count (a position in
        ``facts``; -1: none)."""
        scored = self._evaluate(chosen, facts, named)
        index, weights, counted = self.index, self.weights, scored.counted
        ranked = top(scored.scores, chosen, limit)  # ``chosen`` ascends with the ids
        # The ranked networks' counted members explained at once, then split network by network.
        first = np.searchsorted(counted.local, ranked)
        counts = np.searchsorted(counted.local, ranked + 1) - first
        mine = ranges(first, counts)
        explained = self._members_of(
            facts.at[counted.positions[mine]],
            counted.shares[mine],
            {c: v[mine] for c, v in scored.member_values.items()},
        )
        ends = np.cumsum(counts).tolist()
        result = []
        for k, i in enumerate(ranked.tolist()):
            network = int(chosen[i])
            members = explained[ends[k] - int(counts[k]) : ends[k]]
            members.sort(key=lambda m: (-m.share, m.id.encode()))  # largest share first, then by id
            result.append(
                RankedConsortium(
                    id=index.ids[network],
                    name=index.names[network],
                    score=float(scored.scores[i]),
                    values={c: float(scored.values[c][i]) for c in weights},
                    contributions={c: float(scored.contributions[c][i]) for c in weights},
                    monthly_capacity=float(counted.totals[i]),
                    members=tuple(members),
                    gap=self._gap(network, facts, named, counted.totals[i]) if named is not None else None,
                )
            )
        return result

    def _member_values(self, at: np.ndarray, criteria: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """The single-firm criterion values of the members ``at`` (of ``criteria``, default all active)."""
        members = self.members
        weights = self.weights if criteria is None else {c: self.weights[c] for c in criteria}
        values = {c: np.zeros(len(at), dtype=np.float64) for c in weights}
        for position, (segment, _) in enumerate(self.parts):
            mine = np.flatnonzero(members.segment[at] == position)
            if not len(mine):
                continue
            rows = members.row[at[mine]]
            unique, inverse = np.unique(rows, return_inverse=True)
            computed = segment.criterion_values(self.query, unique, weights, self.terms)
            for c in weights:
                values[c][mine] = computed[c][inverse]
        return values

    def _members_of(self, at: np.ndarray, shares: np.ndarray, values: dict[str, np.ndarray]) -> list[MemberScore]:
        """The counted members ``at`` (of several networks) explained, in their order."""
        weights, members = self.weights, self.members
        mean_part = sum((weights[c] * values[c] for c in weights if c in MEAN_CRITERIA), np.zeros(len(at)))
        listed_values = {c: v.tolist() for c, v in values.items()}
        listed_shares = np.round(shares, SCORE_DECIMALS).tolist()
        contributions = np.round(shares * mean_part, SCORE_DECIMALS).tolist()
        ids = self.index.member_ids[at].tolist()
        capacities, units = members.capacity[at].tolist(), members.unit[at].tolist()  # as their part has them
        scored = []
        for k, (part, row) in enumerate(zip(members.segment[at].tolist(), members.row[at].tolist(), strict=True)):
            segment = self.parts[part][0]
            capacity = capacities[k]
            known = not math.isnan(capacity)
            scored.append(
                MemberScore(
                    id=ids[k].decode(),
                    name=segment.names[row],
                    monthly_capacity=capacity if known else None,
                    capacity_unit=(segment.units[units[k]] or None) if known else None,
                    share=listed_shares[k],
                    contribution=contributions[k],
                    values={c: listed_values[c][k] for c in weights},
                )
            )
        return scored

    def _gap(self, network: int, facts: MemberFacts, named: np.ndarray, total: float) -> ConsortiumGap:
        if named[network] < 0:
            return ConsortiumGap("capacity", required=self.query.min_monthly_capacity, available=float(total))
        member = int(facts.at[named[network]])
        segment, row = self.parts[int(self.members.segment[member])][0], int(self.members.row[member])
        day = self.query.on_date.toordinal()
        scheme = next(s for s in self.query.required_certifications if row not in segment.valid_certificates(s, day)[0])
        return ConsortiumGap("certification", scheme=scheme, member_id=self.index.member_ids[member].decode())
