"""Property tests: consortium shortlists equal a brute-force reference, exactly.

The reference is written from the contract in ``catalogue/consortia.py`` with plain
loops over networks and their members, reusing the single-firm reference's checks and
criterion values (``test_exactness``), never the engine's indexes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.geo import haversine_km
from services.matching.catalogue import consortia
from services.matching.catalogue.catalogue import View, build_view, run_query, with_networks
from services.matching.catalogue.consortia import MIN_MEMBERS, ConsortiumGap, NetworkEntry, NetworkIndex
from services.matching.catalogue.query import DEVELOPMENT_CAPACITY_MARGIN, Query
from services.matching.catalogue.records import Certificate, SupplierRecord
from services.matching.catalogue.segment import ROUGH_DISTANCE_LIMIT_KM, ROUGH_MARGIN_KM, ROUGH_MARGIN_SHARE
from tests.matching.test_exactness import (
    SCHEMES,
    SETTINGS,
    _same_unit,
    _valid,
    bare_supplier,
    catalogues,
    changed_views,
    passes_categorical,
    queries,
    reference_values,
)

MEAN = ("text", "certifications", "performance", "inclusion")
LOOSENED = ("isic_codes", "hs_codes", "countries", "subdivisions", "cluster_ids", "size_classes")
NETWORK_IDS = [f"net_{i:03d}" for i in range(8)]


@st.composite
def networks(draw: Any, records: list[SupplierRecord]) -> list[NetworkEntry]:
    """A few networks over the catalogue's firms, some with members that are no supplier."""
    firms = [r.id for r in records] + ["frm_gone01", "frm_gone02"]
    entries = []
    for network_id in draw(st.lists(st.sampled_from(NETWORK_IDS), max_size=6, unique=True)):
        members = draw(st.lists(st.sampled_from(firms), min_size=1, max_size=10, unique=True))
        entries.append(NetworkEntry(network_id, f"Network {network_id}", None, tuple(sorted(members))))
    return entries


@st.composite
def consortium_queries(draw: Any) -> Query:
    q: Query = draw(queries())
    # Most drawn queries are narrow enough to leave few networks two qualifying members:
    # loosen some of them, so eligible and development consortia are common.
    loosened = LOOSENED if draw(st.booleans()) else draw(st.sets(st.sampled_from(LOOSENED)))
    excluded = draw(st.lists(st.sampled_from(NETWORK_IDS), max_size=1))
    # Minimums that several members reach together, or nearly.
    minimum = draw(st.sampled_from([q.min_monthly_capacity, None, 1100.0, 1700.0, 2600.0]))
    loose: Query = replace(
        q,
        include_development=q.include_development or draw(st.booleans()),
        min_monthly_capacity=minimum,
        capacity_unit=q.capacity_unit or ("pieces" if minimum is not None else None),
        include_consortia=True,
        consortium_limit=draw(st.integers(1, 6)),
        exclude_ids=(*q.exclude_ids, *excluded),
        **dict.fromkeys(loosened, ()),  # type: ignore[arg-type]
    )
    if loosened == LOOSENED:  # loosened whole: no inclusion class required either (now and then otherwise)
        loose = replace(loose, require_women_owned=False, require_women_led=False, require_youth_led=False)
    return loose


