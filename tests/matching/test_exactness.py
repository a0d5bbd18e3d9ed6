"""Property tests: the engine's shortlists equal a brute-force reference, exactly.

The reference below is written from the documented formula (``catalogue/query.py``)
without using the engine's indexes: plain loops over every supplier. Only the fitted
TF-IDF model is shared, because it is part of the formula's definition.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from services.common.geo import haversine_km
from services.matching.catalogue import ranking, segment, text
from services.matching.catalogue.bitmaps import as_array
from services.matching.catalogue.card import Card
from services.matching.catalogue.catalogue import View, build_view, run_query, with_delta
from services.matching.catalogue.query import (
    CRITERIA,
    DEVELOPMENT_CAPACITY_MARGIN,
    EARTH_RADIUS_KM,
    INCLUSION_CLASSES,
    PERFORMANCE_PRIOR,
    PROXIMITY_REFERENCE_KM,
    Query,
)
from services.matching.catalogue.ranking import Gap
from services.matching.catalogue.records import Certificate, SupplierRecord

ON = date(2026, 6, 1)
PLACES = [
    ("EC", "EC-I", 0.33, -78.21),
    ("EC", "EC-P", -0.18, -78.47),
    ("IN", "IN-TN", 11.1, 77.34),
    ("IN", "IN-PB", 30.9, 75.85),
    ("IN", None, 20.0, 78.0),
]
ISIC = ["1410", "1430", "1050", "1061", "2511", "1412"]
HS = ["6109", "610910", "6110", "0401", "7308", "6203"]
SCHEMES = ["iso-9001", "oeko-tex-100", "haccp"]
WORDS = ["cotton", "knitted", "sweaters", "milk", "cheese", "steel", "frames", "printing", "denim", "organic"]
CLUSTERS = ["clu_a", "clu_b", "clu_c"]
SHARES = st.none() | st.integers(0, 10000).map(lambda n: n / 10000)
FEW_SHARES = st.sampled_from([None, 0.5, 0.9, 1.0])  # many suppliers tie on performance


# Strategies are built once: building one inside a composite validates it on every draw,
# which made generating catalogues most of these tests' time.
PLACE = st.sampled_from(PLACES)
BOOL = st.booleans()
SCHEME_LIST = st.lists(st.sampled_from(SCHEMES), max_size=3)
VALID_FROM = st.integers(-400, 30)
VALID_UNTIL = st.integers(-30, 400)
SCORECARDS = st.sampled_from([0, 0, 3, 7, 70000])  # 70000: past the column's cap
CAPACITY = st.none() | st.sampled_from(
    [0.0, 500.0, 750.0, 800.0, 900.0, 1000.0, 1000.0, 1024.0, 1500.5, 2048.0, 20000.0]
)
ID_SUFFIX = st.sampled_from("ABC")
OFFSET = st.floats(-2, 2)
SIZE_CLASS = st.sampled_from(["micro", "small", "medium", "large"])
ISIC_LIST = st.lists(st.sampled_from(ISIC), min_size=1, max_size=2, unique=True)
HS_LIST = st.lists(st.sampled_from(HS), max_size=2, unique=True)
UNIT = st.sampled_from(["pieces", "kg", "Pieces"])
CAPABILITIES = st.lists(st.sampled_from(WORDS), max_size=6)
CLUSTER_LIST = st.lists(st.sampled_from(CLUSTERS), max_size=2, unique=True)
# Attested inclusion classes, in INCLUSION_CLASSES' order (a women-owned firm is often women-led too).
INCLUSION = st.sampled_from([(), (), ("women_owned", "women_led"), ("women_led",), ("youth_led",), INCLUSION_CLASSES])


@st.composite
def suppliers(draw: Any, index: int, shares: st.SearchStrategy[float | None] = SHARES) -> SupplierRecord:
    country, subdivision, lat, lon = draw(PLACE)
    located = draw(BOOL)
    certificates = tuple(
        Certificate(
            scheme,
            ON + timedelta(days=draw(VALID_FROM)) if draw(BOOL) else None,
            ON + timedelta(days=draw(VALID_UNTIL)) if draw(BOOL) else None,
        )
        for scheme in draw(SCHEME_LIST)
    )
    scorecards = draw(SCORECARDS)
    capacity = draw(CAPACITY)
    return SupplierRecord(
        id=f"frm_{index:04d}{draw(ID_SUFFIX)}",
        name=f"Firm {index}",
        agency_id="agy_1",
        country=country,
        subdivision=subdivision,
        latitude=lat + draw(OFFSET) if located else None,
        longitude=lon + draw(OFFSET) if located else None,
        size_class=draw(SIZE_CLASS),
        isic_codes=tuple(draw(ISIC_LIST)),
        hs_codes=tuple(draw(HS_LIST)),
        certificates=certificates,
        monthly_capacity=capacity,
        capacity_unit=draw(UNIT) if capacity is not None else None,
        quality_score=draw(shares),
        on_time_delivery_rate=draw(shares),
        capabilities=" ".join(draw(CAPABILITIES)),
        cluster_ids=tuple(draw(CLUSTER_LIST)),
        # Performance observed from scorecards (its figures are the shares above) or declared.
        performance_scorecards=scorecards,
        performance_buyers=draw(st.integers(1, scorecards)) if scorecards else 0,
        inclusion=draw(INCLUSION),
    )


def bare_supplier(supplier_id: str, **fields: Any) -> SupplierRecord:
    """A supplier with only ``fields`` set (a small one in ISIC 1410 otherwise, with nothing else known)."""
    record = SupplierRecord(
        id=supplier_id,
        name=supplier_id,
        agency_id=None,
        country="EC",
        subdivision=None,
        latitude=None,
        longitude=None,
        size_class="small",
        isic_codes=("1410",),
        hs_codes=(),
        certificates=(),
        monthly_capacity=None,
        capacity_unit=None,
        quality_score=None,
        on_time_delivery_rate=None,
        capabilities="",
        cluster_ids=(),
    )
    return replace(record, **fields)


@st.composite
def catalogues(draw: Any, max_size: int = 40) -> list[SupplierRecord]:
    size = draw(st.integers(0, max_size))
    shares = draw(st.sampled_from([SHARES, FEW_SHARES]))
    return [draw(suppliers(i, shares)) for i in range(size)]


WEIGHT = st.sampled_from([0.0, 0.1, 0.25, 1.0])
MIN_CAPACITY = st.none() | st.sampled_from([0.0, 500.0, 1000.0, 1024.0, 1200.0, 2048.0])
QUERY_UNIT = st.sampled_from(["pieces", "kg"])
QUERY_ISIC = st.lists(st.sampled_from(["14", "141", "1430", "10", "1050", "25"]), max_size=2)
QUERY_HS = st.lists(st.sampled_from(["61", "6109", "610910", "04"]), max_size=2)
QUERY_SCHEMES = st.lists(st.sampled_from(SCHEMES), max_size=2, unique=True)
QUERY_COUNTRIES = st.lists(st.sampled_from(["EC", "IN"]), max_size=2, unique=True)
QUERY_SUBDIVISIONS = st.lists(st.sampled_from(["EC-I", "IN-TN"]), max_size=1)
QUERY_CLUSTERS = st.lists(st.sampled_from(CLUSTERS), max_size=2)
QUERY_SIZES = st.lists(SIZE_CLASS, max_size=2)
MAX_DISTANCE = st.none() | st.sampled_from([50.0, 150.0, 400.0])
EXCLUDED = st.lists(st.sampled_from(["frm_0001A", "frm_0002B", "frm_0003C"]), max_size=2)
DESCRIPTION = st.none() | st.lists(st.sampled_from([*WORDS, "unknownword"]), max_size=4).map(" ".join)
DESIRED_CAPACITY = st.none() | st.sampled_from([900.0, 5000.0])
POINT = st.none() | PLACE
RARELY = st.sampled_from([False, False, False, True])  # a required inclusion class leaves few suppliers


@st.composite
def queries(draw: Any, max_limit: int = 12) -> Query:
    point = draw(POINT)
    weights = {c: draw(WEIGHT) for c in CRITERIA}
    if sum(weights.values()) == 0:
        weights["performance"] = 1.0
    min_capacity = draw(MIN_CAPACITY)
    limit = st.integers(1, max_limit)
    return Query(
        on_date=ON,
        isic_codes=tuple(draw(QUERY_ISIC)),
        hs_codes=tuple(draw(QUERY_HS)),
        required_certifications=tuple(draw(QUERY_SCHEMES)),
        min_monthly_capacity=min_capacity,
        capacity_unit=draw(QUERY_UNIT) if min_capacity is not None or draw(BOOL) else None,
        countries=tuple(draw(QUERY_COUNTRIES)),
        subdivisions=tuple(draw(QUERY_SUBDIVISIONS)),
        cluster_ids=tuple(draw(QUERY_CLUSTERS)),
        size_classes=tuple(draw(QUERY_SIZES)),
        latitude=point[2] if point else None,
        longitude=point[3] if point else None,
        max_distance_km=draw(MAX_DISTANCE) if point else None,
        exclude_ids=tuple(draw(EXCLUDED)),
        require_women_owned=draw(RARELY),
        require_women_led=draw(RARELY),
        require_youth_led=draw(RARELY),
        description=draw(DESCRIPTION),
        preferred_certifications=tuple(draw(QUERY_SCHEMES)),
        desired_monthly_capacity=draw(DESIRED_CAPACITY),
        weights=weights,
        limit=draw(limit),
        include_development=draw(BOOL),
        development_limit=draw(limit),
    )


# --- the reference -------------------------------------------------------------------


def _f32(value: float) -> float:
    return float(np.float32(value))


def _distance(s: SupplierRecord, q: Query) -> float | None:
    if s.latitude is None or s.longitude is None:
        return None
    assert q.latitude is not None and q.longitude is not None
    lat1, lon1 = math.radians(q.latitude), math.radians(q.longitude)
    lat2, lon2 = math.radians(_f32(s.latitude)), math.radians(_f32(s.longitude))
    a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, max(0.0, a))))


def _valid_certificate(c: Certificate, day: date) -> bool:
    return (c.valid_from is None or c.valid_from <= day) and (c.valid_until is None or day <= c.valid_until)


def _valid(s: SupplierRecord, scheme: str, day: date) -> bool:
    return any(c.scheme == scheme and _valid_certificate(c, day) for c in s.certificates)


def _same_unit(s: SupplierRecord, unit: str | None) -> bool:
    return unit is not None and (s.capacity_unit or "").strip().lower() == unit.strip().lower()


def _share(value: float | None) -> float | None:
    return None if value is None else round(value * 10000) / 10000


def passes_categorical(s: SupplierRecord, q: Query) -> bool:
    """Whether ``s`` passes the constraints but certificates and capacity."""
    if q.isic_codes and not any(code.startswith(p) for p in q.isic_codes for code in s.isic_codes):
        return False
    if q.hs_codes and not any(code.startswith(p) for p in q.hs_codes for code in s.hs_codes):
        return False
    if q.countries or q.subdivisions:
        narrowed = {x.split("-")[0] for x in q.subdivisions}
        in_country = s.country in q.countries and s.country not in narrowed
        if not (in_country or s.subdivision in q.subdivisions):
            return False
    if q.cluster_ids and not set(q.cluster_ids) & set(s.cluster_ids):
        return False
    if q.size_classes and s.size_class not in q.size_classes:
        return False
    required = {
        "women_owned": q.require_women_owned,
        "women_led": q.require_women_led,
        "youth_led": q.require_youth_led,
    }
    if any(asked and c not in s.inclusion for c, asked in required.items()):
        return False
    if s.id in q.exclude_ids:
        return False
    if q.max_distance_km is not None:
        distance = _distance(s, q)
        if distance is None or distance > q.max_distance_km:
            return False
    return True


def reference_values(
    s: SupplierRecord, text: Any, q: Query, weights: dict[str, float], query_vector: Any
) -> dict[str, float]:
    """Each active criterion's value for ``s``, from the documented formula."""
    values: dict[str, float] = {}
    if "text" in weights:
        row = text.vectorizer.transform([s.capabilities])
        supplier_terms = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
        values["text"] = min(
            1.0,
            max(
                0.0,
                sum(
                    float(w) * supplier_terms.get(t, 0.0)
                    for t, w in zip(query_vector.indices.tolist(), query_vector.data.tolist(), strict=True)
                ),
            ),
        )
    if "certifications" in weights:
        held = sum(_valid(s, c, q.on_date) for c in q.preferred_certifications)
        values["certifications"] = held / len(q.preferred_certifications)
    if "proximity" in weights:
        distance = _distance(s, q)
        reach = q.max_distance_km or PROXIMITY_REFERENCE_KM
        values["proximity"] = 0.0 if distance is None else min(1.0, max(0.0, 1 - distance / reach))
    if "capacity" in weights:
        target = q.capacity_target
        assert target is not None
        ok = _same_unit(s, q.capacity_unit) and s.monthly_capacity is not None
        values["capacity"] = min(1.0, s.monthly_capacity / target) if ok else 0.0  # type: ignore[operator]
    if "performance" in weights:
        known = [v for v in (_share(s.quality_score), _share(s.on_time_delivery_rate)) if v is not None]
        values["performance"] = sum(known) / len(known) if known else PERFORMANCE_PRIOR
    if "inclusion" in weights:  # attested in any class: women-owned, women-led or youth-led
        values["inclusion"] = 1.0 if s.inclusion else 0.0
    return values


