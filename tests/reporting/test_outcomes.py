"""Firm outcome indicators from a known dataset of firm results, built through the gateway.

Agency A (India): programme P with cluster C1 (support from 2025-01-01) and cluster C2
with no programme (supported from the day it is registered: today, so not in 2025).
Network N1 of C1 (formed 2025-01-10) has F1, F2 and F4; N2 of C2 (formed 2026-06-01)
has F3. Agency B (Ecuador): programme Q, cluster C3, network N3 with F6 and F7.

| firm | cluster | results | employees | sales (currency) | exports |
| --- | --- | --- | --- | --- | --- |
| F1 | C1 | 2024, 2025, 2026-Q1 | 10, 14, 20 | 100, 150, 40 USD | 0, 20, – |
| F2 | C1 | 2024-Q4, 2025-Q4 | 5, 3 | 50, 60 USD | 10, 5 |
| F3 | C2 | 2024, 2025 | 30, 35 | 200, 300 USD | – |
| F4 | C1 | 2024, 2025 | 8, 8 | 100 USD, 120 EUR | – |
| F5 | C1 | 2025 | 12 | – | – |
| F6 | C3 | 2024, 2025 | 100, 150 | 1000, 900 USD | – |

F1's quarter is not compared with its years (periods of one length only); F4's sales
are in two currencies (not reporting sales); F5 has no baseline to compare with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.registry.helpers import cluster_body, firm_body, network_body
from tests.reporting.browser import chromium, chromium_or_skip, serve
from tests.reporting.dataset import ADMIN, bearer, caught_up
from tests.reporting.expected import ARTIFACTS
from tests.support import BOOTSTRAP_KEY, Stack

KEYS = ("jobs_created_in_supported_clusters", "sales_change_of_network_members", "exports_change_of_network_members")
IN = {"country": "IN", "subdivision": "IN-TN"}
EC = {"country": "EC", "subdivision": "EC-I"}
RESULTS: dict[str, list[dict[str, Any]]] = {
    "F1": [
        {"period": "2024", "employees": 10, "currency": "USD", "sales": 100.0, "exports": 0.0},
        {"period": "2025", "employees": 14, "currency": "USD", "sales": 150.0, "exports": 20.0},
        {"period": "2026-Q1", "employees": 20, "currency": "USD", "sales": 40.0},
    ],
    "F2": [
        {"period": "2024-Q4", "employees": 5, "currency": "USD", "sales": 50.0, "exports": 10.0},
        {"period": "2025-Q4", "employees": 3, "currency": "USD", "sales": 60.0, "exports": 5.0},
    ],
    "F3": [
        {"period": "2024", "employees": 30, "currency": "USD", "sales": 200.0},
        {"period": "2025", "employees": 35, "currency": "USD", "sales": 300.0},
    ],
    "F4": [
        {"period": "2024", "employees": 8, "currency": "USD", "sales": 100.0},
        {"period": "2025", "employees": 8, "currency": "EUR", "sales": 120.0},
    ],
    "F5": [{"period": "2025", "employees": 12}],
    "F6": [
        {"period": "2024", "employees": 100, "currency": "USD", "sales": 1000.0},
        {"period": "2025", "employees": 150, "currency": "USD", "sales": 900.0},
    ],
}


FRAMEWORK = {
    "indicator": "jobs_created_in_supported_clusters",
    "level": "outcome",
    "statement": "Supported firms create jobs",
    "baseline": {"value": 0, "date": "2024-12-31"},
    "targets": [{"label": "2025", "from": "2025-01-01", "to": "2025-12-31", "value": 10}],
    "means_of_verification": "Firm results entered by the agency",
}


def moved(reporting: int = 0, grew: int = 0, unchanged: int = 0, shrank: int = 0) -> dict[str, int]:
    return {"reporting": reporting, "grew": grew, "unchanged": unchanged, "shrank": shrank}


class Outcomes:
    def __init__(self, stack: Stack) -> None:
        self.stack, self.client = stack, stack.client
        self.ids: dict[str, str] = {}
        self.keys: dict[str, dict[str, str]] = {"admin": ADMIN}

    async def post(self, path: str, body: dict[str, Any], key: str, name: str | None = None) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=self.keys[key])
        assert response.status_code == 201, f"{path}: {response.text}"
        if name is not None:
            self.ids[name] = response.json()["id"]
        return dict(response.json())

    async def build(self) -> Outcomes:
        for name, country in (("A", "IN"), ("B", "EC")):
            created = await self.post("/v1/agencies", {"name": f"Agency {name}", "country": country}, "admin", name)
            key = await self.stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=created["id"])
            self.keys[name] = bearer(key)
        programme = {"phase": "pilot", "start_date": "2025-01-01"}
        await self.post("/v1/programmes", {"name": "Knitwear", "country": "IN", **programme}, "A", "P")
        await self.post("/v1/programmes", {"name": "Garments", "country": "EC", **programme}, "B", "Q")
        await self.post("/v1/clusters", cluster_body(name="Tiruppur", programme_id=self.ids["P"], **IN), "A", "C1")
        await self.post("/v1/clusters", cluster_body(name="Erode", **IN), "A", "C2")
        await self.post("/v1/clusters", cluster_body(name="Atuntaqui", programme_id=self.ids["Q"], **EC), "B", "C3")
        for name, cluster, agency, place in (
            ("F1", "C1", "A", IN),
            ("F2", "C1", "A", IN),
            ("F3", "C2", "A", IN),
            ("F4", "C1", "A", IN),
            ("F5", "C1", "A", IN),
            ("F6", "C3", "B", EC),
            ("F7", "C3", "B", EC),
        ):
            body = firm_body(name=f"Firm {name}", cluster_ids=[self.ids[cluster]], latitude=None, longitude=None)
            await self.post("/v1/firms", body | place, agency, name)
        for name, cluster, agency, formed, members in (
            ("N1", "C1", "A", "2025-01-10", ("F1", "F2", "F4")),
            ("N2", "C2", "A", "2026-06-01", ("F3", "F5")),
            ("N3", "C3", "B", "2025-02-01", ("F6", "F7")),
        ):
            body = network_body(
                name=name,
                cluster_id=self.ids[cluster],
                formed_on=formed,
                members=[{"firm_id": self.ids[m], "role": "member"} for m in members],
            )
            await self.post("/v1/networks", body, agency, name)
        for firm, results in RESULTS.items():
            agency = "B" if firm == "F6" else "A"
            for result in results:
                await self.post(
                    "/v1/firm-results", result | {"firm_id": self.ids[firm]}, agency, f"{firm}/{result['period']}"
                )
        await caught_up(self.stack)
        return self

    async def figures(self, key: str = "admin", to: str = "2025-12-31", **params: Any) -> dict[str, Any]:
        query = {"from": "2025-01-01", "to": to} | params
        response = await self.client.get("/v1/indicators", params=query, headers=self.keys[key])
        assert response.status_code == 200, response.text
        body = response.json()["indicators"]
        return {k: (body[k]["value"], body[k]["breakdown"]) for k in KEYS}


def outcomes(jobs: tuple[int, dict[str, int]], sales: Any, exports: Any) -> dict[str, Any]:
    return dict(zip(KEYS, (jobs, sales, exports), strict=True))


async def test_firm_outcomes(whole_platform: Stack) -> None:
    t = await Outcomes(whole_platform).build()
    today = datetime.now(UTC).date().isoformat()
    a_2025 = outcomes(
        (2, moved(3, grew=1, unchanged=1, shrank=1)),  # F1 +4, F2 -2, F4 0; F3's C2 not yet supported
        (0.35, moved(2, grew=2)),  # median of F1 +50 % and F2 +20 %; F4 in two currencies
        (-0.5, moved(2, grew=1, shrank=1)),  # F2 -50 %; F1 began to export (grew, no ratio)
    )
    assert await t.figures(agency_id=t.ids["A"]) == a_2025
    assert await t.figures("A") == a_2025, "an agency key sees its own records' outcomes"
    assert await t.figures(programme_id=t.ids["P"]) == a_2025
    assert await t.figures() == outcomes(
        (52, moved(4, grew=2, unchanged=1, shrank=1)),  # and F6 +50
        (0.2, moved(3, grew=2, shrank=1)),  # 0.5, 0.2, -0.1
        (-0.5, moved(2, grew=1, shrank=1)),
    )
    assert await t.figures(country="EC") == outcomes(
        (50, moved(1, grew=1)), (-0.1, moved(1, shrank=1)), (None, moved())
    )
    # By today, C2 is supported (registered today) and N2 formed: F3 counts; F1's 2026-Q1 still is no year.
    assert await t.figures(agency_id=t.ids["A"], to=today) == outcomes(
        (7, moved(4, grew=2, unchanged=1, shrank=1)),
        (0.5, moved(3, grew=3)),  # 0.5, 0.2, 0.5
        (-0.5, moved(2, grew=1, shrank=1)),
    )
    assert await t.figures(cluster_id=t.ids["C2"], to=today) == outcomes(
        (5, moved(1, grew=1)), (0.5, moved(1, grew=1)), (None, moved())
    )
    assert await t.figures(programme_id=t.ids["P"], to=today) == a_2025, "C2 and N2 are in no programme"
    # Before any current figure: nothing to compare.
    assert await t.figures(to="2025-06-30") == outcomes((0, moved()), (None, moved()), (None, moved()))

    # A correction reaches the figures: F2's 2025-Q4 sales become 75 (+50 %).
    record = t.ids["F2/2025-Q4"]
    patched = await t.client.patch(
        f"/v1/firm-results/{record}", json={"sales": 75.0}, headers=t.keys["A"] | {"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    # F4's 2025 record deleted: F4 reports neither jobs nor sales any more.
    deleted = await t.client.delete(f"/v1/firm-results/{t.ids['F4/2025']}", headers=t.keys["A"] | {"If-Match": '"1"'})
    assert deleted.status_code == 204, deleted.text
    await caught_up(whole_platform)
    assert await t.figures(agency_id=t.ids["A"]) == outcomes(
        (2, moved(2, grew=1, shrank=1)), (0.5, moved(2, grew=2)), (-0.5, moved(2, grew=1, shrank=1))
    )

    # An outcome in a results framework: actual and share achieved against the target.
    await t.post(f"/v1/results/{t.ids['P']}/indicators", FRAMEWORK, "A")
    results = await t.client.get(f"/v1/results/{t.ids['P']}", headers=t.keys["A"])
    assert results.status_code == 200, results.text
    (indicator,) = results.json()["indicators"]
    (period,) = indicator["periods"]
    assert (period["actual"], period["share_achieved"]) == (2, 0.2)
    assert period["breakdown"] == moved(2, grew=1, shrank=1)


@pytest.mark.browser
async def test_firm_outcomes_in_a_browser(whole_platform: Stack) -> None:
    """Agency A's dashboard for 2025 shows the outcomes as the API gives them, the firms
    reporting counted as firms; its programme's results page shows the outcome's progress."""
    browser_path = chromium_or_skip()
    t = await Outcomes(whole_platform).build()
    await t.post(f"/v1/results/{t.ids['P']}/indicators", FRAMEWORK, "A")
    api = (
        await t.client.get("/v1/indicators", params={"from": "2025-01-01", "to": "2025-12-31"}, headers=t.keys["A"])
    ).json()["indicators"]
    async with serve(whole_platform.gateway) as base, chromium(browser_path) as browser:
        page = await browser.new_page(t.keys["A"])
        await page.goto(f"{base}/dashboard?from=2025-01-01&to=2025-12-31")
        shown = await page.evaluate(
            "Array.from(document.querySelectorAll('[data-indicator]')).map(e => "
            "[e.getAttribute('data-indicator'), e.getAttribute('data-category'), e.textContent.trim()])"
        )
        texts = {(key, category): text for key, category, text in shown if key in KEYS}
        assert texts[("jobs_created_in_supported_clusters", None)] == "2"
        assert texts[("sales_change_of_network_members", None)] == "35%"
        assert texts[("exports_change_of_network_members", None)] == "-50%"
        for key in KEYS:
            assert {c: int(texts[(key, c)]) for c in api[key]["breakdown"]} == api[key]["breakdown"], key
        await page.screenshot(ARTIFACTS / "dashboard-firm-outcomes.png", "[data-section='Firm outcomes']")
        await page.goto(f"{base}/dashboard/results/{t.ids['P']}")
        actual = await page.evaluate("document.body.textContent.replace(/\\s+/g, ' ')")
        assert "Jobs created in supported clusters" in actual and "Supported firms create jobs" in actual
        await page.screenshot(ARTIFACTS / "results-firm-outcomes.png")
