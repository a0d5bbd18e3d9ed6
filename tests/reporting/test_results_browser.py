"""The results page in a real headless Chromium, through the gateway served by uvicorn on 127.0.0.1.

Every period's target, actual and share achieved shown must equal the API's, each progress
bar must be drawn as wide as the share achieved (within 0 and 100 %), the accents of the
statements must survive, and the dashboard must link to the page. Screenshots go to
``test-artifacts/reporting/``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.reporting.browser import Page, chromium, chromium_or_skip, serve
from tests.reporting.dataset import Dataset
from tests.reporting.expected import ARTIFACTS, same
from tests.reporting.framework import STATEMENT, build, expected_periods

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("reporting-browser"),
]

READ_RESULTS = """(() => Array.from(document.querySelectorAll('[data-result-indicator]')).map(t => ({
  indicator: t.getAttribute('data-result-indicator'),
  level: t.closest('[data-level]').getAttribute('data-level'),
  statement: t.querySelector('.statement').textContent.trim(),
  periods: Array.from(t.querySelectorAll('tr[data-period]')).map(r => {
    const bar = r.querySelector('.bar'), fill = bar.querySelector('span');
    return {label: r.getAttribute('data-period'), target: r.getAttribute('data-target'),
      actual: r.getAttribute('data-actual'), achieved: r.getAttribute('data-achieved'),
      drawn: fill.getBoundingClientRect().width / bar.getBoundingClientRect().width,
      shown: r.cells[5].textContent.trim()};
  }),
})))()"""


@pytest.fixture(scope="session")
def browser_path() -> str:
    return chromium_or_skip()


async def api(dataset: Dataset, key: str) -> dict[str, Any]:
    response = await dataset.client.get(f"/v1/results/{dataset['P1']}", headers=dataset.keys[key])
    assert response.status_code == 200, response.text
    return dict(response.json())


async def read(page: Page) -> list[dict[str, Any]]:
    assert (await page.evaluate("document.title")).startswith("Programme results")
    shown: list[dict[str, Any]] = await page.evaluate(READ_RESULTS)
    return shown


def check(shown: list[dict[str, Any]], body: dict[str, Any]) -> None:
    assert [(t["indicator"], t["level"]) for t in shown] == [(i["indicator"], i["level"]) for i in body["indicators"]]
    for table, item in zip(shown, body["indicators"], strict=True):
        assert table["statement"] == item["statement"]
        assert [p["label"] for p in table["periods"]] == [p["label"] for p in item["periods"]]
        for row, period in zip(table["periods"], item["periods"], strict=True):
            assert same(row["target"], period["target"]) and same(row["actual"], period["actual"]), (row, period)
            assert same(row["achieved"], period["share_achieved"]), (row, period)
            width = min(max(period["share_achieved"] or 0, 0), 1)
            assert abs(row["drawn"] - width) < 0.02, (row, period)  # the bar is as wide as the share
            if period["share_achieved"] is not None:
                assert row["shown"] == f"{period['share_achieved']:.0%}", row


async def test_results_page_in_a_browser(dataset: Dataset, browser_path: str) -> None:
    await build(dataset)
    body = await api(dataset, "A")
    assert {i["indicator"]: [p["share_achieved"] for p in i["periods"]] for i in body["indicators"]} == {
        key: [p["share_achieved"] for p in periods] for key, periods in expected_periods().items()
    }
    async with serve(dataset.stack.gateway) as base, chromium(browser_path) as browser:
        page = await browser.new_page(dataset.keys["A"])
        # From the dashboard filtered by the programme, a click on the link.
        await page.goto(f"{base}/dashboard?programme_id={dataset['P1']}")
        await page.loaded(page.click("#results-link"))
        assert await page.evaluate("location.pathname") == f"/dashboard/results/{dataset['P1']}"
        shown = await read(page)
        check(shown, body)
        assert shown[0]["statement"] == STATEMENT  # accents and the dash as written
        links = await page.evaluate("Array.from(document.querySelectorAll('a[id]')).map(a => a.id)")
        assert {"logframe-csv", "logframe-xlsx", "iati-xml"} <= set(links)
        await page.screenshot(ARTIFACTS / "results-programme.png")

        # A viewer reads the same page; another agency's key finds no such programme.
        viewer = await browser.new_page(dataset.keys["viewer"])
        await viewer.goto(f"{base}/dashboard/results/{dataset['P1']}")
        check(await read(viewer), await api(dataset, "viewer"))
        other = await browser.new_page(dataset.keys["B"])
        await other.goto(f"{base}/dashboard/results/{dataset['P1']}")
        assert await other.evaluate("fetch(location.href).then(r => r.status)") == 404
        assert "No programme" in await other.evaluate("document.body.textContent")

        # A programme without a framework says how to start one.
        empty = await browser.new_page(dataset.keys["B"])
        await empty.goto(f"{base}/dashboard/results/{dataset['P3']}")
        assert await empty.evaluate("document.getElementById('no-framework') !== null")
        await empty.screenshot(ARTIFACTS / "results-no-framework.png")
