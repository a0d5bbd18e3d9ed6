"""The cluster map: Natural Earth outlines shipped with the service, labels that never overlap."""

from __future__ import annotations

import re
from itertools import combinations
from xml.etree import ElementTree

from services.reporting.charts.basemap import countries, country
from services.reporting.charts.render import ClusterPoint, cluster_map

SVG = "{http://www.w3.org/2000/svg}"
Box = tuple[float, float, float, float]


def label_boxes(svg: bytes | str) -> dict[str, Box]:
    """Each cluster label's box (its background patch) in the SVG: (x0, y0, x1, y1)."""
    root = ElementTree.fromstring(svg)
    boxes: dict[str, Box] = {}
    for group in root.iter(f"{SVG}g"):
        if not group.get("id", "").startswith("cluster-label-"):
            continue
        path = next(group.iter(f"{SVG}path"))
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
        xs, ys = numbers[0::2], numbers[1::2]
        text = "".join(next(group.iter(f"{SVG}text")).itertext())
        boxes[text] = (min(xs), min(ys), max(xs), max(ys))
    return boxes


def overlapping(boxes: dict[str, Box]) -> list[tuple[str, str]]:
    return [
        (a, b)
        for (a, (ax0, ay0, ax1, ay1)), (b, (bx0, by0, bx1, by1)) in combinations(boxes.items(), 2)
        if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1
    ]


def crowded() -> list[ClusterPoint]:
    """Fourteen clusters within a few kilometres of Tiruppur, and two far apart."""
    around = [
        ClusterPoint(f"Tiruppur knit {i}", 11.1 + 0.05 * (i % 4), 77.3 + 0.06 * (i // 4), 10 + i, "IN")
        for i in range(14)
    ]
    return [
        *around,
        ClusterPoint("Ludhiana hosiery", 30.9, 75.85, 40, "IN"),
        ClusterPoint("Agra", 27.18, 78.0, 12, "IN"),
    ]


def test_natural_earth_outlines_are_shipped() -> None:
    assert len(countries()) == 177
    india, ecuador = country("IN"), country("EC")
    assert india is not None and india.name == "India" and ecuador is not None
    west, south, east, north = india.bounds
    assert 68 < west < 70 and 96 < east < 98 and 6 < south < 9 and 34 < north < 36
    assert country("ZZ") is None


def test_labels_never_overlap_in_a_crowd() -> None:
    svg = cluster_map(crowded(), "svg")
    boxes = label_boxes(svg)
    assert "Ludhiana hosiery (40)" in boxes and "Agra (12)" in boxes, "clusters apart are all labelled"
    assert len(boxes) >= 8, "the crowd is labelled around its markers, with leader lines"
    assert not overlapping(boxes)
    left_out = 16 - len(boxes)
    assert left_out == 0 or f"{left_out} labels left out" in svg.decode(), "what is not labelled is said"


def test_a_country_map_draws_its_outline_and_neighbours() -> None:
    points = [
        ClusterPoint("Atuntaqui garments", 0.33, -78.21, 2, "EC"),
        ClusterPoint("Cayambe dairy", 0.04, -78.14, 1, "EC"),
    ]
    svg = cluster_map(points, "svg", country="EC")
    text = svg.decode()
    assert "Clusters in Ecuador" in text
    outlines = [g for g in ElementTree.fromstring(svg).iter(f"{SVG}g") if g.get("id", "").startswith("PolyCollection")]
    assert len(outlines) == 2, "the neighbours pale, Ecuador in front"
    assert len(list(outlines[1].iter(f"{SVG}path"))) >= 1
    assert not overlapping(label_boxes(svg)) and len(label_boxes(svg)) == 2
    assert cluster_map(points, "svg", country="EC") == svg, "deterministic"
    empty = cluster_map([], "svg", country="EC").decode()
    assert "Clusters in Ecuador" in empty and "No cluster with coordinates in scope" in empty