def reference(records: list[SupplierRecord], entries: list[NetworkEntry], text: Any, q: Query) -> dict[str, Any]:
    by_id = {r.id: r for r in records}
    query_vector = text.vectorizer.transform([q.description or ""])
    weights = q.active_weights(text_active=bool(q.description) and query_vector.nnz > 0)
    unit = (q.capacity_unit or "").strip().lower() or None

    def missing(s: SupplierRecord) -> list[str] | None:
        if not passes_categorical(s, q):
            return None
        return [c for c in q.required_certifications if not _valid(s, c, q.on_date)]

    def capacity(s: SupplierRecord) -> float:
        return s.monthly_capacity if _same_unit(s, q.capacity_unit) and s.monthly_capacity is not None else 0.0

    def scored(entry: NetworkEntry, counted: list[SupplierRecord], gap: Any) -> tuple[Any, ...]:
        counted = sorted(counted, key=lambda s: s.id)
        total = sum(capacity(s) for s in counted)
        if unit is not None and total > 0:
            shares = [capacity(s) / total for s in counted]
        else:
            shares = [1.0 / len(counted)] * len(counted)
        member_values = [reference_values(s, text, q, weights, query_vector) for s in counted]
        values: dict[str, float] = {}
        for c in weights:
            if c in MEAN:
                values[c] = sum(share * v[c] for share, v in zip(shares, member_values, strict=True))
            elif c == "proximity":
                values[c] = min(v[c] for v in member_values)
            else:
                assert q.capacity_target is not None
                values[c] = min(1.0, total / q.capacity_target)
        # numpy's rounding, as the engine's (and the single-firm reference's): Python's round
        # differs on a value a hair below a half (0.1960546875 in binary).
        score = float(np.round(sum(float(np.round(weights[c] * values[c], 9)) for c in weights), 9))
        members = []
        for s, share, v in zip(counted, shares, member_values, strict=True):
            part = sum(weights[c] * v[c] for c in weights if c in MEAN)
            members.append((s.id, float(np.round(share, 9)), float(np.round(share * part, 9))))
        members.sort(key=lambda m: (-m[1], m[0]))
        return score, entry.id, total, tuple(members), gap

    eligible, development = [], []
    for entry in sorted(entries, key=lambda e: e.id):
        if entry.id in q.exclude_ids:
            continue
        members = [by_id[m] for m in entry.member_ids if m in by_id]
        states = {s.id: missing(s) for s in members}
        counted = [s for s in members if states[s.id] == []]
        total = sum(capacity(s) for s in counted)
        minimum = q.min_monthly_capacity
        if len(counted) >= MIN_MEMBERS and (minimum is None or total >= minimum):
            eligible.append(scored(entry, counted, None))
            continue
        if not q.include_development:
            continue
        short = [s for s in members if (m := states[s.id]) is not None and len(m) == 1]
        named = min(short, key=lambda s: (-capacity(s), s.id), default=None)
        if (
            named is not None
            and len(counted) + 1 >= MIN_MEMBERS
            and (minimum is None or total + capacity(named) >= minimum)
        ):
            scheme = states[named.id][0]  # type: ignore[index]
            development.append(scored(entry, [*counted, named], ("certification", scheme, named.id)))
        elif (
            minimum is not None and len(counted) >= MIN_MEMBERS and total >= minimum * (1 - DEVELOPMENT_CAPACITY_MARGIN)
        ):
            development.append(scored(entry, counted, ("capacity", minimum, total)))
    eligible.sort(key=lambda e: (-e[0], e[1]))
    development.sort(key=lambda e: (-e[0], e[1]))
    return {
        "eligible": len(eligible),
        "items": [e[1:4] + (e[0],) for e in eligible[: q.consortium_limit]],
        "development": len(development),
        "gaps": [e[1:] + (e[0],) for e in development[: q.development_limit]],
    }


def _gap(gap: ConsortiumGap | None) -> tuple[Any, ...]:
    assert gap is not None
    if gap.kind == "certification":
        return gap.kind, gap.scheme, gap.member_id
    return gap.kind, gap.required, gap.available


def engine(view: View, q: Query) -> dict[str, Any]:
    consortia = run_query(view, q).consortia
    assert consortia is not None

    def members(item: Any) -> tuple[Any, ...]:
        return tuple((m.id, m.share, m.contribution) for m in item.members)

    return {
        "eligible": consortia.eligible_count,
        "items": [(c.id, c.monthly_capacity, members(c), c.score) for c in consortia.items],
        "development": consortia.development_count,
        "gaps": [(c.id, c.monthly_capacity, members(c), _gap(c.gap), c.score) for c in consortia.development],
    }


@SETTINGS
@given(data=st.data(), records=catalogues(), query_list=st.lists(consortium_queries(), min_size=1, max_size=3))
def test_consortium_shortlists_equal_the_brute_force_reference(
    data: Any, records: list[SupplierRecord], query_list: list[Query]
) -> None:
    entries = data.draw(networks(records))
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex(entries))
    for q in query_list:
        assert engine(view, q) == reference(records, entries, view.text, q)


