"""Consortia: active horizontal networks whose members, together, meet a buyer's standards.

A network is a candidate consortium while it is horizontal and active (the registry's
``NetworkRecord``). For one query (the contract; see docs/matching.md, "Consortia"):

* a member **counts** when it passes every per-firm constraint but the minimum capacity
  (sector, products, required certificates valid on the date, place, distance, size
  class, cluster, exclusions); a network listed in the exclusions is left out whole;
* a consortium is **eligible** when at least ``MIN_MEMBERS`` members count and their
  monthly capacities in the query's unit add up to the minimum (if one is asked);
* its **score** uses the single-firm criteria, aggregated: ``text``, ``certifications``
  and ``performance`` are the means of the counted members' values weighted by their
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
per view (``MemberRows``); a query marks the members that count with the per-firm
candidate sets the single-firm ranking computes, and aggregates per network with
``np.bincount`` (sums in member order, the order the reference adds them in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pyroaring import BitMap

from services.common.feeds import NetworkRecord, read_record
from services.matching.catalogue.bitmaps import as_array
from services.matching.catalogue.query import DEVELOPMENT_CAPACITY_MARGIN, SCORE_DECIMALS, Query
from services.matching.catalogue.ranking import Terms, top
from services.matching.catalogue.segment import Segment

MIN_MEMBERS = 2  # a consortium is firms acting jointly: one firm alone is a single-firm item
MEAN_CRITERIA = ("text", "certifications", "performance")  # share-weighted means of the members' values
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


class NetworkIndex:
    """Candidate consortia by id order, their members as one flat array, network by network."""

    def __init__(self, entries: Sequence[NetworkEntry]) -> None:
        entries = sorted(entries, key=lambda e: e.id.encode())
        self.n = len(entries)
        self.ids = [e.id for e in entries]
        self.names = [e.name for e in entries]
        self.positions = {network_id: i for i, network_id in enumerate(self.ids)}
        counts = np.array([len(e.member_ids) for e in entries], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        width = max([len(m) for e in entries for m in e.member_ids] + [1])
        self.member_ids = np.array([m.encode() for e in entries for m in e.member_ids], dtype=f"S{width}")
        self.network_of = np.repeat(np.arange(self.n, dtype=np.int64), counts)
        self._main_rows: tuple[Segment, np.ndarray] | None = None

    @property
    def members(self) -> int:
        return len(self.member_ids)

    def main_rows(self, main: Segment) -> np.ndarray:
        """Each member's row in ``main``, -1 where it is none (kept for the last segment asked)."""
        cached = self._main_rows
        if cached is not None and cached[0] is main:
            return cached[1]
        rows = _rows_in(main, self.member_ids)
        self._main_rows = (main, rows)
        return rows


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
    the view's parts (0 main, 1 delta) and row, or -1 when it is no live supplier."""

    segment: np.ndarray  # int8
    row: np.ndarray  # int64

    @classmethod
    def resolve(cls, index: NetworkIndex, main: Segment, removed: BitMap, delta: Segment | None) -> MemberRows:
        rows = index.main_rows(main).copy()
        segment = np.zeros(len(rows), dtype=np.int8)
        stale = rows < 0
        if removed:
            superseded = np.zeros(main.n, dtype=bool)
            superseded[as_array(removed)] = True
            stale |= superseded[np.maximum(rows, 0)] & (rows >= 0)
        at = np.flatnonzero(stale)
        rows[at] = -1
        segment[at] = -1
        if delta is not None and len(at):
            in_delta = _rows_in(delta, index.member_ids[at])
            found = in_delta >= 0
            rows[at[found]] = in_delta[found]
            segment[at[found]] = 1
        return cls(segment, rows)


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
class ConsortiumGap:
    kind: str  # "certification" (a member lacks one) or "capacity" (the members together)
    scheme: str | None = None
    member_id: str | None = None
    required: float | None = None
    available: float | None = None


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


def _mask(bitmap: BitMap, size: int) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    if bitmap:
        mask[as_array(bitmap)] = True
    return mask


