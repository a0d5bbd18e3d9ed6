"""CSV exports, SVG/PNG charts, the dashboard's HTML and the indicator definitions."""

from __future__ import annotations

import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest

from services.reporting.indicators.definitions import DEFINITIONS, FIRM_INDICATORS, FIRM_SPLITS, markdown_table
from tests.reporting import expected
from tests.reporting.dataset import ADMIN, Dataset
from tests.reporting.expected import ARTIFACTS, same
from tests.reporting.test_map import label_boxes, overlapping
from tests.support import csv_records

ROOT = Path(__file__).resolve().parents[2]

# The dataset is built once per module and backend (tests/reporting/conftest.py): its tests
# share the module's event loop and one worker.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("reporting-outputs")]


async def get(dataset: Dataset, path: str, **params: Any) -> Any:
    response = await dataset.client.get(path, params=params, headers=ADMIN)
    assert response.status_code == 200, f"{path}: {response.text}"
    return response


async def test_csv_exports_match_the_json(dataset: Dataset) -> None:
    scope = {"programme_id": dataset["P1"]}
    body = (await get(dataset, "/v1/indicators", **scope)).json()["indicators"]
    response = await get(dataset, "/v1/exports/indicators.csv", **scope)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="indicators.csv"'
    rows = csv_records(response)
    assert rows[0].keys() == {"indicator", "label", "unit", "category", "value", "from", "to"}
    seen = set()
    for row in rows:
        figure = body[row["indicator"]]
        split, _, category = row["category"].rpartition(":")
        if row["category"] == "":
            value = figure["value"]
        elif split:  # a firm indicator's split: size_class:micro, ownership:women_owned…
            value = figure["splits"][split][category]
        else:
            value = figure["breakdown"][row["category"]]
        assert same(row["value"], value), row
        seen.add((row["indicator"], row["category"]))
    splits = sum(len(c) for c in FIRM_SPLITS.values())
    assert len(seen) == len(rows) == sum(1 + len(d.breakdown) for d in DEFINITIONS) + splits * len(FIRM_INDICATORS)
    assert ("firms_registered", "ownership:women_led") in seen
    assert {(r["indicator"], r["value"]) for r in rows if r["category"] == ""} >= {
        ("clusters_supported", "2"),
        ("people_reached", "41"),
        ("median_days_to_contract", "29.5"),
    }

    series = csv_records(
        await get(
            dataset,
            "/v1/exports/series.csv",
            **{"from": "2025-01-01", "to": "2025-03-31", "indicator": "brokers_trained"},
        )
    )
    assert [(r["period"], r["from"], r["to"], r["value"]) for r in series] == [
        ("2025-01", "2025-01-01", "2025-01-31", "1"),
        ("2025-02", "2025-02-01", "2025-02-28", "1"),
        ("2025-03", "2025-03-01", "2025-03-31", "0"),
    ]

    clusters = {r["id"]: r for r in csv_records(await get(dataset, "/v1/exports/clusters.csv"))}
    assert set(clusters) == {dataset[c] for c in ("C1", "C2", "C3", "C4", "C5")}
    c1 = clusters[dataset["C1"]]
    columns = (
        "name",
        "firms",
        "jobs",
        "horizontal_networks_active",
        "vertical_networks_active",
        "linkages_proposed",
        "linkages_contracted",
    )
    assert [c1[c] for c in columns] == ["Tiruppur knitwear", "3", "4000", "1", "1", "3", "2"]
    assert clusters[dataset["C5"]]["jobs"] == ""

    funnel = csv_records(await get(dataset, "/v1/exports/funnel.csv"))
    assert [(r["stage"], r["linkages"], r["conversion_from_previous"]) for r in funnel] == [
        ("proposed", "5", ""),
        ("contacted", "4", "0.8"),
        ("qualified", "3", "0.75"),
        ("contracted", "2", "0.6667"),
        ("active", "1", "0.5"),
        ("dropped", "1", ""),
    ]
    definitions = csv_records(await get(dataset, "/v1/exports/definitions.csv"))
    assert [d["indicator"] for d in definitions] == [d.key for d in DEFINITIONS]


