"""Country outlines for the cluster map, from the Natural Earth file shipped beside this module.

The GeoJSON is read once per process (about 0.2 MB); each country is a list of rings
of (longitude, latitude) points. See ``outlines/README.md`` for where it comes from.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

OUTLINES = Path(__file__).parent / "outlines" / "ne_110m_admin_0_countries.geojson"

Ring = list[tuple[float, float]]


@dataclass(frozen=True)
class Country:
    code: str | None  # ISO 3166-1 alpha-2
    name: str
    rings: tuple[Ring, ...]  # outer rings of its polygons (holes are not drawn at this scale)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north)."""
        lons = [lon for ring in self.rings for lon, _ in ring]
        lats = [lat for ring in self.rings for _, lat in ring]
        return min(lons), min(lats), max(lons), max(lats)

    def meets(self, west: float, south: float, east: float, north: float) -> bool:
        w, s, e, n = self.bounds
        return w <= east and e >= west and s <= north and n >= south


@functools.cache
def countries() -> tuple[Country, ...]:
    document = json.loads(OUTLINES.read_text(encoding="utf-8"))
    result = []
    for feature in document["features"]:
        geometry = feature["geometry"]
        polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        rings = tuple([(float(x), float(y)) for x, y in polygon[0]] for polygon in polygons)
        properties = feature["properties"]
        result.append(Country(properties["iso_a2"], properties["name"], rings))
    return tuple(result)


def country(code: str) -> Country | None:
    """The outline of the country with ISO code ``code``, if the dataset has one."""
    return next((c for c in countries() if c.code == code), None)
