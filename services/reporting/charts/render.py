"""Charts drawn with matplotlib's object API (no pyplot state), as SVG or PNG bytes.

Rendering is CPU work: routes call these functions in a worker thread. Output is
deterministic (no timestamps, fixed SVG ids), so the same figures give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

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


def cluster_map(points: Sequence[ClusterPoint], fmt: str) -> bytes:
    """Clusters at their coordinates, each sized by its number of firms (a map without a basemap)."""
    figure = Figure(figsize=(7.2, 4.2))
    axes = figure.add_subplot()
    axes.set_title("Clusters by location, sized by firms", loc="left", fontweight="bold")
    if not points:
        _empty(axes, "No cluster with coordinates in scope")
        return _save(figure, fmt)
    largest = max(p.firms for p in points) or 1
    sizes = [40 + 900 * (p.firms / largest) for p in points]
    axes.scatter(
        [p.longitude for p in points],
        [p.latitude for p in points],
        s=sizes,
        alpha=0.55,
        color=PALETTE[0],
        edgecolors=PALETTE[0],
        linewidths=1,
    )
    lons = [p.longitude for p in points]
    lats = [p.latitude for p in points]
    span = max(max(lons) - min(lons), max(lats) - min(lats), 1.0)
    placed: list[tuple[float, float]] = []
    for p in sorted(points, key=lambda q: (-q.firms, q.name)):
        # Labels of clusters close to one already labelled are stacked below it, not on top of it.
        crowd = sum(
            1 for lon, lat in placed if abs(lon - p.longitude) < span * 0.3 and abs(lat - p.latitude) < span * 0.05
        )
        placed.append((p.longitude, p.latitude))
        axes.annotate(
            f"{p.name} ({p.firms})",
            (p.longitude, p.latitude),
            xytext=(9, 3 - 11 * crowd),
            textcoords="offset points",
            fontsize=7,
            color="#333333",
        )
    pad_x = max(1.0, (max(lons) - min(lons)) * 0.08)
    pad_y = max(1.0, (max(lats) - min(lats)) * 0.12)
    axes.set_xlim(min(lons) - pad_x, max(lons) + pad_x + span * 0.25)
    axes.set_ylim(min(lats) - pad_y * 2, max(lats) + pad_y)
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")
    axes.grid(color="#eeeeee", linewidth=0.6)
    return _save(figure, fmt)