class ConsortiumQuery:
    """One query's consortia over one view's segments (``parts``: segment and removed rows)."""

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

    def rank(self) -> ConsortiumRanking:
        index, query = self.index, self.query
        if index.n == 0:
            return NO_CONSORTIA
        status, capacity = self._member_status()
        counted_at = np.flatnonzero(status == QUALIFYING)
        networks = index.network_of[counted_at]
        counted = np.bincount(networks, minlength=index.n)
        total = np.bincount(networks, weights=capacity[counted_at], minlength=index.n)
        minimum = query.min_monthly_capacity
        open_ = np.ones(index.n, dtype=bool)
        open_[[index.positions[i] for i in query.exclude_ids if i in index.positions]] = False
        enough = total >= minimum if minimum is not None else np.ones(index.n, dtype=bool)
        eligible = open_ & (counted >= MIN_MEMBERS) & enough
        items = self._best(np.flatnonzero(eligible), status, capacity, query.consortium_limit, named=None)
        development_count = 0
        development: list[RankedConsortium] = []
        if query.include_development:
            named = self._named_members(status, capacity)
            upgraded_total = total + np.where(named >= 0, capacity[np.maximum(named, 0)], 0.0)
            certification = open_ & ~eligible & (named >= 0) & (counted + 1 >= MIN_MEMBERS)
            if minimum is not None:
                certification &= upgraded_total >= minimum
            short = np.zeros(index.n, dtype=bool)
            if minimum is not None:
                lowest = minimum * (1 - DEVELOPMENT_CAPACITY_MARGIN)
                short = open_ & ~eligible & ~certification & (counted >= MIN_MEMBERS) & (total >= lowest)
            candidates = np.flatnonzero(certification | short)
            development_count = len(candidates)
            named_in = np.where(certification, named, -1)
            development = self._best(candidates, status, capacity, query.development_limit, named=named_in)
        return ConsortiumRanking(int(eligible.sum()), items, development_count, development)

    def _member_status(self) -> tuple[np.ndarray, np.ndarray]:
        """Per member: whether it counts (``QUALIFYING``), fails only one required
        certificate (``ONE_CERTIFICATE_SHORT``) or neither; and its capacity in the query's unit (else 0)."""
        query, members = self.query, self.members
        per_firm = replace(query, min_monthly_capacity=None)
        status = np.zeros(self.index.members, dtype=np.int8)
        capacity = np.zeros(self.index.members, dtype=np.float64)
        for position, (segment, removed) in enumerate(self.parts):
            at = np.flatnonzero(members.segment == position)
            if not len(at):
                continue
            rows = members.row[at]
            qualifying, short, _ = segment.candidate_sets(per_firm, removed)
            state = np.where(_mask(qualifying, segment.n)[rows], QUALIFYING, 0).astype(np.int8)
            if query.include_development and short:
                state[_mask(short, segment.n)[rows]] = ONE_CERTIFICATE_SHORT
            status[at] = state
            if self.unit is not None and self.unit in segment.units:
                known = (segment.capacity_unit[rows] == segment.units.index(self.unit)) & (state > 0)
                values = segment.capacity[rows]
                capacity[at] = np.where(known & ~np.isnan(values), values, 0.0)
        return status, capacity

    def _named_members(self, status: np.ndarray, capacity: np.ndarray) -> np.ndarray:
        """Per network, the member one certificate short with the most capacity (then the lowest id), or -1."""
        named = np.full(self.index.n, -1, dtype=np.int64)
        at = np.flatnonzero(status == ONE_CERTIFICATE_SHORT)
        if len(at):
            networks = self.index.network_of[at]
            order = np.lexsort((at, -capacity[at], networks))
            networks, at = networks[order], at[order]
            first = np.flatnonzero(np.r_[True, networks[1:] != networks[:-1]])
            named[networks[first]] = at[first]
        return named

    def _best(
        self, chosen: np.ndarray, status: np.ndarray, capacity: np.ndarray, limit: int, named: np.ndarray | None
    ) -> list[RankedConsortium]:
        """The best ``limit`` of the networks ``chosen`` (ascending), scored and explained;
        ``named``: per network, the member counted besides the qualifying ones (-1: none)."""
        if not len(chosen) or not limit:
            return []
        index, weights = self.index, self.weights
        # The members scored: those that count in the chosen networks, plus the named ones.
        in_chosen = np.zeros(index.n, dtype=bool)
        in_chosen[chosen] = True
        at = np.flatnonzero((status == QUALIFYING) & in_chosen[index.network_of])
        if named is not None:
            extra = named[chosen]
            at = np.union1d(at, extra[extra >= 0])
        networks = index.network_of[at]
        member_values = self._member_values(at)
        counts = np.bincount(networks, minlength=index.n)
        totals = np.bincount(networks, weights=capacity[at], minlength=index.n)
        if self.unit is not None:
            shares = np.where(totals[networks] > 0, capacity[at] / np.maximum(totals[networks], 1e-300), 0.0)
            equal = totals[networks] <= 0
            shares[equal] = 1.0 / counts[networks][equal]
        else:
            shares = 1.0 / counts[networks]
        values: dict[str, np.ndarray] = {}
        for c in weights:
            if c in MEAN_CRITERIA:
                values[c] = np.bincount(networks, weights=shares * member_values[c], minlength=index.n)[chosen]
            elif c == "proximity":
                nearest = np.full(index.n, np.inf)
                np.minimum.at(nearest, networks, member_values[c])
                values[c] = nearest[chosen]
            else:  # capacity
                target = self.query.capacity_target
                assert target is not None
                values[c] = np.minimum(1.0, totals[chosen] / target)
        contributions = {c: np.round(weights[c] * values[c], SCORE_DECIMALS) for c in weights}
        scores = np.round(np.sum(list(contributions.values()), axis=0), SCORE_DECIMALS)
        best = top(scores, chosen, limit)  # ``chosen`` ascends with the ids
        result = []
        for i in best.tolist():
            network = int(chosen[i])
            mine = np.arange(*np.searchsorted(networks, [network, network + 1]))  # ``at`` ascends by network
            result.append(
                RankedConsortium(
                    id=index.ids[network],
                    name=index.names[network],
                    score=float(scores[i]),
                    values={c: float(values[c][i]) for c in weights},
                    contributions={c: float(contributions[c][i]) for c in weights},
                    monthly_capacity=float(totals[network]),
                    members=self._members_of(at[mine], shares[mine], {c: v[mine] for c, v in member_values.items()}),
                    gap=self._gap(network, named, totals[network]) if named is not None else None,
                )
            )
        return result

    def _member_values(self, at: np.ndarray) -> dict[str, np.ndarray]:
        """The single-firm criterion values of the members ``at``."""
        members = self.members
        values = {c: np.zeros(len(at), dtype=np.float64) for c in self.weights}
        for position, (segment, _) in enumerate(self.parts):
            mine = np.flatnonzero(members.segment[at] == position)
            if not len(mine):
                continue
            rows = members.row[at[mine]]
            unique, inverse = np.unique(rows, return_inverse=True)
            computed = segment.criterion_values(self.query, unique, self.weights, self.terms)
            for c in self.weights:
                values[c][mine] = computed[c][inverse]
        return values

    def _members_of(self, at: np.ndarray, shares: np.ndarray, values: dict[str, np.ndarray]) -> tuple[MemberScore, ...]:
        """The counted members ``at`` explained, largest share first (then by id)."""
        weights = self.weights
        mean_part = sum((weights[c] * values[c] for c in weights if c in MEAN_CRITERIA), np.zeros(len(at)))
        scored = []
        for k, member in enumerate(at.tolist()):
            segment, row = self.parts[int(self.members.segment[member])][0], int(self.members.row[member])
            capacity = float(segment.capacity[row])
            known = not np.isnan(capacity)
            scored.append(
                MemberScore(
                    id=self.index.member_ids[member].decode(),
                    name=segment.names[row],
                    monthly_capacity=capacity if known else None,
                    capacity_unit=(segment.units[int(segment.capacity_unit[row])] or None) if known else None,
                    share=round(float(shares[k]), SCORE_DECIMALS),
                    contribution=round(float(shares[k] * mean_part[k]), SCORE_DECIMALS),
                    values={c: float(values[c][k]) for c in weights},
                )
            )
        scored.sort(key=lambda m: (-m.share, m.id.encode()))
        return tuple(scored)

    def _gap(self, network: int, named: np.ndarray, total: float) -> ConsortiumGap:
        member = int(named[network])
        if member < 0:
            return ConsortiumGap("capacity", required=self.query.min_monthly_capacity, available=float(total))
        segment, row = self.parts[int(self.members.segment[member])][0], int(self.members.row[member])
        day = self.query.on_date.toordinal()
        scheme = next(s for s in self.query.required_certifications if row not in segment.valid_certificates(s, day)[0])
        return ConsortiumGap("certification", scheme=scheme, member_id=self.index.member_ids[member].decode())
