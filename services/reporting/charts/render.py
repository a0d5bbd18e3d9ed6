"""Charts drawn with matplotlib's object API (no pyplot state), as SVG or PNG bytes.

Rendering is CPU work: routes call these functions in a worker thread. Output is
deterministic (no timestamps, fixed SVG ids), so the same figures give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

from services.reporting.charts.basemap import Country, countries
from services.reporting.charts.basemap import country as basemap_country

matplotlib.rcParams.update(
    {
        "svg.hashsalt": "linkages-reporting",
        "svg.fonttype": "none",  # text stays text: searchable, and scales with the page
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)

PALETTE = ("#1f6f8b", "#e07b39", "#3a9d5d", "#a23b72", "#6c757d", "#c9a227", "#5b5ea6", "#9b2226")
FORMATS = ("svg", "png")


@dataclass(frozen=True)
class ClusterPoint:
    name: str
    latitude: float
    longitude: float
    firms: int
    country: str = ""


# The cluster map: sea, land and borders (the focus country's darker), the smallest view
# in degrees, and the positions tried for a label around its marker (east first).
SEA, LAND, LAND_FOCUS = "#e4eef5", "#f6f6f4", "#ffffff"
BORDER, BORDER_FOCUS = "#c3c8cc", "#7d8b96"
MIN_SPAN_DEGREES = 4.0
MAP_ASPECT = 1.5  # width over height of the map's axes
LABEL_STYLE: dict[str, Any] = {
    "textcoords": "offset points",
    "fontsize": 7,
    "color": "#222222",
    "bbox": {"boxstyle": "square,pad=0.2", "facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
    "zorder": 4,
}
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))


def _save(figure: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    figure.savefig(buffer, format=fmt, dpi=110, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def _empty(axes: object, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="#6c757d")  # type: ignore[attr-defined]
    axes.set_xticks([])  # type: ignore[attr-defined]
    axes.set_yticks([])  # type: ignore[attr-defined]


def series_chart(title: str, labels: Sequence[str], lines: dict[str, Sequence[float | int | None]], fmt: str) -> bytes:
    """Grouped bars, one colour per indicator (or breakdown category), over the periods."""
    figure = Figure(figsize=(7.2, 3.4))
    axes = figure.add_subplot()
    axes.set_title(title, loc="left", fontweight="bold", pad=22 if lines else 6)
    if not labels:
        _empty(axes, "No periods")
        return _save(figure, fmt)
    x = list(range(len(labels)))
    width = 0.8 / max(1, len(lines))
    for i, (name, values) in enumerate(lines.items()):
        offset = (i - (len(lines) - 1) / 2) * width
        axes.bar(
            [p + offset for p in x],
            [0 if v is None else v for v in values],
            width=width * 0.95,
            color=PALETTE[i % len(PALETTE)],
            label=name,
        )
    step = max(1, math.ceil(len(labels) / 12))
    rotate = len(labels[::step]) > 6
    axes.set_xticks(x[::step], labels[::step], rotation=45 if rotate else 0, ha="right" if rotate else "center")
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    highest = max((v for values in lines.values() for v in values if v is not None), default=0)
    axes.set_ylim(0, highest * 1.05 if highest > 0 else 1)
    axes.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    axes.set_axisbelow(True)
    if lines:
        axes.legend(
            frameon=False,
            fontsize=8,
            loc="lower left",
            bbox_to_anchor=(0, 1.0),
            ncol=min(4, len(lines)),
            borderaxespad=0.2,
        )
    return _save(figure, fmt)


def funnel_chart(stages: dict[str, int], conversion: dict[str, float | None], fmt: str) -> bytes:
    """Horizontal bars from proposed to active, each step's conversion written beside it."""
    figure = Figure(figsize=(6.4, 3.0))
    axes = figure.add_subplot()
    axes.set_title("Linkage funnel", loc="left", fontweight="bold")
    names = list(stages)
    counts = [stages[n] for n in names]
    y = list(range(len(names)))[::-1]
    bars = axes.barh(y, counts, color=[PALETTE[0]] * (len(names) - 1) + [PALETTE[7]], height=0.6)
    axes.set_yticks(y, names)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    top = max(counts) if counts and max(counts) > 0 else 1
    axes.set_xlim(0, top * 1.35)
    for bar, name, count in zip(bars, names, counts, strict=True):
        note = f"{count}"
        share = conversion.get(name)
        if share is not None:
            note += f"  ({share:.0%} of previous)"
        axes.text(bar.get_width() + top * 0.02, bar.get_y() + bar.get_height() / 2, note, va="center", fontsize=8)
    return _save(figure, fmt)


