"""An immutable, columnar block of suppliers with its bitmap indexes.

Rows are dense integers, clustered by sector and place (``clustered_order``).
Categorical attributes (sector and product codes at every
prefix length, country, subdivision, cluster, size class, one-degree and
quarter-degree geo cells, power-of-two capacity buckets per unit) are roaring bitmaps
(keyed by ``facets.Facet``),
so hard constraints are bitmap unions and intersections; numeric attributes are numpy
columns checked only on the survivors. Certificates are kept
as (row, valid from, valid until) intervals per scheme, turned into a bitmap per
scheme and day on first use. Rows are also grouped into bands of descending
performance (the only query-independent criterion), so a broad query can score the
best-performing rows first and stop once no other row can reach its top k.
"""

from __future__ import annotations

import array
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import scipy.sparse as sp
from pyroaring import BitMap

from services.common.codes import isic_codes, isic_section_divisions
from services.common.geo import haversine_km
from services.matching.catalogue.bitmaps import as_array, bitmap_of, count_groups
from services.matching.catalogue.facets import (
    CAPACITY_TOP,
    FINE_CELLS_PER_DEGREE,
    Facet,
    bucket_key,
    bucket_of,
    inclusion_key,
    parts,
    supplier_keys,
)
from services.matching.catalogue.query import (
    DEVELOPMENT_CAPACITY_MARGIN,
    EARTH_RADIUS_KM,
    INCLUSION_CLASSES,
    PERFORMANCE_PRIOR,
    PROXIMITY_REFERENCE_KM,
    Query,
)
from services.matching.catalogue.records import SupplierRecord
from services.matching.catalogue.text import Postings, TextModel

NO_START = np.iinfo(np.int32).min
NO_END = np.iinfo(np.int32).max
SIZE_CLASSES = ("micro", "small", "medium", "large")


