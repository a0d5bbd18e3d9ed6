"""The dashboard in a real headless Chromium, through the gateway served by uvicorn on 127.0.0.1.

The page must load with its charts, the filter form must work when submitted with a
mouse click, and every figure shown must equal the API's. Screenshots go to
``test-artifacts/reporting/``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.reporting import expected
from tests.reporting.browser import Page, chromium, chromium_or_skip, serve
from tests.reporting.dataset import ADMIN, Dataset
from tests.reporting.expected import ARTIFACTS, same
from tests.reporting.test_map import overlapping

# The dataset is built once per module and backend (tests/reporting/conftest.py): its tests
# share the module's event loop and one worker.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("reporting-browser"),
]

READ_FIGURES = """(() => {
  const read = (selector, key) => Array.from(document.querySelectorAll(selector)).map(e => ({
      key: e.getAttribute(key), category: e.getAttribute('data-category'), split: e.getAttribute('data-split'),
      value: e.getAttribute('data-value'),
      text: e.textContent.trim()}));
  return {
    keyFigures: read('[data-key-figure]', 'data-key-figure'),
    figures: read('[data-indicator]', 'data-indicator'),
    images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
    search: location.search,
    title: document.title,
    applied: document.getElementById('applied-filters').textContent.replace(/\\s+/g, ' ').trim(),
    programmes: Array.from(document.querySelectorAll('select[name=programme_id] option')).map(o => o.textContent),
  };
})()"""


LABEL_BOXES = """Object.fromEntries(Array.from(document.querySelectorAll('g[id^=cluster-label-]')).map(g => {
  const r = g.getBoundingClientRect(); return [g.textContent.trim(), [r.left, r.top, r.right, r.bottom]]; }))"""


@pytest.fixture(scope="session")
def browser_path() -> str:
    return chromium_or_skip()


async def shown(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate(READ_FIGURES)
    assert state["title"].startswith("Programme indicators"), state["title"]
    assert state["images"] and all(image["ok"] for image in state["images"]), state["images"]
    return state


def check(state: dict[str, Any], api: dict[str, Any]) -> None:
    """Every figure on the page equals the API's, and the visible text says the same."""
    assert {f["key"] for f in state["figures"]} == set(api)
    for figure in state["keyFigures"] + state["figures"]:
        if figure.get("split"):  # the firm indicators' table: by size class and by ownership
            want = api[figure["key"]]["splits"][figure["split"]][figure["category"]]
        elif figure["category"] is None:
            want = api[figure["key"]]["value"]
        else:
            want = api[figure["key"]]["breakdown"][figure["category"]]
        assert same(figure["value"], want), (figure, want)
        if want is not None and isinstance(want, int):
            assert figure["text"].replace(",", "") == str(want), figure


async def api(dataset: Dataset, key: str = "admin", **params: Any) -> dict[str, Any]:
    response = await dataset.client.get("/v1/indicators", params=params, headers=dataset.keys[key])
    assert response.status_code == 200, response.text
    return dict(response.json()["indicators"])


async def test_dashboard_in_a_browser(dataset: Dataset, browser_path: str) -> None:
    async with serve(dataset.stack.gateway) as base, chromium(browser_path) as browser:
        page = await browser.new_page(ADMIN)
        await page.goto(f"{base}/dashboard")
        everything = await shown(page)
        check(everything, await api(dataset))
        assert len(everything["images"]) == 7, "five charts and a map per country (India, Ecuador)"
        splits = [f for f in everything["figures"] if f.get("split") == "ownership" and f["key"] == "firms_registered"]
        assert {f["category"]: f["value"] for f in splits}["women_led"] == "2"  # F2 and F4
        assert everything["applied"] == "Showing: all records"
        await page.screenshot(ARTIFACTS / "dashboard-all.png")

        # Filter as a person does: choose a country and a period, click Apply (a plain GET form, no script).
        await page.evaluate(
            "document.querySelector('select[name=country]').value = 'EC';"
            "document.querySelector('input[name=from]').value = '2025-01-01'"
        )
        await page.loaded(page.click("#apply"))
        ecuador = await shown(page)
        assert "country=EC" in ecuador["search"] and "from=2025-01-01" in ecuador["search"]
        assert ecuador["applied"] == "Showing: country = Ecuador"
        check(ecuador, await api(dataset, country="EC", **{"from": "2025-01-01"}))
        figures = {f["key"]: f["value"] for f in ecuador["keyFigures"]}
        assert figures["clusters_supported"] == "2" and figures["brokers_trained"] == "0"  # B3 trained in 2024
        await page.screenshot(ARTIFACTS / "dashboard-ecuador-2025.png")

        # A map per country, each opening that country's dashboard; filters shown by name.
        await page.goto(f"{base}/dashboard")
        await page.screenshot(ARTIFACTS / "dashboard-country-maps.png", "#country-maps")
        await page.loaded(page.click("[data-country-map=IN] figcaption a"))
        india = await shown(page)
        assert india["search"] == "?country=IN" and india["applied"] == "Showing: country = India"
        check(india, await api(dataset, country="IN"))
        await page.screenshot(ARTIFACTS / "dashboard-india.png")
        # The map as the browser draws it: no label box over another, with the browser's own fonts.
        await page.goto(f"{base}/v1/charts/clusters.svg?country=IN")
        boxes = await page.evaluate(LABEL_BOXES)
        assert len(boxes) >= 2 and not overlapping(boxes), boxes

        # A filtered view is a link: programme and quarter.
        await page.goto(
            f"{base}/dashboard?programme_id={dataset['P1']}&from=2025-03-01&to=2025-03-31&granularity=quarter"
        )
        march = await shown(page)
        check(march, await api(dataset, programme_id=dataset["P1"], **{"from": "2025-03-01", "to": "2025-03-31"}))
        await page.screenshot(ARTIFACTS / "dashboard-programme-march.png")

        # An agency's key: its own figures and programmes only.
        agency = await browser.new_page(dataset.keys["B"])
        await agency.goto(f"{base}/dashboard")
        own = await shown(agency)
        check(own, await api(dataset, "B"))
        assert {f["key"]: f["value"] for f in own["keyFigures"]}["clusters_supported"] == str(
            expected.AGENCY_B["clusters_supported"]["value"]
        )
        assert own["programmes"] == ["All programmes", "Ecuador clusters"]
        await agency.screenshot(ARTIFACTS / "dashboard-agency-b.png")

        # A person with no header to send: the dashboard sends them to sign in, and back to the
        # view they asked for, which then reads (charts included) with the session cookie.
        person = await browser.new_page({})
        await person.goto(f"{base}/dashboard?country=EC")
        assert await person.evaluate("location.pathname") == "/login"
        key = dataset.keys["B"]["Authorization"].removeprefix("Bearer ")
        await person.evaluate(f"document.getElementById('api_key').value = {json.dumps(key)}")
        await person.loaded(person.click("button[type=submit]"))
        signed_in = await shown(person)
        assert signed_in["search"] == "?country=EC"
        check(signed_in, await api(dataset, "B", country="EC"))
        await person.screenshot(ARTIFACTS / "dashboard-signed-in.png")