@SETTINGS
@given(
    records=catalogues(),
    changes=st.lists(st.tuples(st.integers(0, 45), st.booleans()), max_size=6),
    q=consortium_queries(),
    data=st.data(),
    named_from_networks=st.booleans(),
)
def test_consortium_shortlists_stay_exact_across_updates(
    records: list[SupplierRecord], changes: list[tuple[int, bool]], q: Query, data: Any, named_from_networks: bool
) -> None:
    """Supplier changes go to the delta segment and networks change between them."""
    with named_read(named_from_networks):
        for view, current in changed_views(records, changes, data):
            entries = data.draw(networks(current))
            changed = with_networks(view, NetworkIndex(entries), view.seq)
            assert engine(changed, q) == reference(current, entries, view.text, q)


def named_read(from_networks: bool) -> Any:
    """Development candidates' named members read from the networks' side, or the rows'."""
    return patch.object(consortia, "NETWORK_READ_COST", 0 if from_networks else 10**9)


@contextmanager
def bounded(first: int) -> Iterator[None]:
    """Every candidate set is bounded first (``ConsortiumQuery._contenders``), and only the
    ``first`` best-bounded networks set the bar: small catalogues take the path broad queries take."""
    with (
        patch.object(consortia, "EXACT_NETWORKS", 0),
        patch.object(consortia, "FIRST_SCORED", first),
        patch.object(consortia, "FIRST_PER_LIMIT", 1),
    ):
        yield


@SETTINGS
@given(
    data=st.data(),
    records=catalogues(),
    query_list=st.lists(consortium_queries(), min_size=1, max_size=3),
    first=st.integers(1, 4),
    named_from_networks=st.booleans(),
)
def test_bounded_consortium_ranking_equals_the_reference(
    data: Any, records: list[SupplierRecord], query_list: list[Query], first: int, named_from_networks: bool
) -> None:
    entries = data.draw(networks(records))
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex(entries))
    with bounded(first), named_read(named_from_networks):
        for q in query_list:
            assert engine(view, q) == reference(records, entries, view.text, q)


@st.composite
def tied_networks(draw: Any, records: list[SupplierRecord]) -> list[NetworkEntry]:
    """Networks sharing one of a few member sets: those sharing one tie on every bound and score."""
    firms = [r.id for r in records] + ["frm_gone01", "frm_gone02"]
    bases = draw(
        st.lists(st.lists(st.sampled_from(firms), min_size=2, max_size=6, unique=True), min_size=1, max_size=3)
    )
    entries = []
    for network_id in draw(st.lists(st.sampled_from(NETWORK_IDS), min_size=2, max_size=8, unique=True)):
        members = tuple(sorted(draw(st.sampled_from(bases))))
        entries.append(NetworkEntry(network_id, f"Network {network_id}", None, members))
    return entries


@contextmanager
def exact_bounds_higher_ids_first() -> Iterator[None]:
    """Networks bounded by their exact scores, plus a hair that grows with the id: the
    tightest bounds there are, so the k-th score found equals the bounds of the networks
    tied with it, and of those the higher ids are scored first. An early stop that left
    out a network whose bound equals the k-th score would miss a lower id tied with it."""
    best_bounded = consortia.ConsortiumQuery._best_bounded

    def tight(self: consortia.ConsortiumQuery, eligible: np.ndarray, bound: np.ndarray, *args: Any) -> Any:
        limit, facts_of = args
        exact = self._evaluate(eligible, *facts_of(eligible)).scores
        return best_bounded(self, eligible, exact + 1e-12 * np.arange(len(eligible)), *args)

    with patch.object(consortia.ConsortiumQuery, "_best_bounded", tight):
        yield


@SETTINGS
@given(
    records=catalogues(),
    changes=st.lists(st.tuples(st.integers(0, 45), st.booleans()), max_size=4),
    query_list=st.lists(consortium_queries(), min_size=1, max_size=3),
    data=st.data(),
)
def test_the_early_stop_scores_networks_tied_with_the_k_th_score(
    records: list[SupplierRecord], changes: list[tuple[int, bool]], query_list: list[Query], data: Any
) -> None:
    """Networks with the same members tie on their scores; bounded by their exact scores
    (``exact_bounds_higher_ids_first``), with one network scored first, the k-th score
    found meets the next networks' bounds, and the ranking must still be the reference's
    (ties by id), across supplier changes (figures kept with the main segment and
    recomputed for the networks a view's delta changes)."""
    entries = data.draw(tied_networks(records))
    index = NetworkIndex(entries)
    with bounded(1), exact_bounds_higher_ids_first():
        for view, current in changed_views(records, changes, data):
            changed = with_networks(view, index, view.seq)
            for q in query_list:
                assert engine(changed, q) == reference(current, entries, view.text, q)