def reference(records: list[SupplierRecord], text: Any, q: Query) -> dict[str, Any]:
    query_vector = text.vectorizer.transform([q.description or ""])
    weights = q.active_weights(text_active=bool(q.description) and query_vector.nnz > 0)
    query_terms = sorted(query_vector.indices.tolist())
    eligible: list[tuple[float, str, tuple[int, int] | None, tuple[Any, ...]]] = []
    development: list[tuple[float, str, Any, tuple[Any, ...]]] = []
    for s in records:
        if not passes_categorical(s, q):
            continue
        missing = [c for c in q.required_certifications if not _valid(s, c, q.on_date)]
        capacity_ok = capacity_short = False
        if q.min_monthly_capacity is None:
            capacity_ok = True
        elif _same_unit(s, q.capacity_unit) and s.monthly_capacity is not None:
            capacity_ok = s.monthly_capacity >= q.min_monthly_capacity
            capacity_short = not capacity_ok and s.monthly_capacity >= q.min_monthly_capacity * (
                1 - DEVELOPMENT_CAPACITY_MARGIN
            )
        gap: Any = None
        if not missing and capacity_ok:
            bucket = "eligible"
        elif q.include_development and len(missing) == 1 and capacity_ok:
            bucket, gap = "development", ("certification", missing[0])
        elif q.include_development and not missing and capacity_short:
            bucket, gap = "development", ("capacity", s.monthly_capacity)
        else:
            continue
        values = reference_values(s, text, q, weights, query_vector)
        contributions = [float(np.round(weights[c] * values[c], 9)) for c in weights]
        score = float(np.round(sum(contributions), 9))
        if bucket == "eligible":
            basis = (min(s.performance_scorecards, 65535), min(s.performance_buyers, 65535))
            card = reference_card(s, text, q, query_terms)
            eligible.append((score, s.id, basis if s.performance_scorecards else None, card))
        else:
            development.append((score, s.id, gap, reference_card(s, text, q, query_terms)))
    eligible.sort(key=lambda e: (-e[0], e[1]))
    development.sort(key=lambda e: (-e[0], e[1]))
    return {
        "eligible": len(eligible),
        "items": [(sid, score, basis, card) for score, sid, basis, card in eligible[: q.limit]],
        "development": len(development) if q.include_development else 0,
        "gaps": [(sid, score, gap, card) for score, sid, gap, card in development[: q.development_limit]]
        if q.include_development
        else [],
    }


