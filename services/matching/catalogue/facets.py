"""The keys of a segment's facet bitmaps: one bitmap per categorical value.

A key is ``kind:value`` (``c:IN``, ``i:1430``, ``g:11:77``): the kind a ``Facet``, the
value the attribute's, or a cell's corner, or a capacity bucket and its unit. The keys
are plain strings because snapshots store them (``snapshot.py``) and every query looks
them up; build and parse them only through this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import StrEnum

import numpy as np

from services.matching.catalogue.records import SupplierRecord

# Quarter-degree cells (``Facet.fine_cell``), kept for maximum-distance checks only: the
# rows of the cells wholly inside a radius pass unmeasured, and finer cells leave a
# thinner rim of rows to measure than one-degree cells alone (docs/matching.md).
FINE_CELLS_PER_DEGREE = 4
CAPACITY_TOP = 1 << 12  # the bucket of an infinite capacity: above any finite one's (at most 1024)


class Facet(StrEnum):
    """The kinds of facet, each the prefix of its keys."""

    country = "c"  # ISO 3166-1 alpha-2
    subdivision = "s"  # ISO 3166-2
    cluster = "k"  # a cluster id
    size_class = "z"
    isic = "i"  # an ISIC Rev.4 class or any prefix of it of two digits or more
    hs = "h"  # an HS code or any prefix of it of two digits or more
    cell = "g"  # a one-degree cell: ``g:<latitude>:<longitude>`` of its south-west corner
    fine_cell = "f"  # a quarter-degree cell, its corner in quarter degrees
    capacity = "q"  # a capacity bucket: ``q:<bucket>:<unit>`` (``capacity_key``)
    # Inclusion classes attested true, one kind each (``wo:1``): standards may require
    # several at once, and reverse matching indexes each kind as a dimension of its own.
    women_owned = "wo"
    women_led = "wl"
    youth_led = "yl"

    @property
    def prefix(self) -> str:
        """What every key of this kind starts with (``c:``)."""
        return f"{self._value_}:"

    def key(self, value: object) -> str:
        return f"{self._value_}:{value}"

    def keys(self, values: Iterable[object]) -> list[str]:
        prefix = self.prefix
        return [f"{prefix}{value}" for value in values]

    def among(self, keys: Iterable[str]) -> list[str]:
        """The keys of this kind among ``keys``, in their order."""
        prefix = self.prefix
        return [key for key in keys if key.startswith(prefix)]


def parts(key: str) -> list[str]:
    """The value of a key split at its colons (``g:11:77`` -> ``["11", "77"]``)."""
    return key.split(":")[1:]


def isic_prefixes(code: str) -> list[str]:
    return [code[:n] for n in range(2, len(code) + 1)] if code[:1].isdigit() else [code]


def hs_prefixes(code: str) -> list[str]:
    return [code[:n] for n in range(2, len(code) + 1)]


def geo_cell(latitude: float, longitude: float) -> str:
    return f"{_CELL}{math.floor(latitude)}:{((math.floor(longitude) + 180) % 360) - 180}"


def fine_cell(latitude: float, longitude: float) -> str:
    """The quarter-degree cell, keyed by its south-west corner in quarter degrees."""
    span = 360 * FINE_CELLS_PER_DEGREE
    lat, lon = math.floor(latitude * FINE_CELLS_PER_DEGREE), math.floor(longitude * FINE_CELLS_PER_DEGREE)
    return f"{_FINE_CELL}{lat}:{((lon + span // 2) % span) - span // 2}"


def capacity_key(unit: str, capacity: float) -> str | None:
    """The capacity bucket of a row with ``capacity`` in its (normalised) ``unit``: ``b`` of
    ``2**(b-1) <= capacity < 2**b``, or ``CAPACITY_TOP`` when not finite; None when not
    above 0 (its capacity fit is at most 0)."""
    if not capacity > 0:  # also NaN
        return None
    bucket = math.frexp(capacity)[1] if math.isfinite(capacity) else CAPACITY_TOP
    return bucket_key(bucket, unit)


def inclusion_key(inclusion_class: str) -> str:
    """The key of the rows attested ``inclusion_class`` (women_owned, women_led, youth_led)."""
    return Facet[inclusion_class].key(1)


def bucket_key(bucket: int, unit: str) -> str:
    return f"{_CAPACITY}{bucket}:{unit}"


def bucket_of(key: str) -> tuple[int, str]:
    """The bucket and unit of a ``Facet.capacity`` key (a unit may hold colons)."""
    bucket, unit = key[len(_CAPACITY) :].split(":", 1)
    return int(bucket), unit


# Key prefixes as names: ``supplier_keys`` runs once per row of a segment, and a
# member's ``prefix`` is a property call.
_COUNTRY = Facet.country.prefix
_SUBDIVISION = Facet.subdivision.prefix
_CLUSTER = Facet.cluster.prefix
_SIZE_CLASS = Facet.size_class.prefix
_ISIC = Facet.isic.prefix
_HS = Facet.hs.prefix
_CELL = Facet.cell.prefix
_FINE_CELL = Facet.fine_cell.prefix
_CAPACITY = Facet.capacity.prefix


def supplier_keys(supplier: SupplierRecord, unit: str, capacity: float) -> set[str]:
    """The facet keys of ``supplier``, its capacity ``capacity`` in its normalised ``unit``."""
    s = supplier
    keys = {f"{_COUNTRY}{s.country}", f"{_SIZE_CLASS}{s.size_class}"}
    if s.subdivision:
        keys.add(f"{_SUBDIVISION}{s.subdivision}")
    keys.update(f"{_CLUSTER}{cluster}" for cluster in s.cluster_ids)
    keys.update(f"{_ISIC}{p}" for code in s.isic_codes for p in isic_prefixes(code))
    keys.update(f"{_HS}{p}" for code in s.hs_codes for p in hs_prefixes(code))
    keys.update(inclusion_key(c) for c in s.inclusion)
    bucket = capacity_key(unit, capacity)
    if bucket is not None:
        keys.add(bucket)
    if s.latitude is not None and s.longitude is not None:
        latitude32, longitude32 = float(np.float32(s.latitude)), float(np.float32(s.longitude))
        keys.add(geo_cell(latitude32, longitude32))
        keys.add(fine_cell(latitude32, longitude32))
    return keys