def _view(points: Sequence[ClusterPoint], focus: Country | None) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the map: the focus country with its clusters, or the clusters."""
    lons = [p.longitude for p in points]
    lats = [p.latitude for p in points]
    if focus is not None:
        w, s, e, n = focus.bounds
        lons += [w, e]
        lats += [s, n]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    span = max(east - west, north - south, MIN_SPAN_DEGREES)
    pad = span * 0.12
    middle_lon, middle_lat = (west + east) / 2, (south + north) / 2
    half_lon = max(east - west, MIN_SPAN_DEGREES) / 2 + pad
    half_lat = max(north - south, MIN_SPAN_DEGREES * 0.6) / 2 + pad
    # Widen the narrow side to the figure's shape, so labels have room beside the markers.
    shrink = max(0.2, math.cos(math.radians(middle_lat)))  # a degree of longitude, in degrees of latitude
    if half_lon * shrink < half_lat * MAP_ASPECT:
        half_lon = half_lat * MAP_ASPECT / shrink
    else:
        half_lat = half_lon * shrink / MAP_ASPECT
    return (
        middle_lon - half_lon,
        max(-89.0, middle_lat - half_lat),
        middle_lon + half_lon,
        min(89.0, middle_lat + half_lat),
    )


def _outlines(axes: Any, view: tuple[float, float, float, float], focused: set[str]) -> None:
    """Every country in view: those named in ``focused`` filled, the others pale."""
    shown = [c for c in countries() if c.meets(*view)]
    for is_focus in (False, True):
        rings = [ring for c in shown if (c.code in focused) == is_focus for ring in c.rings]
        if rings:
            axes.add_collection(
                PolyCollection(
                    rings,
                    facecolors=LAND_FOCUS if is_focus else LAND,
                    edgecolors=BORDER_FOCUS if is_focus else BORDER,
                    linewidths=0.8 if is_focus else 0.5,
                    zorder=1,
                )
            )


def _place_labels(figure: Figure, axes: Any, points: Sequence[ClusterPoint], sizes: Sequence[float]) -> tuple[int, int]:
    """Label each cluster where the label overlaps no other label (nor, if it can, a marker).

    Greedy, largest cluster first: eight positions around the marker, then the same
    farther out with a leader line; a label that fits nowhere in the axes is left out.
    Each label's box is measured once and the positions are tried arithmetically.
    Returns (labels placed, labels left out).
    """
    renderer = FigureCanvasAgg(figure).get_renderer()  # type: ignore[no-untyped-call]
    axes.apply_aspect()
    frame = axes.get_window_extent(renderer)
    scale = figure.dpi / 72  # points to pixels
    centres = axes.transData.transform([(p.longitude, p.latitude) for p in points])
    radii = [math.sqrt(size) / 2 * scale for size in sizes]
    markers = [Bbox.from_extents(x - r, y - r, x + r, y + r) for (x, y), r in zip(centres, radii, strict=True)]
    taken: list[Bbox] = []
    placed = left_out = 0
    for index in sorted(range(len(points)), key=lambda i: (-points[i].firms, points[i].name)):
        point, (x, y) = points[index], centres[index]
        text = f"{point.name} ({point.firms})"
        probe = axes.annotate(text, (point.longitude, point.latitude), xytext=(0, 0), **LABEL_STYLE)
        probe.update_bbox_position_size(renderer)
        measured = probe.get_bbox_patch().get_window_extent(renderer)
        probe.remove()
        width, height = measured.width, measured.height
        found = None
        for avoid_markers, ring, (dx, dy) in (
            (avoid, ring, direction) for avoid in (True, False) for ring in range(3) for direction in DIRECTIONS
        ):
            gap = radii[index] + (3 + ring * 16) * scale  # from the marker's centre, in pixels
            left = x + dx * gap - (0 if dx > 0 else width if dx < 0 else width / 2)
            bottom = y + dy * gap - (0 if dy > 0 else height if dy < 0 else height / 2)
            box = Bbox.from_bounds(left, bottom, width, height)
            if not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)):
                continue
            if any(box.overlaps(other) for other in taken):
                continue
            if avoid_markers and any(box.overlaps(m) for i, m in enumerate(markers) if i != index):
                continue
            found = (ring, dx, dy, gap, box)
            break
        if found is None:
            left_out += 1
            continue
        ring, dx, dy, gap, box = found
        axes.annotate(
            text,
            (point.longitude, point.latitude),
            xytext=(dx * gap / scale, dy * gap / scale),
            ha="left" if dx > 0 else "right" if dx < 0 else "center",
            va="bottom" if dy > 0 else "top" if dy < 0 else "center",
            # Farther out, a leader line goes back to the marker.
            arrowprops={"arrowstyle": "-", "color": "#777777", "linewidth": 0.6} if ring else None,
            gid=f"cluster-label-{placed}",
            **LABEL_STYLE,
        )
        taken.append(box)
        placed += 1
    return placed, left_out


def cluster_map(points: Sequence[ClusterPoint], fmt: str, *, country: str | None = None) -> bytes:
    """Clusters at their coordinates over Natural Earth country outlines, each sized by its
    firms and labelled where no label hides another. ``country``: the map of that country."""
    focus = basemap_country(country) if country else None
    figure = Figure(figsize=(7.2, 4.8))
    axes = figure.add_subplot()
    where = f" in {focus.name}" if focus else ""
    axes.set_title(f"Clusters{where}, sized by firms", loc="left", fontweight="bold")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_color(BORDER)
    if not points and focus is None:
        _empty(axes, "No cluster with coordinates in scope")
        return _save(figure, fmt)
    view = _view(points, focus)
    axes.set_facecolor(SEA)
    _outlines(axes, view, {country} if country else {p.country for p in points})
    axes.set_xlim(view[0], view[2])
    axes.set_ylim(view[1], view[3])
    # Equirectangular, with degrees of longitude shortened as at the view's middle latitude.
    axes.set_aspect(1 / max(0.2, math.cos(math.radians((view[1] + view[3]) / 2))), adjustable="box")
    if not points:
        axes.text(0.5, 0.5, "No cluster with coordinates in scope", ha="center", transform=axes.transAxes)
        return _save(figure, fmt)
    largest = max(p.firms for p in points) or 1
    sizes = [30 + 600 * (p.firms / largest) for p in points]
    axes.scatter(
        [p.longitude for p in points],
        [p.latitude for p in points],
        s=sizes,
        alpha=0.6,
        color=PALETTE[0],
        edgecolors="white",
        linewidths=0.8,
        zorder=3,
    )
    _, left_out = _place_labels(figure, axes, points, sizes)
    if left_out:
        note = (
            f"{left_out} label{'s' if left_out > 1 else ''} left out where no room was free: see the table per cluster"
        )
        axes.text(0.01, 0.01, note, transform=axes.transAxes, fontsize=7, color="#555555", zorder=5)
    return _save(figure, fmt)