def _gap(gap: Gap | None) -> tuple[str, Any]:
    assert gap is not None
    return gap.kind, gap.scheme if gap.kind == "certification" else gap.available


def engine(view: View, q: Query) -> dict[str, Any]:
    result = run_query(view, q)
    return {
        "eligible": result.eligible_count,
        "items": [(r.id, r.score, r.performance_basis, _card(r.card)) for r in result.items],
        "development": result.development_count,
        "gaps": [(r.id, r.score, _gap(r.gap), _card(r.card)) for r in result.development],
    }


def _card(card: Card | None) -> tuple[Any, ...]:
    assert card is not None
    certificates = tuple((c.scheme, c.valid_until) for c in card.certificates)
    return card.distance_km, certificates, card.matched_terms, card.monthly_capacity, card.capacity_unit


def reference_card(s: SupplierRecord, text: Any, q: Query, query_terms: list[int]) -> tuple[Any, ...]:
    """The card of a listed supplier, from its record."""
    distance = None
    if q.latitude is not None and (found := _distance(s, q)) is not None:
        distance = pytest.approx(found, abs=1e-3)  # rounded to the metre by the engine
    certificates = []
    for scheme in dict.fromkeys(q.required_certifications + q.preferred_certifications):
        valid = [c for c in s.certificates if c.scheme == scheme and _valid_certificate(c, q.on_date)]
        if valid:
            open_ended = any(c.valid_until is None for c in valid)
            certificates.append((scheme, None if open_ended else max(c.valid_until for c in valid if c.valid_until)))
    held = set(text.vectorizer.transform([s.capabilities]).indices.tolist())
    unit = (s.capacity_unit or "").strip().lower() or None
    capacity = s.monthly_capacity
    return (
        distance,
        tuple(certificates),
        tuple(t for t in query_terms if t in held),
        capacity,
        unit if capacity is not None else None,
    )


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(records=catalogues(), query_list=st.lists(queries(), min_size=1, max_size=3))
def test_shortlists_equal_the_brute_force_reference(records: list[SupplierRecord], query_list: list[Query]) -> None:
    view = build_view(records, seq=1, epoch=1)
    for q in query_list:
        assert engine(view, q) == reference(records, view.text, q)