@SETTINGS
@given(records=catalogues(), data=st.data(), resolved_before=st.booleans())
def test_a_changed_index_equals_one_built_from_the_new_networks(
    records: list[SupplierRecord], data: Any, resolved_before: bool
) -> None:
    """``NetworkIndex.changed`` (what the catalogue applies per feed page) keeps the
    unchanged networks' arrays and main-segment rows; it must equal a rebuild."""
    before, after = data.draw(networks(records)), data.draw(networks(records))
    main = build_view(records, seq=1, epoch=1).main
    index = NetworkIndex(before)
    if resolved_before:  # the main segment's rows are carried over, not looked up again
        index.in_main(main)
    old, new = {e.id: e for e in before}, {e.id: e for e in after}
    changes = {i: new.get(i) for i in old.keys() | new.keys() if old.get(i) != new.get(i)}
    changed, rebuilt = index.changed(changes), NetworkIndex(after)
    assert (changed.ids, changed.names) == (rebuilt.ids, rebuilt.names)
    for name in ("offsets", "member_ids", "network_of"):
        assert getattr(changed, name).tolist() == getattr(rebuilt, name).tolist(), name
    ours, theirs = changed.in_main(main), rebuilt.in_main(main)
    for column in ("rows", "capacity", "unit", "performance"):
        np.testing.assert_array_equal(getattr(ours, column), getattr(theirs, column), err_msg=column)
    for part in ("slots", "starts", "memberships", "networks"):
        np.testing.assert_array_equal(getattr(ours.by_row, part), getattr(theirs.by_row, part), err_msg=part)
    assert ours.by_row.rows == theirs.by_row.rows


def _firm(firm_id: str, latitude: float, performance: float) -> SupplierRecord:
    return bare_supplier(
        firm_id, latitude=latitude, longitude=latitude, quality_score=performance, on_time_delivery_rate=performance
    )


def test_a_network_beyond_the_proximity_reference_is_bounded_at_zero_proximity() -> None:
    """Members farther than the reference distance score 0 for proximity, never less: a
    bound below that would leave out a far network that ranks on its other criteria."""
    records = [
        _firm("frm_near1", 0.01, 1.0),
        _firm("frm_near2", 0.01, 1.0),
        _firm("frm_mid1", 2.5, 0.0),  # about 390 km from the point
        _firm("frm_mid2", 2.5, 0.0),
        _firm("frm_far1", 20.0, 0.9),  # about 3,100 km
        _firm("frm_far2", 20.0, 0.9),
    ]
    entries = [
        NetworkEntry("net_near", "Near", None, ("frm_near1", "frm_near2")),
        NetworkEntry("net_mid", "Middle", None, ("frm_mid1", "frm_mid2")),
        NetworkEntry("net_far", "Far", None, ("frm_far1", "frm_far2")),
    ]
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex(entries))
    q = Query(
        on_date=date(2026, 6, 30),
        latitude=0.0,
        longitude=0.0,
        weights={"proximity": 0.5, "performance": 0.5},
        include_consortia=True,
        consortium_limit=2,
    )
    with bounded(1):  # the two best bounds are scored first; the far network must follow
        ranked = engine(view, q)
    assert [item[0] for item in ranked["items"]] == ["net_near", "net_far"]
    assert ranked == reference(records, entries, view.text, q)


def _evaluated(view: View, q: Query) -> tuple[dict[str, Any], set[str]]:
    """The engine's consortia for ``q`` on every path bounded (only the best-bounded network
    scored first), and the networks it scored to find them."""
    scored: set[str] = set()
    evaluate = consortia.ConsortiumQuery._evaluate

    def counting(self: consortia.ConsortiumQuery, chosen: np.ndarray, *args: Any) -> Any:
        scored.update(self.index.ids[i] for i in chosen.tolist())
        return evaluate(self, chosen, *args)

    with bounded(1), patch.object(consortia.ConsortiumQuery, "_evaluate", counting):
        return engine(view, q), scored