async def test_cluster_figures_sort_and_count(dataset: Dataset) -> None:
    """The shared sort and count: by name descending across pages, figures unchanged."""
    whole = (await get(dataset, "/v1/indicators/clusters", limit=50)).json()["items"]
    walked: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"sort": "-name", "limit": 2, "count": "true"} | ({"cursor": cursor} if cursor else {})
        page = (await get(dataset, "/v1/indicators/clusters", **params)).json()
        assert page["total"] == len(whole) == 5
        walked += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = sorted(whole, key=lambda c: c["id"])
    expected.sort(key=lambda c: c["name"], reverse=True)
    assert walked == expected


async def test_cluster_figures_are_paginated(dataset: Dataset) -> None:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = (await get(dataset, "/v1/indicators/clusters", limit=2, **({"cursor": cursor} if cursor else {}))).json()
        assert len(page["items"]) <= 2
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i["id"] for i in items] == sorted(dataset[c] for c in ("C1", "C2", "C3", "C4", "C5"))
    by_id = {i["id"]: i for i in items}
    assert by_id[dataset["C4"]] | {"id": None} == {
        "id": None,
        "name": "Atuntaqui garments",
        "programme_id": dataset["P3"],
        "country": "EC",
        "subdivision": "EC-I",
        "sector_isic": "1410",
        "latitude": 0.332,
        "longitude": -78.214,
        "jobs": 3000,
        "firms": 2,
        "horizontal_networks_active": 1,
        "vertical_networks_active": 0,
        "linkages_proposed": 1,
        "linkages_contracted": 0,
    }
    march = (await get(dataset, "/v1/indicators/clusters", **{"from": "2025-03-01", "to": "2025-03-31"})).json()
    assert {i["id"] for i in march["items"]} == {dataset["C1"], dataset["C2"], dataset["C4"]}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_charts_as_svg_and_png(dataset: Dataset) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    scope = {"from": "2025-01-01", "to": "2025-06-30"}
    texts: dict[str, str] = {}
    for chart, params in (
        ("series", scope | {"indicator": ["brokers_trained", "activities_held"]}),
        ("series", scope | {"indicator": "linkages_by_stage", "granularity": "quarter"}),
        ("funnel", scope),
        ("clusters", {}),
    ):  # firms count at the period's end: today
        svg = await get(dataset, f"/v1/charts/{chart}.svg", **params)
        assert svg.headers["content-type"] == "image/svg+xml"
        root = ElementTree.fromstring(svg.content)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        again = await get(dataset, f"/v1/charts/{chart}.svg", **params)
        assert again.content == svg.content  # deterministic
        png = await get(dataset, f"/v1/charts/{chart}.png", **params)
        assert png.headers["content-type"] == "image/png"
        width, height = png_size(png.content)
        assert width > 300 and height > 150
        name = chart if chart not in texts else f"{chart}-stages"
        texts[name] = svg.text
        (ARTIFACTS / f"{name}.svg").write_bytes(svg.content)
        (ARTIFACTS / f"{name}.png").write_bytes(png.content)
    assert "Brokers trained" in texts["series"] and "2025-06" in texts["series"]
    assert "contracted" in texts["series-stages"] and "2025-Q2" in texts["series-stages"]
    assert "80% of previous" in texts["funnel"] or "100% of previous" in texts["funnel"]
    assert "Tiruppur knitwear (3)" in texts["clusters"] and "Atuntaqui garments (2)" in texts["clusters"]
    assert "Cayambe dairy (1)" in texts["clusters"]
    march = await get(dataset, "/v1/charts/clusters.svg", **{"from": "2025-03-01", "to": "2025-03-31"})
    assert "Agra footwear" not in march.text and "Tiruppur knitwear (0)" in march.text  # Agra's pilot ended in 2023
    empty = await get(dataset, "/v1/charts/clusters.svg", country="EC", to="2024-12-31")
    assert "No cluster with coordinates in scope" in empty.text
    # The map per country: its outline, its clusters only, labels apart.
    for code, name, shown in (("IN", "India", "Tiruppur knitwear (3)"), ("EC", "Ecuador", "Atuntaqui garments (2)")):
        svg = await get(dataset, "/v1/charts/clusters.svg", country=code)
        assert f"Clusters in {name}" in svg.text and shown in svg.text
        boxes = label_boxes(svg.content)
        assert boxes and not overlapping(boxes)
        (ARTIFACTS / f"clusters-{code}.svg").write_bytes(svg.content)
    assert not overlapping(label_boxes(texts["clusters"]))