def changed_views(
    records: list[SupplierRecord], changes: list[tuple[int, bool]], data: Any
) -> Iterator[tuple[View, list[SupplierRecord]]]:
    """The view before any change and after each (a deletion, a new supplier or a changed
    one, drawn from ``data``), with the suppliers it should hold; changes go to the delta
    segment."""
    view = build_view(records, seq=1, epoch=1)
    current = {r.id: r for r in records}
    yield view, records
    delta: dict[str, tuple[int, SupplierRecord | None]] = {}
    for seq, (index, delete) in enumerate(changes, start=2):
        existing = list(current.values())
        if delete and existing:
            victim = existing[index % len(existing)]
            current.pop(victim.id)
            delta[victim.id] = (seq, None)
        else:
            fresh = data.draw(suppliers(index))
            if existing and index % 2:
                fresh = replace(fresh, id=existing[index % len(existing)].id)
            current[fresh.id] = fresh
            delta[fresh.id] = (seq, fresh)
        view = with_delta(view, dict(delta), seq)
        yield view, list(current.values())


@SETTINGS
@given(
    records=catalogues(),
    changes=st.lists(st.tuples(st.integers(0, 45), st.booleans(), st.integers(0, 10**6)), max_size=8),
    q=queries(),
    data=st.data(),
)
def test_shortlists_stay_exact_across_updates(
    records: list[SupplierRecord], changes: list[tuple[int, bool, int]], q: Query, data: Any
) -> None:
    """Changes go to the delta segment; the answer must equal a rebuild's."""
    for view, current in changed_views(records, [(index, delete) for index, delete, _ in changes], data):
        assert engine(view, q) == reference(current, view.text, q)


