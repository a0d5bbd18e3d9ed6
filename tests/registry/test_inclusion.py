"""Firms' inclusion claims (women-owned, women-led, youth-led) and women employees."""

from __future__ import annotations

from typing import Any

import httpx

from tests.registry.helpers import (
    HEADER,
    create,
    errors_csv,
    feed,
    finished,
    firm_body,
    firm_row,
    make_agency,
    to_csv,
    upload,
)
from tests.support import ADMIN, agency_headers, assert_problem


def _claim(value: bool, by: str = "agency", on: str = "2026-10-01") -> dict[str, Any]:
    return {"value": value, "attested_by": by, "attested_on": on}


async def _listed(registry: httpx.AsyncClient, **params: str) -> list[str]:
    page = (await registry.get("/v1/firms", params=params, headers=ADMIN)).json()
    return sorted(f["name"] for f in page["items"])


async def test_claims_are_recorded_read_filtered_and_published(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    owned = await create(
        registry,
        "/v1/firms",
        firm_body(
            name="Tejidos Rosa",
            employees=20,
            women_employees=14,
            women_owned=_claim(True),
            women_led=_claim(True, "broker", "2026-09-15"),
            youth_led=_claim(False, "self"),
        ),
        agency,
    )
    assert owned["women_owned"] == _claim(True) and owned["women_led"] == _claim(True, "broker", "2026-09-15")
    assert owned["youth_led"] == _claim(False, "self") and owned["women_employees"] == 14
    await create(registry, "/v1/firms", firm_body(name="Sin Registro"), agency)
    young = await create(registry, "/v1/firms", firm_body(name="Jovenes", youth_led=_claim(True, "self")), agency)
    assert young["women_owned"] is None and young["women_employees"] is None  # not recorded

    assert await _listed(registry, inclusion="women_owned") == ["Tejidos Rosa"]
    assert await _listed(registry, inclusion="women_led") == ["Tejidos Rosa"]
    assert await _listed(registry, inclusion="youth_led") == ["Jovenes"]  # value false is not listed
    assert_problem(
        await registry.get("/v1/firms", params={"inclusion": "female"}, headers=ADMIN), 422, field="inclusion"
    )

    # A patch that withdraws a claim takes the firm off the filter; the feed carries it.
    patched = await registry.patch(
        f"/v1/firms/{young['id']}",
        json={"youth_led": _claim(False, "agency", "2026-11-01")},
        headers=agency_headers(agency) | {"If-Match": '"1"'},
    )
    assert patched.status_code == 200, patched.text
    assert await _listed(registry, inclusion="youth_led") == []
    changes = [c for c in await feed(registry) if c["entity"] == "firm"]
    assert changes[-1]["data"]["youth_led"] == _claim(False, "agency", "2026-11-01")
    first = next(c for c in changes if c["entity_id"] == owned["id"])
    assert first["data"]["women_owned"] == _claim(True) and first["data"]["women_employees"] == 14


async def test_bad_claims_and_women_employees_are_422_naming_the_field(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)

    async def refused(field: str, **fields: Any) -> None:
        response = await registry.post("/v1/firms", json=firm_body(**fields), headers=headers)
        assert_problem(response, 422, field=field)

    await refused("women_employees", employees=10, women_employees=11)
    await refused("employees", women_employees=3)
    await refused("women_owned.attested_by", women_owned=_claim(True, "neighbour"))
    await refused("women_led.attested_on", women_led=_claim(True, on="01/10/2026"))
    await refused("youth_led.value", youth_led={"value": "yes", "attested_by": "self", "attested_on": "2026-10-01"})
    await refused("women_owned.attested_on", women_owned={"value": True, "attested_by": "self"})
    await refused("women_owned.source", women_owned=_claim(True) | {"source": "x"})
    firm = await create(registry, "/v1/firms", firm_body(employees=10, women_employees=4), agency)
    patched = await registry.patch(
        f"/v1/firms/{firm['id']}", json={"employees": 3}, headers=headers | {"If-Match": '"1"'}
    )
    assert_problem(patched, 422, field="women_employees")
    assert (await registry.get("/v1/firms", params={"count": "true"}, headers=ADMIN)).json()["total"] == 1


async def test_the_importer_takes_claims_as_columns_and_names_the_bad_cell(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    claim_columns = [
        f"{c}{part}" for c in ("women_owned", "youth_led") for part in ("", "_attested_by", "_attested_on")
    ]
    header = [*HEADER, "women_employees", *claim_columns]  # HEADER has employees
    claims = {
        "employees": "12",
        "women_employees": "7",
        "women_owned": "yes",
        "women_owned_attested_by": "broker",
        "women_owned_attested_on": "2026-10-01",
        "youth_led": "No",
        "youth_led_attested_by": "self",
        "youth_led_attested_on": "2026-09-01",
    }
    rows = [
        firm_row(0, **claims),
        firm_row(1),
        firm_row(2, **claims | {"women_owned": "maybe"}),
        firm_row(3, **claims | {"youth_led_attested_by": "mayor"}),
        firm_row(4, **claims | {"women_employees": "13"}),
    ]
    response = await upload(registry, to_csv(rows, header), agency)
    assert response.status_code == 202, response.text
    job = await finished(registry, response.json()["id"], agency)
    assert job["progress"]["rows_accepted"] == 2, job
    errors = {e["row"]: e for e in await errors_csv(registry, job["id"], agency)}
    assert (errors["4"]["column"], errors["4"]["value"]) == ("women_owned", "maybe")
    assert (errors["5"]["column"], errors["5"]["field"]) == ("youth_led_attested_by", "youth_led.attested_by")
    assert errors["6"]["column"] == "women_employees"
    firms = {
        f["name"]: f
        for f in (await registry.get("/v1/firms", params={"agency_id": agency}, headers=ADMIN)).json()["items"]
    }
    imported = firms["Confecciones Imbabura 0 Cía. Ltda."]
    assert imported["women_owned"] == _claim(True, "broker") and imported["women_employees"] == 7
    assert imported["youth_led"] == _claim(False, "self", "2026-09-01") and imported["women_led"] is None
    assert firms["Confecciones Imbabura 1 Cía. Ltda."]["women_owned"] is None