def members(sorted_rows: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """For each of ``sorted_rows``, whether it is in ``sorted_set`` (both ascending)."""
    if len(sorted_set) == 0 or len(sorted_rows) == 0:
        return np.zeros(len(sorted_rows), dtype=bool)
    positions = np.searchsorted(sorted_set, sorted_rows)
    positions[positions == len(sorted_set)] = 0
    found: np.ndarray = sorted_set[positions] == sorted_rows
    return found


@cache
def isic_sections() -> tuple[str, ...]:
    """The ISIC Rev.4 section letters (read once: every segment build asks)."""
    return tuple(code for code in isic_codes() if code[:1].isalpha())


def cell_corners(facets: Iterable[str], kind: Facet, per_degree: int) -> tuple[list[str], np.ndarray]:
    """The keys of the cells among ``facets`` (``kind``: ``Facet.cell`` or ``Facet.fine_cell``)
    and their south-west corners in degrees."""
    keys = kind.among(facets)
    corners = np.array([parts(key) for key in keys], dtype=np.float64).reshape(-1, 2) / per_degree
    return keys, corners


# Below this distance a float32 haversine is off from the float64 one by a few metres at
# most (its inputs are float32 columns already: an angle is off by a few 1e-7 radians,
# each function by about 1e-7 of its value, and arcsin stays well conditioned up to
# there): over six million random points, at most 1.4 % of this margin.
ROUGH_DISTANCE_LIMIT_KM = 5000.0
ROUGH_MARGIN_KM = 0.1
ROUGH_MARGIN_SHARE = 1e-4


def within_km(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float, distance_km: float) -> np.ndarray:
    """Whether ``haversine_km`` of each point (float32 columns) is at most ``distance_km``
    (False without coordinates). The float32 haversine tells all but the points within its
    margin of the distance, which are measured in float64."""
    if distance_km > ROUGH_DISTANCE_LIMIT_KM:
        return haversine_km(lat, lon, lat0, lon0) <= distance_km
    rough = haversine_km(lat, lon, lat0, lon0, np.float32)
    margin = ROUGH_MARGIN_KM + ROUGH_MARGIN_SHARE * distance_km
    within: np.ndarray = rough < distance_km - margin  # NaN (no coordinates) is False
    unsure = np.flatnonzero(np.abs(rough - distance_km) <= margin)
    within[unsure] = haversine_km(lat[unsure], lon[unsure], lat0, lon0) <= distance_km
    return within


SHARE_SCALE = 10_000  # shares (quality, on-time rate) are kept to four decimal places
UNKNOWN_SHARE = np.iinfo(np.uint16).max
COUNT_MAX = int(np.iinfo(np.uint16).max)  # scorecards and buyers behind an observed performance, capped


def to_share(values: Sequence[float | None]) -> np.ndarray:
    return np.array([UNKNOWN_SHARE if v is None else round(v * SHARE_SCALE) for v in values], dtype=np.uint16)


def from_share(values: np.ndarray) -> np.ndarray:
    """Back to floats in [0, 1], NaN where unknown."""
    return np.where(values == UNKNOWN_SHARE, np.nan, values.astype(np.float64) / SHARE_SCALE)


def performance_of(quality: np.ndarray, on_time: np.ndarray) -> np.ndarray:
    """The ``performance`` criterion from the stored shares: the mean of the known ones."""
    quality_known, on_time_known = quality != UNKNOWN_SHARE, on_time != UNKNOWN_SHARE
    total = np.where(quality_known, quality / SHARE_SCALE, 0.0) + np.where(on_time_known, on_time / SHARE_SCALE, 0.0)
    known = quality_known.astype(np.float64) + on_time_known
    performance: np.ndarray = np.where(known > 0, total / np.maximum(known, 1), PERFORMANCE_PRIOR)
    return performance


VERIFIED_DOCUMENTS = 256  # documents whose recomputed TF-IDF weights are checked against scikit-learn's

# Half a quarter-degree cell's diagonal bounds the distance from its centre to any of its points: the
# haversine of half the cell in latitude and in longitude, plus a metre.
FINE_CELL_HALF_DIAGONAL_KM = (
    2 * EARTH_RADIUS_KM * math.asin(math.sqrt(2) * math.sin(math.radians(0.25 / FINE_CELLS_PER_DEGREE))) + 0.001
)
KM_PER_DEGREE_OF_LATITUDE = 2 * math.pi * EARTH_RADIUS_KM / 360

# Rings of proximity bounds a broad query with a point is split into: fewer rings mean
# fewer cells to visit but looser bounds. Four measured as fast as two and bound
# proximity-weighted queries tighter; more rings were slower (docs/benchmarks.md).
PROXIMITY_RINGS = 4
COUNTED_SCHEMES = 8  # rows are told apart by how many preferred schemes they hold up to this many
FIRST_BAND_ROWS = 1024  # the best-performing rows; each next band is twice as large


def clustered_order(suppliers: Sequence[SupplierRecord], latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """The order of rows for ``suppliers`` (given in id order, with their float32
    coordinates), as their positions: by sector (the smallest ISIC code), country, then the
    one-degree and quarter-degree cells of the facets, then id.

    Most constraints and bounds select by sector and place, so their bitmaps become a few
    long runs and an intersection touches few containers: fewer bytes a supplier and
    faster queries than rows in id order (measured with ``bench/matching_compare.py``;
    docs/matching.md). Rows without coordinates come last in their sector and country.
    """
    sectors = [min(s.isic_codes) if s.isic_codes else "" for s in suppliers]
    sector_codes = {code: i for i, code in enumerate(sorted(set(sectors)))}
    countries = [s.country for s in suppliers]
    country_codes = {code: i for i, code in enumerate(sorted(set(countries)))}
    order: np.ndarray = np.lexsort(  # the last key first; NaN sorts last
        (
            np.arange(len(suppliers)),
            np.floor(longitude * FINE_CELLS_PER_DEGREE),
            np.floor(latitude * FINE_CELLS_PER_DEGREE),
            np.floor(longitude),
            np.floor(latitude),
            np.fromiter((country_codes[c] for c in countries), dtype=np.int32, count=len(countries)),
            np.fromiter((sector_codes[c] for c in sectors), dtype=np.int32, count=len(sectors)),
        )
    )
    return order


def performance_bands(performance: np.ndarray) -> tuple[list[BitMap], np.ndarray]:
    """Rows in bands of descending performance, and the best performance in each band.

    Bands double in size, so a walk that stops early reads few rows, and one that does
    not reads about ``log2(n / FIRST_BAND_ROWS)`` bitmaps.
    """
    order = np.lexsort((np.arange(len(performance)), -performance))
    bands: list[BitMap] = []
    ceilings: list[float] = []
    start, size = 0, FIRST_BAND_ROWS
    while start < len(order):
        rows = np.sort(order[start : start + size]).astype(np.uint32)
        bands.append(bitmap_of(rows))
        bands[-1].run_optimize()
        ceilings.append(float(performance[order[start]]))
        start, size = start + size, size * 2
    return bands, np.array(ceilings, dtype=np.float64)


def _grouped(keys: array.array[int], count: int) -> tuple[np.ndarray, np.ndarray]:
    """An order of ``keys`` (int32 ids below ``count``) grouping equal ids, stable so rows
    appended in order stay ascending, and where each id's group starts and ends."""
    ids = np.frombuffer(keys, dtype=np.int32)
    order = np.argsort(ids, kind="stable")
    return order, np.searchsorted(ids[order], np.arange(count + 1))


class PackedStrings:
    """Many short strings in one UTF-8 buffer with offsets (no Python object each)."""

    def __init__(self, buffer: np.ndarray, offsets: np.ndarray) -> None:
        self.buffer = buffer
        self.offsets = offsets

    @classmethod
    def pack(cls, values: Iterable[str]) -> PackedStrings:
        encoded = [v.encode() for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets)

    def __getitem__(self, row: int) -> str:
        return self.buffer[self.offsets[row] : self.offsets[row + 1]].tobytes().decode()

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes + self.offsets.nbytes)


@dataclass
class CertificateIntervals:
    rows: np.ndarray  # int32, ascending (a row may repeat)
    start: np.ndarray  # int32 day number, NO_START when open
    end: np.ndarray  # int32 day number, NO_END when open

    def valid_on(self, day: int) -> np.ndarray:
        mask = (self.start <= day) & (self.end >= day)
        valid: np.ndarray = np.unique(self.rows[mask]).astype(np.int64)
        return valid


class Segment:
    """Suppliers ``0..n-1`` of one block, immutable once built.

    Rows are clustered by sector and place (``clustered_order``), not in id order: ``ids``
    holds the ids in id order, ``id_ranks[row]`` is the rank of a row's id (ties on score
    break by it) and ``rows_by_id[rank]`` the row of an id, found by binary search.
    """

    def __init__(
        self,
        *,
        ids: np.ndarray,
        id_ranks: np.ndarray,
        rows_by_id: np.ndarray,
        names: PackedStrings,
        latitude: np.ndarray,
        longitude: np.ndarray,
        capacity: np.ndarray,
        capacity_unit: np.ndarray,
        units: list[str],
        quality: np.ndarray,
        on_time: np.ndarray,
        observed_rows: np.ndarray,
        observed_counts: np.ndarray,
        facets: dict[str, BitMap],
        certificates: dict[str, CertificateIntervals],
        postings: Postings,
        bands: list[BitMap] | None = None,
        band_ceilings: np.ndarray | None = None,
        verify_order: bool = True,
    ) -> None:
        self.ids = ids
        self.id_ranks = id_ranks
        self.rows_by_id = rows_by_id
        self.n = len(ids)
        self.names = names
        self.latitude = latitude
        self.longitude = longitude
        self.capacity = capacity
        self.capacity_unit = capacity_unit
        self.units = units
        self.quality = quality
        self.on_time = on_time
        # Sparse: the rows whose performance is observed (buyers' scorecards), ascending,
        # and for each its scorecards and buyers (uint16 pairs); the others declared theirs.
        self.observed_rows = observed_rows
        self.observed_counts = observed_counts
        self.facets = facets
        self.certificates = certificates
        self.postings = postings
        self.performance_values = performance_of(quality, on_time)  # float64: read by every broad query
        if bands is None or band_ceilings is None:
            bands, band_ceilings = performance_bands(self.performance_values)
        self.bands = bands
        self.band_ceilings = band_ceilings
        self.cell_keys, self.cell_corners = cell_corners(facets, Facet.cell, 1)
        self.fine_keys, fine_corners = cell_corners(facets, Facet.fine_cell, FINE_CELLS_PER_DEGREE)
        self.fine_centres = fine_corners + 0.5 / FINE_CELLS_PER_DEGREE
        capacity_buckets: dict[str, list[tuple[int, str]]] = {}  # per unit: its buckets and their keys
        for key in Facet.capacity.among(facets):
            bucket, unit = bucket_of(key)
            capacity_buckets.setdefault(unit, []).append((bucket, key))
        # Per unit, its buckets ascending and, for each index i, the rows of bucket i or
        # above (one more, empty, at the end): a capacity split needs no union of buckets.
        self.capacity_splits: dict[str, tuple[list[int], list[BitMap]]] = {}
        for unit, keyed in capacity_buckets.items():
            keyed.sort()
            at_least = [BitMap()]
            for _, key in reversed(keyed):
                at_least.append(at_least[-1] | facets[key])
                at_least[-1].run_optimize()
            self.capacity_splits[unit] = ([bucket for bucket, _ in keyed], at_least[::-1])
        # Each ISIC section's rows, the union of its divisions': a query for a section reads
        # one bitmap, not some twenty (their union takes milliseconds at scale: docs/benchmarks.md).
        self.sections: dict[str, BitMap] = {}
        for section in isic_sections():
            keys = Facet.isic.keys(isic_section_divisions(section))
            divisions = [facets[key] for key in keys if key in facets]
            if divisions:
                self.sections[section] = BitMap.union(*divisions)
                self.sections[section].run_optimize()
        self.all_rows = BitMap()
        self.all_rows.add_range(0, self.n)
        if verify_order and self.n > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise ValueError("segment ids must be in strictly increasing order")
        if verify_order and not np.array_equal(rows_by_id[id_ranks], np.arange(self.n)):
            raise ValueError("id_ranks and rows_by_id must be inverse permutations")
        self._valid_cache: dict[tuple[str, int], tuple[BitMap, np.ndarray]] = {}
        self._inclusion: tuple[BitMap, np.ndarray] | None = None

    # -- building -------------------------------------------------------------------

    @classmethod
    def build(cls, suppliers: Sequence[SupplierRecord], text: TextModel, *, verify_text: bool = True) -> Segment:
        """A segment of ``suppliers``; ``verify_text=False`` skips checking its text weights
        against scikit-learn's (every catalogue segment checks them; reverse matching's
        one-row segments use the same code)."""
        suppliers = sorted(suppliers, key=lambda s: s.id.encode())
        n = len(suppliers)
        id_width = max([len(s.id) for s in suppliers] + [1])
        ids = np.empty(n, dtype=f"S{id_width}")
        for start in range(0, n, 1 << 16):  # a slice at a time: a list of ten million bytes objects takes GBs
            ids[start : start + (1 << 16)] = [s.id.encode() for s in suppliers[start : start + (1 << 16)]]
        nan = float("nan")
        latitude = np.array([s.latitude if s.latitude is not None else nan for s in suppliers], dtype=np.float32)
        longitude = np.array([s.longitude if s.longitude is not None else nan for s in suppliers], dtype=np.float32)
        id_ranks = clustered_order(suppliers, latitude, longitude).astype(np.int32)  # row -> rank of its id
        rows_by_id = np.empty(n, dtype=np.int32)
        rows_by_id[id_ranks] = np.arange(n, dtype=np.int32)
        suppliers = [suppliers[rank] for rank in id_ranks.tolist()]  # from here on, in row order
        latitude, longitude = latitude[id_ranks], longitude[id_ranks]
        capacity = np.array(
            [s.monthly_capacity if s.monthly_capacity is not None else nan for s in suppliers], dtype=np.float64
        )
        units: list[str] = [""]
        unit_codes: dict[str, int] = {"": 0}
        capacity_unit = np.zeros(n, dtype=np.uint8)
        for row, supplier in enumerate(suppliers):
            unit = (supplier.capacity_unit or "").strip().lower()
            if unit not in unit_codes:
                if len(units) >= 255:
                    unit = ""  # beyond 254 distinct units: treated as unknown
                else:
                    unit_codes[unit] = len(units)
                    units.append(unit)
            capacity_unit[row] = unit_codes.get(unit, 0)
        quality = to_share([s.quality_score for s in suppliers])
        on_time = to_share([s.on_time_delivery_rate for s in suppliers])
        observed = [(row, s) for row, s in enumerate(suppliers) if s.performance_scorecards]
        observed_rows = np.array([row for row, _ in observed], dtype=np.int32)
        observed_counts = np.array(
            [(min(s.performance_scorecards, COUNT_MAX), min(s.performance_buyers, COUNT_MAX)) for _, s in observed],
            dtype=np.uint16,
        ).reshape(-1, 2)

        # (key, row) pairs in flat int32 arrays, not a Python list of ints per key: at ten
        # million suppliers the lists alone were too large (docs/benchmarks.md).
        key_ids: dict[str, int] = {}
        facet_keys, facet_rows = array.array("i"), array.array("i")
        scheme_ids: dict[str, int] = {}
        cert_schemes, cert_rows, cert_starts, cert_ends = (array.array("i") for _ in range(4))
        for row, s in enumerate(suppliers):
            for key in supplier_keys(s, units[capacity_unit[row]], capacity[row]):
                facet_keys.append(key_ids.setdefault(key, len(key_ids)))
                facet_rows.append(row)
            for cert in s.certificates:
                cert_schemes.append(scheme_ids.setdefault(cert.scheme, len(scheme_ids)))
                cert_rows.append(row)
                cert_starts.append(cert.valid_from.toordinal() if cert.valid_from else NO_START)
                cert_ends.append(cert.valid_until.toordinal() if cert.valid_until else NO_END)
        order, bounds = _grouped(facet_keys, len(key_ids))
        rows_by_key = np.frombuffer(facet_rows, dtype=np.int32)[order]
        facets = {key: bitmap_of(rows_by_key[bounds[i] : bounds[i + 1]]) for key, i in key_ids.items()}
        for bitmap in facets.values():
            bitmap.run_optimize()
        order, bounds = _grouped(cert_schemes, len(scheme_ids))
        columns = [np.frombuffer(c, dtype=np.int32)[order] for c in (cert_rows, cert_starts, cert_ends)]
        certificates = {
            scheme: CertificateIntervals(*(c[bounds[i] : bounds[i + 1]] for c in columns))
            for scheme, i in scheme_ids.items()
        }
        texts = [s.capabilities for s in suppliers]
        postings = Postings.build(
            text.counts(texts) if n else sp.csr_matrix((0, text.vocabulary_size), dtype=np.float32), text.idf
        )
        if verify_text:
            postings.verify(text.transform(texts[:VERIFIED_DOCUMENTS]) if n else None)
        return cls(
            ids=ids,
            id_ranks=id_ranks,
            rows_by_id=rows_by_id,
            names=PackedStrings.pack(s.name for s in suppliers),
            latitude=latitude,
            longitude=longitude,
            capacity=capacity,
            capacity_unit=capacity_unit,
            units=units,
            quality=quality,
            on_time=on_time,
            observed_rows=observed_rows,
            observed_counts=observed_counts,
            facets=facets,
            certificates=certificates,
            postings=postings,
        )

    # -- lookups --------------------------------------------------------------------

    def row_of(self, supplier_id: str) -> int | None:
        key = supplier_id.encode()
        rank = int(np.searchsorted(self.ids, key))
        if rank < self.n and self.ids[rank] == key:
            return int(self.rows_by_id[rank])
        return None

    def performance_basis(self, row: int) -> tuple[int, int] | None:
        """(scorecards, buyers) when the row's performance is observed; None when declared."""
        at = int(np.searchsorted(self.observed_rows, row))
        if at < len(self.observed_rows) and self.observed_rows[at] == row:
            scorecards, buyers = self.observed_counts[at].tolist()
            return int(scorecards), int(buyers)
        return None

    def ids_of(self, rows: np.ndarray) -> list[str]:
        return [i.decode() for i in self.ids[self.id_ranks[rows]].tolist()]

    def valid_certificates(self, scheme: str, day: int) -> tuple[BitMap, np.ndarray]:
        """Rows holding a certificate of ``scheme`` valid on ``day`` (bitmap, sorted array)."""
        cached = self._valid_cache.get((scheme, day))
        if cached is None:
            intervals = self.certificates.get(scheme)
            rows = intervals.valid_on(day) if intervals is not None else np.empty(0, np.int64)
            cached = (bitmap_of(rows), rows)
            if len(self._valid_cache) > 256:
                self._valid_cache.clear()
            self._valid_cache[(scheme, day)] = cached
        return cached

    @property
    def nbytes(self) -> int:
        arrays = (
            self.ids,
            self.id_ranks,
            self.rows_by_id,
            self.latitude,
            self.longitude,
            self.capacity,
            self.capacity_unit,
            self.quality,
            self.on_time,
            self.observed_rows,
            self.observed_counts,
            self.performance_values,
        )
        bitmaps = sum(len(b.serialize()) for b in self.facets.values())
        cumulative = [rows for _, at_least in self.capacity_splits.values() for rows in at_least]
        bitmaps += sum(len(b.serialize()) for b in (*self.bands, *cumulative, *self.sections.values()))
        bitmaps += self.band_ceilings.nbytes
        certs = sum(c.rows.nbytes + c.start.nbytes + c.end.nbytes for c in self.certificates.values())
        return int(sum(a.nbytes for a in arrays) + bitmaps + certs + self.postings.nbytes + self.names.nbytes)

    # -- bounds (see ``ranking.BoundedWalk``) --------------------------------------------

    def proximity_rings(
        self, latitude: float, longitude: float, reference: float, chosen: BitMap
    ) -> list[tuple[BitMap, float]]:
        """``chosen`` split into rings by an upper bound of ``proximity``, best first (the
        near rings are unions of cells, not yet intersected with ``chosen``).

        A one-degree cell's rows are at least as far as a lower bound of the haversine
        distance to the cell's box: each term of the haversine sum is at its smallest
        at the box's nearest latitude, its nearest longitude and its latitude of least
        cosine. A millimetre's margin covers rounding.
        """
        lat_low, lon_low = self.cell_corners[:, 0], self.cell_corners[:, 1]
        dlat = np.maximum(np.maximum(lat_low - latitude, latitude - (lat_low + 1)), 0.0)
        east = (longitude - lon_low) % 360.0  # degrees east of the box's western edge
        dlon = np.where(east <= 1.0, 0.0, np.minimum(east - 1.0, 360.0 - east))
        cos_low = np.maximum(np.minimum(np.cos(np.radians(lat_low)), np.cos(np.radians(lat_low + 1))), 0.0)
        a = (
            np.sin(np.radians(dlat) / 2) ** 2
            + math.cos(math.radians(latitude)) * cos_low * np.sin(np.radians(dlon) / 2) ** 2
        )
        nearest = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))) - 1e-6
        ceiling = np.clip(1.0 - nearest / reference, 0.0, 1.0)
        ring = np.minimum(np.floor((1.0 - ceiling) * PROXIMITY_RINGS), PROXIMITY_RINGS).astype(np.int64)
        rings: list[tuple[BitMap, float]] = []
        near = BitMap()
        for index in range(PROXIMITY_RINGS):
            members = np.flatnonzero(ring == index)
            if len(members):
                rows = BitMap.union(*(self.facets[self.cell_keys[i]] for i in members.tolist()))
                near |= rows
                rings.append((rows, float(ceiling[members].max())))
        rings.append((chosen - near, 0.0))  # far cells (ceiling 0) and rows without coordinates
        return rings

    def cells_by_distance(self, latitude: float, longitude: float, distance_km: float) -> tuple[BitMap, BitMap]:
        """Rows of the quarter-degree cells wholly within ``distance_km`` of the point, and
        rows of the cells that may be partly within (to be measured). The rows of every
        other cell are farther, and rows without coordinates are in no cell.

        Every point of a cell is within ``FINE_CELL_HALF_DIAGONAL_KM`` of its centre (the
        triangle inequality of great-circle distance); a cell whose centre is farther in
        latitude alone than the distance plus that is wholly outside.
        """
        centres = self.fine_centres
        margin = FINE_CELL_HALF_DIAGONAL_KM
        near = np.flatnonzero(np.abs(centres[:, 0] - latitude) * KM_PER_DEGREE_OF_LATITUDE <= distance_km + margin)
        centre = haversine_km(centres[near, 0], centres[near, 1], latitude, longitude)
        inside = near[centre + margin <= distance_km]
        rim = near[(centre + margin > distance_km) & (centre - margin <= distance_km)]
        return (
            self._any_of(self.fine_keys[i] for i in inside.tolist()),
            self._any_of(self.fine_keys[i] for i in rim.tolist()),
        )

    def held_counts(self, query: Query, chosen: BitMap) -> list[tuple[BitMap, int]]:
        """``chosen`` split by how many of the preferred schemes each row holds (non-empty parts;
        rows holding ``COUNTED_SCHEMES`` or more share one part, counted as holding all).
        """
        day = query.on_date.toordinal()
        schemes = query.preferred_certifications
        groups = count_groups(chosen, [self.valid_certificates(s, day)[0] for s in schemes], most=COUNTED_SCHEMES)
        return [(rows, count if count < COUNTED_SCHEMES else len(schemes)) for rows, count in groups]

    def capacity_parts(self, query: Query, chosen: BitMap) -> list[tuple[BitMap, float]]:
        """Parts of ``chosen`` by an upper bound of the ``capacity`` fit, best first: rows
        that may fit fully, the other rows with a capacity in the query's unit (a row of
        bucket ``b`` has a capacity below ``2**b``, so a fit below ``2**b / target``), and
        the rest (another unit, none, or 0), which fit 0. The first two come from the
        unit's cumulative bitmaps, not intersected with ``chosen`` (a crossing does that).
        """
        target, unit = query.capacity_target, (query.capacity_unit or "").strip().lower()
        assert target is not None
        split = self.capacity_splits.get(unit)
        if split is None:
            return [(chosen, 0.0)] if chosen else []
        buckets, at_least = split
        full = next(
            (i for i, b in enumerate(buckets) if b >= CAPACITY_TOP or math.ldexp(1.0, b) >= target), len(buckets)
        )
        below_bound = math.ldexp(1.0, buckets[full - 1]) / target if full > 0 else 0.0
        fitting, in_unit = at_least[full], at_least[0]
        parts = [(fitting, 1.0), (in_unit - fitting, below_bound), (chosen - in_unit, 0.0)]
        return [(rows, bound) for rows, bound in parts if rows]

    def capacity_buckets(self, unit: str, lowest: float, minimum: float) -> tuple[BitMap, BitMap]:
        """Rows with a capacity in ``unit`` surely at least ``minimum`` (their bucket starts at
        or above it; the segment's own bitmap, not to be changed), and the rows of the buckets between that may hold a
        capacity from ``lowest`` up (``0 < lowest <= minimum``). Bucket ``b`` holds capacities in
        ``[2**(b-1), 2**b)``; ``CAPACITY_TOP`` the infinite ones.
        """
        split = self.capacity_splits.get(unit)
        if split is None:
            return BitMap(), BitMap()
        buckets, at_least = split
        top = len(buckets)
        sure = next((i for i, b in enumerate(buckets) if b >= CAPACITY_TOP or math.ldexp(1.0, b - 1) >= minimum), top)
        maybe = next((i for i, b in enumerate(buckets) if b >= CAPACITY_TOP or math.ldexp(1.0, b) > lowest), top)
        straddling = self._any_of(bucket_key(b, unit) for b in buckets[maybe:sure])
        return at_least[sure], straddling

    # -- evaluation -----------------------------------------------------------------

    def _any_of(self, keys: Iterable[str]) -> BitMap:
        found = [self.facets[k] for k in keys if k in self.facets]
        return BitMap.union(*found) if found else BitMap()

    def base(self, query: Query, removed: BitMap) -> BitMap:
        """Rows passing the categorical, non-upgradeable constraints."""
        selected: list[BitMap] = []
        if query.isic_codes:
            sections = [self.sections[code] for code in query.isic_codes if code in self.sections]
            classes = self._any_of(Facet.isic.keys(code for code in query.isic_codes if code[:1].isdigit()))
            selected.append(BitMap.union(classes, *sections) if sections else classes)
        if query.hs_codes:
            selected.append(self._any_of(Facet.hs.keys(query.hs_codes)))
        if query.countries or query.subdivisions:
            narrowed = {s.split("-", 1)[0] for s in query.subdivisions}
            keys = Facet.country.keys(c for c in query.countries if c not in narrowed)
            keys += Facet.subdivision.keys(query.subdivisions)
            selected.append(self._any_of(keys))
        if query.cluster_ids:
            selected.append(self._any_of(Facet.cluster.keys(query.cluster_ids)))
        if query.size_classes:
            selected.append(self._any_of(Facet.size_class.keys(query.size_classes)))
        selected += [self.facets.get(inclusion_key(c), BitMap()) for c in query.required_inclusion]
        if not selected:
            result = self.all_rows.copy()
        else:
            selected.sort(key=len)
            result = BitMap.intersection(*selected) if len(selected) > 1 else selected[0].copy()
        excluded = [r for r in (self.row_of(i) for i in query.exclude_ids) if r is not None]
        if excluded:
            result.difference_update(BitMap(excluded))
        if removed:
            result.difference_update(removed)
        return result

    def candidate_sets(self, query: Query, removed: BitMap) -> tuple[BitMap, BitMap, BitMap]:
        """Eligible rows, development rows, and those of them short of the minimum capacity.

        A development candidate fails exactly one upgradeable constraint: it misses one
        required certification, or the minimum capacity by at most
        ``DEVELOPMENT_CAPACITY_MARGIN``. Categorical constraints and certificates are
        bitmap operations; the range checks (maximum distance, minimum capacity) read the
        columns of the rows that pass the categorical ones.
        """
        base = self.base(query, removed)
        short = BitMap()
        if query.max_distance_km is not None and query.latitude is not None and query.longitude is not None:
            # Rows of cells wholly within the distance pass unmeasured, rows of cells wholly
            # outside it fail unmeasured; only the rim is measured.
            inside_cells, rim_cells = self.cells_by_distance(query.latitude, query.longitude, query.max_distance_km)
            inside = base & inside_cells
            edge = as_array(base & rim_cells)
            lat, lon = self.latitude[edge], self.longitude[edge]
            base = inside | bitmap_of(edge[within_km(lat, lon, query.latitude, query.longitude, query.max_distance_km)])
        if query.min_monthly_capacity is not None:
            unit = (query.capacity_unit or "").strip().lower()
            minimum = query.min_monthly_capacity
            lowest = minimum * (1 - DEVELOPMENT_CAPACITY_MARGIN) if query.include_development else minimum
            passing = BitMap()
            if lowest > 0:
                # Rows of capacity buckets wholly at or above the minimum pass unmeasured, rows of
                # buckets wholly below the lowest capacity wanted fail; only the rest are measured.
                sure, straddling = self.capacity_buckets(unit, lowest, minimum)
                passing = sure & base
                base &= straddling
            rows = as_array(base)
            same_unit = self.capacity_unit[rows] == (self.units.index(unit) if unit in self.units else -1)
            capacity = self.capacity[rows]
            if query.include_development:
                near = (capacity < minimum) & (capacity >= lowest)
                short = bitmap_of(rows[same_unit & near])
            base = passing | bitmap_of(rows[same_unit & (capacity >= minimum)])
        day = query.on_date.toordinal()
        held = [self.valid_certificates(scheme, day)[0] for scheme in query.required_certifications]
        eligible = base.intersection(*held) if held else base
        development = BitMap()
        if query.include_development:
            for index, scheme_rows in enumerate(held):
                others = held[:index] + held[index + 1 :]
                development |= (base.intersection(*others) if others else base) - scheme_rows
            short = short.intersection(*held) if held else short
            development |= short
        return eligible, development, short

    def criterion_values(
        self,
        query: Query,
        rows: np.ndarray,
        weights: dict[str, float],
        text_terms: tuple[np.ndarray, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """Each active criterion's value in [0, 1] for ``rows`` (ascending)."""
        values: dict[str, np.ndarray] = {}
        if "text" in weights:
            values["text"] = np.clip(self.postings.scores(rows, *text_terms), 0.0, 1.0)
        if "certifications" in weights:
            day = query.on_date.toordinal()
            held = np.zeros(len(rows), dtype=np.float64)
            schemes = query.preferred_certifications
            for scheme in schemes:
                held += members(rows, self.valid_certificates(scheme, day)[1])
            values["certifications"] = held / len(schemes)
        if "proximity" in weights:
            assert query.latitude is not None and query.longitude is not None
            reference = query.max_distance_km or PROXIMITY_REFERENCE_KM
            distance = haversine_km(self.latitude[rows], self.longitude[rows], query.latitude, query.longitude)
            proximity = np.clip(1.0 - distance / reference, 0.0, 1.0)
            proximity[np.isnan(proximity)] = 0.0
            values["proximity"] = proximity
        if "capacity" in weights:
            values["capacity"] = self.capacity_fit(query, rows)
        if "performance" in weights:
            values["performance"] = self.performance(rows)
        if "inclusion" in weights:
            values["inclusion"] = members(rows, self.inclusion_rows()[1]).astype(np.float64)
        return values

    def inclusion_rows(self) -> tuple[BitMap, np.ndarray]:
        """Rows attested women-owned, women-led or youth-led (the ``inclusion`` criterion's 1s),
        as a bitmap and an ascending array; computed once (the segment does not change)."""
        if self._inclusion is None:
            rows = self._any_of(inclusion_key(c) for c in INCLUSION_CLASSES)
            self._inclusion = (rows, as_array(rows))
        return self._inclusion

    def capacity_fit(self, query: Query, rows: np.ndarray) -> np.ndarray:
        """The ``capacity`` criterion of ``rows``: capacity over the target, at most 1; 0 in another unit."""
        target = query.capacity_target
        assert target is not None and query.capacity_unit is not None
        unit = query.capacity_unit.strip().lower()
        code = self.units.index(unit) if unit in self.units else -1
        capacity = self.capacity[rows]
        fit = np.minimum(1.0, capacity / target)
        values: np.ndarray = np.where((self.capacity_unit[rows] == code) & ~np.isnan(capacity), fit, 0.0)
        return values

    def performance(self, rows: np.ndarray) -> np.ndarray:
        values: np.ndarray = self.performance_values[rows]
        return values