def test_members_failing_a_query_add_nothing_to_their_network_s_text_bound() -> None:
    """Where most members count, a network's text bound is its counted members' similarity:
    members failing the query (here: in another country) do not lift it, so a network
    whose only matching descriptions are its failing members' is never scored."""
    records = [
        bare_supplier("frm_a1"),
        bare_supplier("frm_a2"),
        bare_supplier("frm_a3", country="PE", capabilities="denim"),
        bare_supplier("frm_a4", country="PE", capabilities="denim"),
        bare_supplier("frm_b1", capabilities="denim shirts"),
        bare_supplier("frm_b2", capabilities="denim shirts"),
    ]
    entries = [
        NetworkEntry("net_a", "A", None, ("frm_a1", "frm_a2", "frm_a3", "frm_a4")),
        NetworkEntry("net_b", "B", None, ("frm_b1", "frm_b2")),
    ]
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex(entries))
    q = Query(
        on_date=date(2026, 6, 30), countries=("EC",), description="denim", include_consortia=True, consortium_limit=1
    )
    ranked, scored = _evaluated(view, q)
    assert [item[0] for item in ranked["items"]] == ["net_b"]
    assert ranked == reference(records, entries, view.text, q)
    assert scored == {"net_b"}


def test_where_few_members_count_a_network_s_proximity_bound_is_its_farthest_counted_member_s() -> None:
    """Where few members count, the proximity bound is read from the counted members
    themselves: a network with one member at the point and one far off is bounded by the
    far one, so it is not scored before a network nearer as a whole."""
    records = [
        _firm("frm_w1", 0.01, 0.5),  # at the point
        _firm("frm_w2", 3.0, 0.5),  # about 470 km away
        _firm("frm_m1", 1.0, 0.5),  # about 157 km
        _firm("frm_m2", 1.0, 0.5),
        *(bare_supplier(f"frm_p{i}", country="PE") for i in range(4)),  # most member rows fail
    ]
    entries = [
        NetworkEntry("net_wide", "Wide", None, ("frm_w1", "frm_w2")),
        NetworkEntry("net_mid", "Middle", None, ("frm_m1", "frm_m2")),
        NetworkEntry("net_pad", "Elsewhere", None, tuple(f"frm_p{i}" for i in range(4))),
    ]
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex(entries))
    q = Query(
        on_date=date(2026, 6, 30),
        countries=("EC",),
        latitude=0.0,
        longitude=0.0,
        weights={"proximity": 0.5, "performance": 0.5},
        include_consortia=True,
        consortium_limit=1,
    )
    ranked, scored = _evaluated(view, q)
    assert [item[0] for item in ranked["items"]] == ["net_mid"]
    assert ranked == reference(records, entries, view.text, q)
    assert scored == {"net_mid"}


@SETTINGS
@given(
    points=st.lists(st.tuples(st.floats(-89.0, 89.0), st.floats(-180.0, 180.0)), min_size=1, max_size=20),
    at=st.tuples(st.floats(-89.0, 89.0), st.floats(-180.0, 180.0)),
    reference=st.sampled_from([None, 0.5, 300.0, 4999.0, 8000.0]),
)
def test_proximity_ceilings_are_never_below_the_proximity_scored(
    points: list[tuple[float, float]], at: tuple[float, float], reference: float | None
) -> None:
    """The rough (float32) proximity bounds of the members that count are at least the
    float64 values shortlists score, anywhere on the globe, and within the rough margin."""
    records = [bare_supplier(f"frm_g{i:02d}", latitude=lat, longitude=lon) for i, (lat, lon) in enumerate(points)]
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex([]))
    q = Query(on_date=date(2026, 6, 30), latitude=at[0], longitude=at[1], max_distance_km=reference)
    weights, terms = {"proximity": 1.0}, view.text.query_vector(None)
    rows = np.arange(len(records))
    engine_query = consortia.ConsortiumQuery(view.networks, view.members, view.parts, q, weights, terms)
    ceilings = engine_query._proximity_ceilings(view.main, rows)
    scored = view.main.criterion_values(q, rows, weights, terms)["proximity"]
    assert (ceilings >= scored).all()
    assert (ceilings - scored <= 1.0 / (reference or 500.0) + 1e-12).all()


