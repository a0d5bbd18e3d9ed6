"""Firm results: a firm's figures per year or quarter, entered by its agency, private to it."""

from __future__ import annotations

import asyncio

import httpx

from services.common.principal import Role
from tests.registry.helpers import create, firm_body, firm_result_body, make_agency
from tests.support import ADMIN, agency_headers, assert_problem, feed_items, principal_headers

PATH = "/v1/firm-results"


async def test_enter_read_update_and_feed(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    created = await registry.post(PATH, json=firm_result_body(firm_id=firm["id"]), headers=headers)
    assert created.status_code == 201, created.text
    result = created.json()
    assert result["id"].startswith("frr_") and result["agency_id"] == agency
    assert result["entered_by"] == f"key-{agency}", "who entered the figures is recorded, not sent"
    assert (result["period"], result["currency"], result["sales"], result["women_employees"]) == (
        "2025",
        "USD",
        250000.0,
        22,
    )
    quarter = await create(registry, PATH, firm_result_body(firm_id=firm["id"], period="2026-Q1"), agency)

    # An update keeps its own period (no repeat of itself) and records who wrote it.
    admin_edit = await registry.patch(
        f"{PATH}/{result['id']}", json={"sales": 260000.0}, headers=ADMIN | {"If-Match": '"1"'}
    )
    assert admin_edit.status_code == 200, admin_edit.text
    assert admin_edit.json()["sales"] == 260000.0 and admin_edit.json()["entered_by"] == "test-admin"

    listed = await registry.get(PATH, params={"firm_id": firm["id"], "sort": "period"}, headers=headers)
    assert [r["period"] for r in listed.json()["items"]] == ["2025", "2026-Q1"]
    by_period = await registry.get(PATH, params={"period": "2026-Q1"}, headers=headers)
    assert [r["id"] for r in by_period.json()["items"]] == [quarter["id"]]

    changes = [c for c in await feed_items(registry) if c["entity"] == "firm_result"]
    assert [(c["op"], c["entity_id"]) for c in changes] == [
        ("created", result["id"]),
        ("created", quarter["id"]),
        ("updated", result["id"]),
    ]
    assert changes[0]["data"] == result and changes[-1]["data"] == admin_edit.json()


async def test_rules_name_the_field(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    body = firm_result_body(firm_id=firm["id"])
    await create(registry, PATH, body, agency)
    cases = [
        (body, "period", "duplicate"),  # one record per firm and period
        (body | {"period": "2025-Q5"}, "period", None),
        (body | {"period": "25"}, "period", None),
        ({k: v for k, v in body.items() if k != "currency"} | {"period": "2024"}, "currency", None),
        (body | {"period": "2024", "currency": "XYZ"}, "currency", None),
        (body | {"period": "2024", "women_employees": 41}, "women_employees", None),
        (body | {"period": "2024", "sales": -1.0}, "sales", None),
        ({"firm_id": firm["id"], "period": "2024"}, "sales", None),  # no figure at all
        (body | {"period": "2024", "firm_id": "frm_0000"}, "firm_id", "unknown_reference"),
    ]
    for case, field, code in cases:
        response = await registry.post(PATH, json=case, headers=headers)
        problem = assert_problem(response, 422, field=field)
        if code is not None:
            assert code in [e["code"] for e in problem["errors"]], problem
    listed = await registry.get(PATH, headers=headers)
    assert len(listed.json()["items"]) == 1, "nothing refused was written"

    # Moving a record onto a period the firm has is refused the same way.
    other = await create(registry, PATH, body | {"period": "2024"}, agency)
    moved = await registry.patch(
        f"{PATH}/{other['id']}", json={"period": "2025"}, headers=headers | {"If-Match": '"1"'}
    )
    assert_problem(moved, 422, field="period")


async def test_private_to_the_agency(registry: httpx.AsyncClient) -> None:
    """Figures are read by their agency and its viewers, platform viewers and admins only."""
    agency, other = await make_agency(registry), await make_agency(registry, "Other")
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    result = await create(registry, PATH, firm_result_body(firm_id=firm["id"]), agency)
    record = f"{PATH}/{result['id']}"
    readers = {
        "its agency": agency_headers(agency),
        "its viewer": principal_headers(Role.viewer, agency_id=agency),
        "a platform viewer": principal_headers(Role.viewer),
        "an admin": ADMIN,
    }
    for name, headers in readers.items():
        assert (await registry.get(record, headers=headers)).status_code == 200, name
        assert [r["id"] for r in (await registry.get(PATH, headers=headers)).json()["items"]] == [result["id"]], name
    outsiders = {
        "another agency": agency_headers(other),
        "another agency's viewer": principal_headers(Role.viewer, agency_id=other),
        "the firm's buyer": principal_headers(Role.lead_firm, firm_id=firm["id"]),
    }
    for name, headers in outsiders.items():
        assert_problem(await registry.get(record, headers=headers), 404)
        assert (await registry.get(PATH, headers=headers)).json()["items"] == [], name
    patched = await registry.patch(record, json={"sales": 1.0}, headers=agency_headers(other) | {"If-Match": '"1"'})
    assert_problem(patched, 404)
    deleted = await registry.delete(record, headers=agency_headers(agency) | {"If-Match": '"1"'})
    assert deleted.status_code == 204


async def test_simultaneous_creates_of_one_firm_and_period_get_the_answer_of_a_repeat(
    registry: httpx.AsyncClient,
) -> None:
    """Both requests pass the check before either writes: the database's unique constraint
    decides, and the loser gets the 422 ``duplicate`` a later repeat gets, never a 500."""
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    for year in range(2010, 2020):
        body = firm_result_body(firm_id=firm["id"], period=str(year))
        answers = await asyncio.gather(*(registry.post(PATH, json=body, headers=headers) for _ in range(3)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201, 422, 422], [a.text for a in answers]
        for answer in answers:
            if answer.status_code == 422:
                problem = assert_problem(answer, 422, "validation-error", field="period")
                assert [e["code"] for e in problem["errors"]] == ["duplicate"]
    listed = await registry.get(PATH, params={"firm_id": firm["id"], "limit": "50"}, headers=headers)
    assert len(listed.json()["items"]) == 10
    changes = [c for c in await feed_items(registry) if c["entity"] == "firm_result"]
    assert len(changes) == 10, "the refused creates left nothing on the feed"


async def test_simultaneous_moves_onto_one_period_get_the_answer_of_a_repeat(registry: httpx.AsyncClient) -> None:
    """Two records moved onto the same free period at once: one moves, the other gets the
    422 ``duplicate`` a later move would get, never a 500, and stays where it was."""
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    for year in range(2030, 2036):
        movers = [
            await create(registry, PATH, firm_result_body(firm_id=firm["id"], period=f"{year}-Q{q}"), agency)
            for q in (1, 2)
        ]
        answers = await asyncio.gather(
            *(
                registry.patch(f"{PATH}/{m['id']}", json={"period": str(year)}, headers=headers | {"If-Match": '"1"'})
                for m in movers
            )
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 422], [a.text for a in answers]
        refused = next(a for a in answers if a.status_code == 422)
        problem = assert_problem(refused, 422, "validation-error", field="period")
        assert [e["code"] for e in problem["errors"]] == ["duplicate"]
        periods = [(await registry.get(f"{PATH}/{m['id']}", headers=headers)).json()["period"] for m in movers]
        assert str(year) in periods and len(set(periods)) == 2