@contextmanager
def ranked_by_bounds(first_band: int, counted: int = 8, whole_crossing: int = 0) -> Iterator[None]:
    """Every candidate set takes the bounded path (``ranking.BoundedWalk``), with tiny bands,
    terms and schemes held counted up to ``counted`` only, and crossings of at most
    ``whole_crossing`` rows scored whole (0: every cell band by band)."""
    with (
        patch.object(ranking, "BROAD_ROWS", 0),
        patch.object(ranking, "WHOLE_CROSSING_ROWS", whole_crossing),
        patch.object(segment, "FIRST_BAND_ROWS", first_band),
        patch.object(segment, "COUNTED_SCHEMES", counted),
        patch.object(text, "COUNTED_TERMS", counted),
    ):
        yield


BROAD = st.sampled_from([(), ("14",), ("10", "14", "25")])  # no sector filter, or a wide one


@SETTINGS
@given(
    records=catalogues(max_size=60),
    query_list=st.lists(queries(max_limit=40), min_size=1, max_size=3),
    sectors=BROAD,
    first_band=st.integers(1, 5),
    counted=st.integers(1, 3),
    whole_crossing=st.sampled_from([0, 4, 1000]),
)
def test_broad_queries_ranked_by_bounds_equal_the_reference(
    records: list[SupplierRecord],
    query_list: list[Query],
    sectors: tuple[str, ...],
    first_band: int,
    counted: int,
    whole_crossing: int,
) -> None:
    """The bounded ranking must not drop a row of the exact top k: big k, ties, text or not."""
    with ranked_by_bounds(first_band, counted, whole_crossing):
        view = build_view(records, seq=1, epoch=1)
        for q in query_list:
            broad = replace(q, isic_codes=sectors, hs_codes=(), cluster_ids=(), size_classes=(), countries=())
            for variant in (q, broad, replace(broad, description=None)):
                assert engine(view, variant) == reference(records, view.text, variant)