@SETTINGS
@given(
    points=st.lists(st.tuples(st.floats(-89.0, 89.0), st.floats(-180.0, 180.0)), min_size=1, max_size=20),
    at=st.tuples(st.floats(-89.0, 89.0), st.floats(-180.0, 180.0)),
)
def test_anchor_distances_are_never_above_the_distances_scored(
    points: list[tuple[float, float]], at: tuple[float, float]
) -> None:
    """The networks' anchors are measured with the float32 haversine less its margin (the
    float64 one beyond 5,000 km): never farther than the float64 distance shortlists
    score, anywhere on the globe, and within the margin of it."""
    records = [bare_supplier(f"frm_g{i:02d}", latitude=lat, longitude=lon) for i, (lat, lon) in enumerate(points)]
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex([]))
    q = Query(on_date=date(2026, 6, 30), latitude=at[0], longitude=at[1])
    engine_query = consortia.ConsortiumQuery(
        view.networks, view.members, view.parts, q, {}, view.text.query_vector(None)
    )
    latitude, longitude = view.main.latitude.astype(np.float64), view.main.longitude.astype(np.float64)
    lower = engine_query._distances_at_least(latitude, longitude)
    exact = haversine_km(latitude, longitude, at[0], at[1])
    assert (lower <= exact).all()
    assert (exact - lower <= 2 * (ROUGH_MARGIN_KM + ROUGH_MARGIN_SHARE * ROUGH_DISTANCE_LIMIT_KM)).all()


def _certified(firm_id: str, capacity: float, *, certified: bool = True, **fields: Any) -> SupplierRecord:
    certificates = (Certificate("iso_9001", None, None),) if certified else ()
    return bare_supplier(firm_id, monthly_capacity=capacity, capacity_unit="kg", certificates=certificates, **fields)


def test_a_capacity_that_reaches_a_threshold_exactly_is_compared_exactly() -> None:
    """Where most member rows count, a network's capacity comes from its live members'
    sum less its failing members' (here 0.1 + 0.2 + 300,000 - 300,000, which is below
    0.1 + 0.2 in floating point). A total that close to a threshold the query compares it
    with (the minimum, the minimum with the named member's capacity, the development
    margin's lowest) is summed again from the network's own members, as the contract adds them."""
    records = [
        _certified("frm_a1", 0.1),
        _certified("frm_a2", 0.2),
        _certified("frm_a3", 300_000.0, country="PE"),
        _certified("frm_b1", 0.1),
        _certified("frm_b2", 0.2, certified=False),  # one certificate short: named
        _certified("frm_b3", 300_000.0, country="PE"),
        *(_certified(f"frm_p{i}", 0.0) for i in range(4)),  # most member rows count
    ]
    entries = [
        NetworkEntry("net_a", "A", None, ("frm_a1", "frm_a2", "frm_a3")),
        NetworkEntry("net_b", "B", None, ("frm_b1", "frm_b2", "frm_b3")),
        NetworkEntry("net_pad", "Pad", None, tuple(f"frm_p{i}" for i in range(4))),
    ]
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex(entries))
    asked = Query(
        on_date=date(2026, 6, 30),
        countries=("EC",),
        required_certifications=("iso_9001",),
        capacity_unit="kg",
        include_consortia=True,
        include_development=True,
    )
    reached = replace(asked, min_monthly_capacity=0.1 + 0.2)
    assert 0.1 + 0.2 + 300_000.0 - 300_000.0 < reached.min_monthly_capacity  # type: ignore[operator]
    ranked = engine(view, reached)
    assert [item[0] for item in ranked["items"]] == ["net_a"]
    assert [(gap[0], gap[3][0]) for gap in ranked["gaps"]] == [("net_b", "certification")]
    assert ranked == reference(records, entries, view.text, reached)
    nearly = replace(asked, min_monthly_capacity=0.4)  # its lowest, 0.4 * 0.75, is 0.1 + 0.2
    assert 0.4 * (1 - DEVELOPMENT_CAPACITY_MARGIN) == 0.1 + 0.2
    ranked = engine(view, nearly)
    assert (ranked["eligible"], [(gap[0], gap[3][0]) for gap in ranked["gaps"]]) == (0, [("net_a", "capacity")])
    assert ranked == reference(records, entries, view.text, nearly)