def parsed(html: str) -> Figures:
    page = Figures()
    page.feed(html)
    return page


class Figures(HTMLParser):
    """Collects the figures a page shows, from their data- attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.key_figures: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.categories: dict[tuple[str, str], str] = {}
        self.splits: dict[tuple[str, str, str], str] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if "data-key-figure" in a:
            self.key_figures[str(a["data-key-figure"])] = a.get("data-value") or ""
        elif "data-split" in a:
            self.splits[(str(a["data-indicator"]), str(a["data-split"]), str(a["data-category"]))] = (
                a.get("data-value") or ""
            )
        elif "data-indicator" in a and "data-category" in a:
            self.categories[(str(a["data-indicator"]), str(a["data-category"]))] = a.get("data-value") or ""
        elif "data-indicator" in a:
            self.values[str(a["data-indicator"])] = a.get("data-value") or ""


def check_page_against_api(page: Figures, api: dict[str, Any]) -> None:
    assert page.key_figures and set(page.values) == set(api)
    for key, text in page.key_figures.items():
        assert same(text, api[key]["value"]), key
    for key, text in page.values.items():
        assert same(text, api[key]["value"]), key
    for (key, category), text in page.categories.items():
        assert same(text, api[key]["breakdown"][category]), (key, category)
    shown = {k for k, _ in page.categories}
    assert shown == {d.key for d in DEFINITIONS if d.breakdown}
    for (key, split, category), text in page.splits.items():
        assert same(text, api[key]["splits"][split][category]), (key, split, category)
    assert {k for k, _, _ in page.splits} == FIRM_INDICATORS
    assert len(page.splits) == len(FIRM_INDICATORS) * sum(len(c) for c in FIRM_SPLITS.values())


async def test_dashboard_html_matches_the_api(dataset: Dataset) -> None:
    response = await get(dataset, "/dashboard", country="EC")
    assert response.headers["content-type"].startswith("text/html")
    page = Figures()
    page.feed(response.text)
    api = (await get(dataset, "/v1/indicators", country="EC")).json()["indicators"]
    check_page_against_api(page, api)
    assert page.key_figures["clusters_supported"] == str(expected.COUNTRY_EC["clusters_supported"]["value"])
    assert not any(tag == "script" for tag, _ in page.tags)  # readable without JavaScript
    form = [a for tag, a in page.tags if tag == "form"]
    assert form == [{"class": "filters", "method": "get", "action": "/dashboard", "id": "filters"}]
    names = {a.get("name") for tag, a in page.tags if tag in ("select", "input")}
    assert {"programme_id", "country", "cluster_id", "from", "to", "granularity"} <= names
    selected = [a for tag, a in page.tags if tag == "option" and "selected" in a]
    assert {"value": "EC", "selected": None} in selected
    assert "Showing: country = Ecuador" in " ".join(response.text.split()), "filters by name, not code"
    assert ">Ecuador</option>" in response.text and ">India</option>" in response.text
    images = [str(a["src"]) for tag, a in page.tags if tag == "img"]
    assert len(images) == 5 and all(src.startswith("/v1/charts/") and "country=EC" in src for src in images)
    # Every country's map, when the view spans several.
    everything = await get(dataset, "/dashboard")
    maps = [
        str(a["src"]) for tag, a in parsed(everything.text).tags if tag == "img" and "clusters.svg" in str(a["src"])
    ]
    assert sorted(parse_qs(urlsplit(src).query).get("country", [""])[0] for src in maps) == ["", "EC", "IN"]
    programme = await get(dataset, "/dashboard", programme_id=dataset["P1"], cluster_id=dataset["C1"], sector="14")
    shown = " ".join(programme.text.split())
    assert "programme = Tamil Nadu and Punjab knitwear" in shown and "cluster = Tiruppur knitwear" in shown
    assert (
        "sector = 14 Manufacture of wearing apparel" in shown and dataset["P1"] not in shown.split("Showing:")[1][:200]
    )
    links = [str(a["href"]) for tag, a in page.tags if tag == "a" and str(a.get("href", "")).startswith("/v1/exports/")]
    assert {link.split("?")[0] for link in links} == {
        f"/v1/exports/{t}.csv" for t in ("indicators", "series", "funnel", "clusters", "definitions")
    }
    for link in links:  # every link the page offers works through the gateway
        assert (await dataset.client.get(link, headers=ADMIN)).status_code == 200, link
    for src in images:
        assert (await dataset.client.get(src, headers=ADMIN)).status_code == 200, src
    assert "Atuntaqui garments" in response.text and "Tiruppur knitwear" not in response.text.split('id="clusters"')[1]

    as_agency = await dataset.client.get("/dashboard", headers=dataset.keys["A"])
    assert as_agency.status_code == 200
    assert "Ecuador clusters" not in as_agency.text  # another agency's programme is no option
    assert "Tamil Nadu and Punjab knitwear" in as_agency.text


async def test_the_dashboard_series_start_where_the_filtered_scope_does(dataset: Dataset) -> None:
    def series_from(html: str) -> set[str]:
        page = Figures()
        page.feed(html)
        sources = [str(a["src"]) for tag, a in page.tags if tag == "img" and "/series.svg" in str(a["src"])]
        assert sources
        return {parse_qs(urlsplit(src).query)["from"][0] for src in sources}

    everything = await get(dataset, "/dashboard")
    assert series_from(everything.text) == {"2023-01-01"}  # the Agra pilot's start, the first event of all
    # Atuntaqui's first event is the Supermercados network formed on 2024-06-01 (its
    # programme started later): its series do not open with a year and a half of nothing.
    atuntaqui = await get(dataset, "/dashboard", cluster_id=dataset["C4"])
    assert series_from(atuntaqui.text) == {"2024-06-01"}


async def test_definitions_are_served_and_in_the_docs(dataset: Dataset) -> None:
    served = (await get(dataset, "/v1/indicators/definitions")).json()
    assert [d["key"] for d in served] == [d.key for d in DEFINITIONS]
    assert served[1] == {
        "key": "firms_registered",
        "label": "Firms registered",
        "section": "Clusters and firms",
        "unit": "firms",
        "kind": "stock",
        "counts": DEFINITIONS[1].counts,
        "source": "registry firms",
        "date": "the day the firm record was created",
        "breakdown_by": "size_class",
        "breakdown": ["micro", "small", "medium", "large"],
        "splits": {
            "size_class": ["micro", "small", "medium", "large"],
            "ownership": ["women_owned", "women_led", "youth_led", "other", "not_recorded"],
        },
        "breakdown_unit": "firms",
    }
    assert served[0]["splits"] == {}  # clusters are not firms
    outcome = next(d for d in served if d["key"] == "sales_change_of_network_members")
    assert (outcome["unit"], outcome["breakdown_unit"]) == ("share", "firms"), "a share, counted over firms"
    assert markdown_table() in (ROOT / "docs" / "reporting.md").read_text(), (
        "docs/reporting.md's indicator table is out of date"
    )
    merged = (await dataset.client.get("/openapi.json")).json()
    assert {"/v1/indicators", "/v1/indicators/series", "/v1/exports/{table}.csv", "/dashboard"} <= set(merged["paths"])