@SETTINGS
@given(
    records=catalogues(),
    changes=st.lists(st.tuples(st.integers(0, 45), st.booleans()), max_size=8),
    q=queries(max_limit=40),
    first_band=st.integers(1, 5),
    whole_crossing=st.sampled_from([0, 4, 1000]),
    data=st.data(),
)
def test_bounded_ranking_stays_exact_across_updates(
    records: list[SupplierRecord],
    changes: list[tuple[int, bool]],
    q: Query,
    first_band: int,
    whole_crossing: int,
    data: Any,
) -> None:
    """Deleted and changed rows (tombstones) leave the main segment's bands in place."""
    with ranked_by_bounds(first_band, whole_crossing=whole_crossing):
        *_, (view, current) = changed_views(records, changes, data)
        assert engine(view, q) == reference(current, view.text, q)


@SETTINGS
@given(records=catalogues(max_size=60))
def test_rows_are_clustered_by_sector_and_place_and_find_their_ids(records: list[SupplierRecord]) -> None:
    """Rows are ordered by sector (smallest ISIC code), country and cell; ids stay findable
    both ways, and ``id_ranks`` is each row's place in id order (ties on score break by it)."""
    main = build_view(records, seq=1, epoch=1).main
    by_id = {r.id: r for r in records}
    ids = main.ids_of(np.arange(main.n))
    assert sorted(ids) == sorted(by_id) and [ids[row] for row in main.rows_by_id] == sorted(ids)
    assert [main.row_of(i) for i in ids] == list(range(main.n)) and main.row_of("frm_missing") is None

    def cluster(record: SupplierRecord) -> tuple[Any, ...]:
        sector = min(record.isic_codes) if record.isic_codes else ""
        if record.latitude is None or record.longitude is None:
            return (sector, record.country, 1)
        # the cells of the facets: of the float32 coordinates the segment keeps
        latitude, longitude = float(np.float32(record.latitude)), float(np.float32(record.longitude))
        return (sector, record.country, 0, math.floor(latitude), math.floor(longitude))

    clusters = [cluster(by_id[i]) for i in ids]
    assert clusters == sorted(clusters)


