"""Indicators through the gateway, checked one by one against a dataset built through the APIs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from services.common.principal import Role
from services.reporting.indicators.definitions import FIRM_INDICATORS
from tests.reporting import expected
from tests.reporting.dataset import ADMIN, Dataset, in_process
from tests.support import Stack, assert_problem, principal_headers

# The dataset is built once per module and backend (tests/reporting/conftest.py): its tests
# share the module's event loop and one worker.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("reporting-indicators")]


async def indicators(dataset: Dataset, key: str = "admin", **params: Any) -> dict[str, Any]:
    response = await dataset.client.get("/v1/indicators", params=params, headers=dataset.keys[key])
    assert response.status_code == 200, response.text
    return dict(response.json())


def figures(body: dict[str, Any]) -> dict[str, Any]:
    return {key: {"value": f["value"], "breakdown": f["breakdown"]} for key, f in body["indicators"].items()}


async def test_every_indicator_in_every_scope(dataset: Dataset) -> None:
    scopes: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("admin", {}, expected.EVERYTHING),
        ("viewer", {}, expected.EVERYTHING),
        ("admin", {"programme_id": dataset["P1"]}, expected.PROGRAMME_P1),
        ("admin", {"country": "EC"}, expected.COUNTRY_EC),
        ("admin", {"cluster_id": dataset["C1"]}, expected.CLUSTER_C1),
        ("admin", {"subdivision": "IN-TN"}, expected.SUBDIVISION_IN_TN),
        ("admin", {"country": "IN", "subdivision": "IN-TN"}, expected.SUBDIVISION_IN_TN),
        ("admin", {"sector": "14"}, expected.SECTOR_14),
        ("admin", {"sector": "C", "cluster_id": dataset["C1"]}, expected.CLUSTER_C1),  # section C: manufacturing
        ("admin", {"from": "2025-03-01", "to": "2025-03-31"}, expected.MARCH_2025),
        ("admin", {"to": "2024-12-31"}, expected.UNTIL_2024),
        ("admin", {"agency_id": dataset["B"]}, expected.AGENCY_B),
        ("B", {}, expected.AGENCY_B),
    ]
    for key, params, want in scopes:
        body = await indicators(dataset, key, **params)
        got = figures(body)
        wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
        assert not wrong, f"{key} {params}: (got, expected) {wrong}"
        assert list(got) == list(want)  # every indicator, in the definitions' order
    body = await indicators(dataset, "B")
    assert body["filters"] == {"agency_id": dataset["B"]}  # the agency's own scope, stated


def split(micro: int = 0, small: int = 0, medium: int = 0, large: int = 0, **ownership: int) -> dict[str, Any]:
    owners = dict.fromkeys(("women_owned", "women_led", "youth_led", "other", "not_recorded"), 0) | ownership
    return {"size_class": {"micro": micro, "small": small, "medium": medium, "large": large}, "ownership": owners}


async def test_firm_indicators_split_by_size_class_and_ownership(dataset: Dataset) -> None:
    # Claims (dataset.py): F2 women-owned and women-led, F4 women-led and youth-led, F8
    # youth-led, F7 recorded with none; F1, F3, F5, F6, F9 and F10 record none.
    everything = (await indicators(dataset))["indicators"]
    assert everything["firms_registered"]["splits"] == split(
        2, 4, 2, 2, women_owned=1, women_led=2, youth_led=2, other=1, not_recorded=6
    )
    # Active horizontal networks N1 (F2, F3, F4) and N4 (F7, F8).
    assert everything["smes_in_horizontal_networks"]["splits"] == split(
        2, 3, women_owned=1, women_led=2, youth_led=2, other=1, not_recorded=1
    )
    # The active vertical network N3: lead firm F1, suppliers F2 and F4.
    assert everything["smes_in_vertical_networks"]["splits"] == split(1, 1, women_owned=1, women_led=2, youth_led=1)
    assert everything["lead_firms_in_vertical_networks"]["splits"] == split(large=1, not_recorded=1)
    ecuador = (await indicators(dataset, country="EC"))["indicators"]  # F7, F8, F9 (medium since the patch), F10
    assert ecuador["firms_registered"]["splits"] == split(1, 1, 1, 1, youth_led=1, other=1, not_recorded=2)
    for body in (everything, ecuador):
        for key, figure in body.items():
            if key not in FIRM_INDICATORS:
                assert figure["splits"] is None, key
                continue
            by_size, by_owner = figure["splits"]["size_class"], figure["splits"]["ownership"]
            assert sum(by_size.values()) == figure["value"], key  # every firm counted is in the read model
            assert by_owner["other"] + by_owner["not_recorded"] <= figure["value"], key
    # Each split agrees with the registry's own filter where the indicator is every firm.
    women_led = await dataset.client.get("/v1/firms", params={"inclusion": "women_led", "count": "true"}, headers=ADMIN)
    assert women_led.json()["total"] == everything["firms_registered"]["splits"]["ownership"]["women_led"]


async def test_figures_agree_with_the_registry_and_matching(dataset: Dataset) -> None:
    """The same counts, taken from the owning services' own lists."""

    async def count(path: str, **params: Any) -> int:
        total, cursor = 0, None
        while True:
            page = await dataset.client.get(path, params=params | ({"cursor": cursor} if cursor else {}), headers=ADMIN)
            assert page.status_code == 200, page.text
            total += len(page.json()["items"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return total

    everything = (await indicators(dataset))["indicators"]
    assert everything["firms_registered"]["value"] == await count("/v1/firms")
    for size in ("micro", "small", "medium", "large"):
        assert everything["firms_registered"]["breakdown"][size] == await count("/v1/firms", size_class=size)
    assert everything["clusters_supported"]["value"] == await count("/v1/clusters")
    assert everything["shortlists_issued"]["value"] == await count("/v1/shortlists")
    assert everything["linkages_by_stage"]["value"] == await count("/v1/linkages")
    for stage in ("proposed", "contacted", "qualified", "contracted", "active", "dropped"):
        assert everything["linkages_by_stage"]["breakdown"][stage] == await count("/v1/linkages", stage=stage)
    assert everything["joint_actions"]["breakdown"]["joint_purchase"] == await count(
        "/v1/networks", action="joint_purchase"
    )
    horizontal = await indicators(dataset, cluster_id=dataset["C1"])
    assert horizontal["indicators"]["firms_registered"]["value"] == await count("/v1/firms", cluster_id=dataset["C1"])
    active = await count("/v1/networks", kind="horizontal", status="active")
    assert everything["horizontal_networks_active"]["value"] == active
    ecuador = (await indicators(dataset, country="EC"))["indicators"]
    assert ecuador["firms_registered"]["value"] == await count("/v1/firms", country="EC")
    assert ecuador["activities_held"]["value"] == await count("/v1/activities", country="EC")
    assert ecuador["brokers_trained"]["value"] == await count("/v1/brokers", country="EC", status="trained")


async def test_monthly_and_quarterly_series(dataset: Dataset) -> None:
    keys = [
        "brokers_trained",
        "horizontal_networks_formed",
        "activities_held",
        "joint_actions",
        "clusters_supported",
        "linkages_by_stage",
        "median_days_to_contract",
    ]
    response = await dataset.client.get(
        "/v1/indicators/series",
        headers=ADMIN,
        params={"from": "2025-01-01", "to": "2025-06-30", "granularity": "month", "indicator": keys},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["label"] for p in body["periods"]] == ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]
    assert body["periods"][1] == {"label": "2025-02", "from": "2025-02-01", "to": "2025-02-28"}
    series = body["series"]
    assert list(series) == keys
    assert series["brokers_trained"]["values"] == [1, 1, 0, 0, 0, 0]
    assert series["horizontal_networks_formed"]["values"] == [0, 1, 1, 0, 0, 0]
    assert series["activities_held"]["values"] == [1, 1, 0, 1, 0, 0]
    assert series["activities_held"]["breakdown"]["training"] == [1, 0, 0, 0, 0, 0]
    assert series["joint_actions"]["values"] == [0, 1, 1, 1, 0, 1]
    assert series["clusters_supported"]["values"] == [2, 2, 3, 3, 3, 3]
    stages = series["linkages_by_stage"]["breakdown"]
    assert series["linkages_by_stage"]["values"] == [0, 0, 3, 4, 5, 5]
    assert stages["contracted"] == [0, 0, 1, 2, 1, 1]
    assert stages["active"] == [0, 0, 0, 0, 1, 1]
    assert stages["qualified"] == [0, 0, 1, 0, 0, 1]
    assert series["median_days_to_contract"]["values"] == [None, None, 20, None, None, None]

    quarterly = await dataset.client.get(
        "/v1/indicators/series",
        headers=ADMIN,
        params={"from": "2024-10-01", "to": "2025-06-30", "granularity": "quarter", "country": "EC"},
    )
    assert quarterly.status_code == 200, quarterly.text
    q = quarterly.json()
    assert [p["label"] for p in q["periods"]] == ["2024-Q4", "2025-Q1", "2025-Q2"]
    assert q["filters"] == {"country": "EC"}
    assert q["series"]["brokers_trained"]["values"] == [1, 0, 0]
    assert q["series"]["brokers_certified"]["values"] == [0, 1, 0]
    assert q["series"]["activities_held"]["values"] == [0, 0, 1]
    assert q["series"]["linkage_funnel"]["values"] == [0, 0, 1]
    assert list(q["series"]) == list(expected.EVERYTHING)  # every indicator when none is named

    default = await dataset.client.get("/v1/indicators/series", headers=ADMIN, params={"indicator": "firms_registered"})
    periods = default.json()["periods"]
    assert len(periods) == 12 and periods[-1]["to"] == (await indicators(dataset))["period"]["to"]
    assert default.json()["series"]["firms_registered"]["values"][-1] == 10  # all registered this month


async def test_tenancy(dataset: Dataset) -> None:
    own = await indicators(dataset, "B", country="IN")
    assert all(f["value"] in (0, None) for f in own["indicators"].values())  # B has nothing in India
    for params, status, field in (
        ({"programme_id": dataset["P1"]}, 422, "programme_id"),  # A's programme: not visible to B
        ({"cluster_id": dataset["C1"]}, 422, "cluster_id"),
        ({"agency_id": dataset["A"]}, 403, None),
    ):
        response = await dataset.client.get("/v1/indicators", params=params, headers=dataset.keys["B"])
        problem = assert_problem(response, status)
        if field:
            assert [e["field"] for e in problem["errors"]] == [field]
    mine = await indicators(dataset, "A", programme_id=dataset["P1"])
    assert figures(mine) == expected.PROGRAMME_P1
    # Lead firms hold no reporting:read scope at the gateway; the service refuses their role too.
    refused = await dataset.client.get("/v1/indicators", headers=dataset.keys["F1"])
    assert refused.status_code == 403
    async with in_process(dataset.stack.upstreams["reporting"]) as reporting:
        for role in (Role.lead_firm, Role.integrator, Role.service):
            direct = await reporting.get("/v1/indicators", headers=principal_headers(role, firm_id=dataset["F1"]))
            assert direct.status_code == 403, (role, direct.text)
        assert (await reporting.get("/v1/indicators")).status_code == 401


async def test_freshness_states_the_last_applied_change(dataset: Dataset) -> None:
    body = await indicators(dataset)
    feeds = body["freshness"]
    assert set(feeds) == {"registry", "matching"}
    async with in_process(dataset.stack.upstreams["registry"]) as registry:
        last = None
        after = 0
        while True:
            page = (
                await registry.get("/v1/changes", params={"after": after}, headers=principal_headers(Role.service))
            ).json()
            last = page["items"][-1] if page["items"] else last
            after = page["next_after"]
            if not page["has_more"]:
                break
    assert last is not None
    assert feeds["registry"]["status"] == "ok" and feeds["registry"]["position"] == last["seq"]
    assert utc(feeds["registry"]["last_change_at"]) == utc(last["occurred_at"])
    assert feeds["matching"]["status"] == "ok" and feeds["matching"]["position"] > 0
    assert body["as_of"] == max(feeds["registry"]["last_change_at"], feeds["matching"]["last_change_at"])


def utc(text: str) -> datetime:
    """A time the API shows: always with its zone."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, text
    return moment


@pytest.mark.asyncio(loop_scope="function")  # a platform of its own
async def test_bad_input_is_a_422_problem(whole_platform: Stack) -> None:
    client = whole_platform.client
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/indicators", {"colour": "red"}, "colour"),
        ("/v1/indicators", {"programme": "x"}, "programme"),  # misspelt filter: refused, never ignored
        ("/v1/indicators", {"from": "2025-06-01", "to": "2025-01-01"}, "from"),
        ("/v1/indicators", {"from": "2999-01-01"}, "from"),  # after today, the default end
        ("/v1/indicators", {"from": "yesterday"}, "from"),
        ("/v1/indicators", {"country": "XX"}, "country"),
        ("/v1/indicators", {"subdivision": "IN-ZZ"}, "subdivision"),
        ("/v1/indicators", {"country": "EC", "subdivision": "IN-TN"}, "subdivision"),
        ("/v1/indicators", {"sector": "9999"}, "sector"),
        ("/v1/indicators", {"programme_id": "prg_nothing"}, "programme_id"),
        ("/v1/indicators", {"cluster_id": "clu_nothing"}, "cluster_id"),
        ("/v1/indicators", {"agency_id": "agy_nothing"}, "agency_id"),
        ("/v1/indicators/series", {"granularity": "week"}, "granularity"),
        ("/v1/indicators/series", {"indicator": "happiness"}, "indicator.0"),
        ("/v1/indicators/series", {"from": "1900-01-01", "granularity": "month"}, "from"),  # too many periods
        ("/v1/indicators/series", {"from": "2025-02-01", "to": "2025-01-01", "granularity": "quarter"}, "from"),
        ("/v1/indicators/clusters", {"limit": 0}, "limit"),
        ("/v1/indicators/clusters", {"cursor": "not-a-cursor"}, "cursor"),
        ("/v1/exports/indicators.csv", {"colour": "red"}, "colour"),
        ("/v1/exports/everything.csv", {}, "table"),
        ("/v1/charts/series.svg", {"granularity": "day"}, "granularity"),
        ("/v1/charts/series.gif", {}, "fmt"),
        ("/v1/charts/pie.svg", {}, "chart"),
        ("/dashboard", {"to": "2025-01-01", "from": "2025-12-31"}, "from"),
        ("/dashboard", {"colour": "red"}, "colour"),
    ]
    for path, params, field in cases:
        response = await client.get(path, params=params, headers=ADMIN)
        assert_problem(response, 422, "validation-error", field=field)


@pytest.mark.asyncio(loop_scope="function")  # a platform of its own
async def test_reads_need_a_reporting_key(whole_platform: Stack) -> None:
    viewer = await whole_platform.issue_key(ADMIN["Authorization"].split()[1], role="viewer")
    for path in (
        "/v1/indicators",
        "/v1/indicators/series",
        "/v1/indicators/definitions",
        "/v1/indicators/clusters",
        "/v1/indicators/freshness",
        "/v1/charts/funnel.svg",
        "/v1/exports/definitions.csv",
        "/dashboard",
    ):
        anonymous = await whole_platform.client.get(path)
        assert anonymous.status_code == 401, path
        allowed = await whole_platform.client.get(path, headers={"Authorization": f"Bearer {viewer}"})
        assert allowed.status_code == 200, (path, allowed.text)