def test_a_development_candidate_s_bound_counts_its_named_member() -> None:
    """A network one certificate short is scored with its named member counted: its bound
    is the larger of its counting members' and the named member's value, so a network
    whose counting member performs poorly but whose named member performs well is scored
    first, and the weaker candidate after it never is."""
    records = [
        _firm("frm_x1", 0.0, 0.0),
        replace(_firm("frm_x2", 0.0, 1.0), certificates=()),  # named: the consortium's best
        _firm("frm_y1", 0.0, 0.3),
        replace(_firm("frm_y2", 0.0, 0.3), certificates=()),
    ]
    records = [
        replace(r, certificates=(Certificate("iso_9001", None, None),)) if r.id in ("frm_x1", "frm_y1") else r
        for r in records
    ]
    entries = [
        NetworkEntry("net_x", "X", None, ("frm_x1", "frm_x2")),
        NetworkEntry("net_y", "Y", None, ("frm_y1", "frm_y2")),
    ]
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex(entries))
    q = Query(
        on_date=date(2026, 6, 30),
        required_certifications=("iso_9001",),
        weights={"performance": 1.0},
        include_consortia=True,
        include_development=True,
        development_limit=1,
    )
    ranked, scored = _evaluated(view, q)
    assert [gap[0] for gap in ranked["gaps"]] == ["net_x"]
    assert ranked == reference(records, entries, view.text, q)
    assert scored == {"net_x"}


@pytest.mark.parametrize("from_networks", [True, False])
def test_the_named_member_has_the_most_capacity_then_the_lowest_id(from_networks: bool) -> None:
    """Of the members one certificate short, the one with the most capacity is named, the
    lowest id among equals; where none can make up the minimum the network is no
    candidate. Read from the rows short, or probed from the networks' side in their
    members' order of capacity (which stops at a member below what the network lacks)."""
    records = [
        _certified("frm_t1", 500.0),
        _certified("frm_t2", 100.0, certified=False),
        _certified("frm_t3", 700.0, certified=False),
        _certified("frm_t4", 700.0, certified=False),  # as much as t3: t3 is named
        _certified("frm_f1", 500.0),
        _certified("frm_f2", 499.0, certified=False),  # 1 short of the minimum with f1: none named
        _certified("frm_g1", 500.0),
        _certified("frm_g2", 400.0, certified=False),
        _certified("frm_g3", 500.0, certified=False),  # exactly what g1 lacks: named
    ]
    entries = [
        NetworkEntry("net_f", "F", None, ("frm_f1", "frm_f2")),
        NetworkEntry("net_g", "G", None, ("frm_g1", "frm_g2", "frm_g3")),
        NetworkEntry("net_t", "T", None, ("frm_t1", "frm_t2", "frm_t3", "frm_t4")),
    ]
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex(entries))
    q = Query(
        on_date=date(2026, 6, 30),
        required_certifications=("iso_9001",),
        min_monthly_capacity=1000.0,
        capacity_unit="kg",
        include_consortia=True,
        include_development=True,
    )
    with named_read(from_networks):
        ranked = engine(view, q)
    assert sorted((gap[0], gap[3][2]) for gap in ranked["gaps"]) == [("net_g", "frm_g3"), ("net_t", "frm_t3")]
    assert ranked == reference(records, entries, view.text, q)


@SETTINGS
@given(
    records=catalogues(),
    changes=st.lists(st.tuples(st.integers(0, 45), st.booleans()), max_size=6),
    q=consortium_queries(),
    scheme=st.sampled_from(SCHEMES),
    data=st.data(),
    named_from_networks=st.booleans(),
)
def test_named_members_stay_exact_across_supplier_changes(
    records: list[SupplierRecord],
    changes: list[tuple[int, bool]],
    q: Query,
    scheme: str,
    data: Any,
    named_from_networks: bool,
) -> None:
    """Development queries requiring one scheme, without other filters, so that many
    members are one certificate short: the named members, read from the rows short or
    probed from the networks' side in the members' order of capacity (kept with the main
    segment, recomputed for the networks a view's delta changes), are the reference's."""
    q = replace(
        q,
        required_certifications=(scheme,),
        include_development=True,
        max_distance_km=None,
        require_women_owned=False,
        require_women_led=False,
        require_youth_led=False,
        **dict.fromkeys(LOOSENED, ()),  # type: ignore[arg-type]
    )
    entries = data.draw(networks(records))
    index = NetworkIndex(entries)
    with named_read(named_from_networks):
        for view, current in changed_views(records, changes, data):
            changed = with_networks(view, index, view.seq)
            assert engine(changed, q) == reference(current, entries, view.text, q)