@SETTINGS
@given(
    lat0=st.floats(-70, 70),
    lon0=st.floats(-180, 180),
    distance_km=st.sampled_from([0.5, 25.0, 100.0, 300.0, 1234.5, 4999.0, 5001.0, 12000.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_rough_distances_decide_the_maximum_distance_as_the_exact_ones(
    lat0: float, lon0: float, distance_km: float, seed: int
) -> None:
    """The float32 pre-check of a maximum distance agrees with the float64 haversine on
    every point, also those a metre or less from the limit (and those without coordinates)."""
    rng = np.random.default_rng(seed)
    bearing = rng.uniform(0, 2 * math.pi, 400)
    share = rng.choice([-1e-2, -1e-4, -1e-6, -1e-8, 0.0, 1e-8, 1e-6, 1e-4, 1e-2], 400)
    angle = distance_km * (1 + share) / EARTH_RADIUS_KM
    phi0, lambda0 = math.radians(lat0), math.radians(lon0)
    phi = np.arcsin(math.sin(phi0) * np.cos(angle) + math.cos(phi0) * np.sin(angle) * np.cos(bearing))
    lam = lambda0 + np.arctan2(
        np.sin(bearing) * np.sin(angle) * math.cos(phi0), np.cos(angle) - math.sin(phi0) * np.sin(phi)
    )
    lat = np.degrees(phi).astype(np.float32)
    lon = ((np.degrees(lam) + 180) % 360 - 180).astype(np.float32)
    lat[:5] = np.nan
    exact = haversine_km(lat, lon, lat0, lon0) <= distance_km
    assert np.array_equal(segment.within_km(lat, lon, lat0, lon0, distance_km), exact)
    assert 0 < exact.sum() < len(exact) - 5  # points on both sides of the limit


def test_isic_section_letters_match_their_divisions() -> None:
    records = [
        bare_supplier(f"frm_{code}", country="IN", isic_codes=(code,)) for code in ("1410", "0111", "3320", "4510")
    ]
    view = build_view(records, seq=1, epoch=1)
    manufacturing = run_query(view, Query(on_date=ON, isic_codes=("C",), limit=10))
    assert sorted(r.id for r in manufacturing.items) == ["frm_1410", "frm_3320"]


@SETTINGS
@given(
    records=catalogues(max_size=60),
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=6),
    preferred=st.lists(st.sampled_from(SCHEMES), min_size=1, max_size=3, unique=True),
    counted=st.integers(1, 4),
    target=st.sampled_from([100.0, 900.0, 1024.0, 5000.0, 1e6]),
)
def test_bound_parts_split_the_rows_and_bound_each_one(
    records: list[SupplierRecord], words: list[str], preferred: list[str], counted: int, target: float
) -> None:
    """Text, certification and capacity parts partition the rows, and no row's value
    exceeds its part's bound."""
    view = build_view(records, seq=1, epoch=1)
    main = view.main
    q = Query(
        on_date=ON,
        description=" ".join(words),
        preferred_certifications=tuple(preferred),
        desired_monthly_capacity=target,
        capacity_unit="Pieces",
    )
    terms = view.text.query_vector(q.description)
    chosen = main.all_rows
    with patch.object(text, "COUNTED_TERMS", counted), patch.object(segment, "COUNTED_SCHEMES", counted):
        text_parts = main.postings.holding_counts(*terms, chosen)
        scheme_parts = main.held_counts(q, chosen)
    capacity_parts = main.capacity_parts(q, chosen)
    weights = {"text": 1.0, "certifications": 1.0, "capacity": 1.0}
    for rows, fit in capacity_parts:
        assert main.criterion_values(q, as_array(rows), weights, terms)["capacity"].max() <= fit
    for parts in (text_parts, scheme_parts, capacity_parts):
        assert sum(len(part[0]) for part in parts) == len(chosen)
        assert BitMap.union(BitMap(), *(part[0] for part in parts)) == chosen
    for rows, bound, scale in text_parts:
        similarity = main.criterion_values(q, as_array(rows), weights, terms)["text"]
        assert similarity.max() <= bound + 1e-12
        ceilings = main.postings.row_ceilings(np.full(len(rows), scale), as_array(rows))
        assert np.all(similarity <= ceilings)
    for rows, count in scheme_parts:
        held = main.criterion_values(q, as_array(rows), weights, terms)["certifications"] * len(preferred)
        assert held.max() <= count + 1e-12


@SETTINGS
@given(
    offsets=st.lists(
        st.tuples(st.floats(-3, 3), st.floats(-3, 3)) | st.none(),
        min_size=1,
        max_size=200,
    ),
    place=st.sampled_from(PLACES),
    distance_km=st.sampled_from([5.0, 20.0, 50.0, 150.0, 400.0]),
)
def test_distance_cells_hold_rows_inside_and_leave_only_rows_outside(
    offsets: list[tuple[float, float] | None], place: tuple[str, str | None, float, float], distance_km: float
) -> None:
    """Rows of cells said to be wholly inside a radius are within it; rows in neither the
    inside nor the rim cells are beyond it (or have no coordinates), by the haversine
    distance the maximum-distance check measures."""
    country, subdivision, lat, lon = place
    records = [
        bare_supplier(
            f"frm_{i:04d}",
            country=country,
            subdivision=subdivision,
            latitude=lat + offset[0] if offset else None,
            longitude=lon + offset[1] if offset else None,
        )
        for i, offset in enumerate(offsets)
    ]
    main = build_view(records, seq=1, epoch=1).main
    inside, rim = main.cells_by_distance(lat, lon, distance_km)
    assert not inside & rim
    distance = haversine_km(main.latitude, main.longitude, lat, lon)
    for row in range(main.n):
        if row in inside:
            assert distance[row] <= distance_km
        elif row not in rim:
            assert not distance[row] <= distance_km  # NaN (no coordinates) is never within


@SETTINGS
@given(records=catalogues(max_size=40))
def test_a_one_row_segment_weighs_its_text_as_the_catalogue_does(records: list[SupplierRecord]) -> None:
    """Reverse matching's one-row segments (their norms summed in one pass) hold the
    weights scikit-learn gives, and the norms the catalogue's segment holds."""
    view = build_view(records, seq=1, epoch=1)
    for record in records:
        alone = segment.Segment.build([record], view.text)  # verified against scikit-learn's weights
        row = view.main.row_of(record.id)
        assert row is not None
        assert alone.postings.norms.tobytes() == view.main.postings.norms[row : row + 1].tobytes()