@SETTINGS
@given(data=st.data(), records=catalogues(), query_list=st.lists(consortium_queries(), min_size=2, max_size=4))
def test_a_figures_budget_of_nothing_keeps_one_figure_and_answers_exactly(
    data: Any, records: list[SupplierRecord], query_list: list[Query]
) -> None:
    """``MATCHING_CONSORTIUM_FIGURES_BYTES`` caps the figures a view keeps: at 0 each new
    kind replaces the last, and answers are the reference's all the same."""
    entries = data.draw(networks(records))
    index = NetworkIndex(entries, figures_bytes=0).changed({"net_none": None})  # carried by changes
    view = build_view(records, seq=1, epoch=1, networks=index)
    with bounded(1):
        for q in query_list:
            assert engine(view, q) == reference(records, entries, view.text, q)
            assert len([f for f in view.members.figures.values() if consortia._nbytes(f)]) <= 1


@SETTINGS
@given(
    records=catalogues(),
    changes=st.lists(st.tuples(st.integers(0, 45), st.booleans()), min_size=1, max_size=6),
    query_list=st.lists(consortium_queries(), min_size=1, max_size=3),
    data=st.data(),
    named_from_networks=st.booleans(),
)
def test_figures_kept_with_the_main_segment_stay_exact_across_supplier_changes(
    records: list[SupplierRecord],
    changes: list[tuple[int, bool]],
    query_list: list[Query],
    data: Any,
    named_from_networks: bool,
) -> None:
    """One network index over every view: the main segment's figures, computed by the
    first view's queries, are kept with it, and each later view (suppliers changed in its
    delta) recomputes only the networks whose members changed. Bounds from them (and the
    members' order by capacity, where named members are probed from the networks' side)
    must still leave the answers the reference's."""
    entries = data.draw(networks(records))
    index = NetworkIndex(entries)
    with bounded(1), named_read(named_from_networks):
        for view, current in changed_views(records, changes, data):
            changed = with_networks(view, index, view.seq)
            for q in query_list:
                assert engine(changed, q) == reference(current, entries, view.text, q)
                _assert_in_row_order(changed.members)
    if entries:  # computed for the main segment, and kept with it
        assert index.in_main(view.main).figures


def _assert_in_row_order(members: consortia.MemberRows) -> None:
    """Every figure kept for ``members`` (the view's own, merged from the main segment's
    where its delta changes members) reads, in row order, its own values."""
    kept = [f for k in members.figures.values() for f in (k if isinstance(k, tuple) else (k,))]
    for figure in (f for f in kept if isinstance(f, consortia.MemberFigure)):
        assert len(figure.rows) == len(members.by_row)
        for rows, by_row in zip(figure.rows, members.by_row, strict=True):
            assert np.array_equal(rows, figure.values[by_row.memberships])


@given(data=st.data(), records=catalogues(), query_list=st.lists(consortium_queries(), min_size=1, max_size=3))
def test_figures_another_revision_keeps_beside_these_are_never_read(
    data: Any, records: list[SupplierRecord], query_list: list[Query]
) -> None:
    """``bench/consortia.py --baseline`` runs another revision's engine on the same view:
    its figures (another layout, under its own keys) share ``MemberRows.figures``."""
    entries = data.draw(networks(records))
    view = build_view(records, seq=1, epoch=1, networks=NetworkIndex(entries))
    foreign = object()
    for q in query_list:
        unit = (q.capacity_unit or "").strip().lower()
        view.members.figures.update({"live": foreign, ("capacity", unit): foreign, "anchors": foreign})
        with bounded(1):
            assert engine(view, q) == reference(records, entries, view.text, q)
