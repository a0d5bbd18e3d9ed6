"""Firms' activity codes given in NACE Rev.2, NAICS 2017 or NIC 2008, converted to ISIC Rev.4."""

from __future__ import annotations

from typing import Any

import httpx

from tests.registry.helpers import create, firm_body, make_agency
from tests.support import ADMIN, agency_headers, assert_problem


def _coded(system: str, codes: list[str], **fields: Any) -> dict[str, Any]:
    body = firm_body(code_system=system, source_codes=codes, **fields)
    del body["isic_codes"]
    return body


async def test_nace_codes_become_isic_and_are_kept(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    firm = await create(registry, "/v1/firms", _coded("nace2", ["14.39", "1320"]), agency)
    assert firm["code_system"] == "nace2"
    assert firm["source_codes"] == ["14.39", "13.20"]  # canonical NACE form
    assert firm["isic_codes"] == ["1430", "1312"]
    read = (await registry.get(f"/v1/firms/{firm['id']}", headers=ADMIN)).json()
    assert (read["source_codes"], read["isic_codes"]) == (["14.39", "13.20"], ["1430", "1312"])
    listed = (await registry.get("/v1/firms", params={"isic": "143"}, headers=ADMIN)).json()["items"]
    assert [f["id"] for f in listed] == [firm["id"]]


async def test_a_naics_code_mapping_to_several_isic_classes_keeps_them_all(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    firm = await create(registry, "/v1/firms", _coded("naics2017", ["311511"]), agency)  # fluid milk
    assert firm["isic_codes"] == ["1050", "1079"]
    for isic in ("1050", "1079"):
        found = (await registry.get("/v1/firms", params={"isic": isic}, headers=ADMIN)).json()["items"]
        assert [f["id"] for f in found] == [firm["id"]]


async def test_nic_subclasses_map_to_their_isic_class(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    firm = await create(registry, "/v1/firms", _coded("nic2008", ["13111", "1410"]), agency)
    assert firm["isic_codes"] == ["1311", "1410"] and firm["source_codes"] == ["13111", "1410"]


async def test_unknown_or_missing_codes_are_422_naming_the_field(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    unknown = await registry.post("/v1/firms", json=_coded("naics2017", ["311511", "999999"]), headers=headers)
    assert_problem(unknown, 422, field="source_codes.1")
    none_given = await registry.post("/v1/firms", json=_coded("nace2", []), headers=headers)
    assert_problem(none_given, 422, field="source_codes")
    no_isic = firm_body()
    del no_isic["isic_codes"]
    assert_problem(await registry.post("/v1/firms", json=no_isic, headers=headers), 422, field="isic_codes")
    bad_system = await registry.post("/v1/firms", json=_coded("sic1987", ["2024"]), headers=headers)
    assert_problem(bad_system, 422, field="code_system")
    listed = (await registry.get("/v1/firms", params={"count": "true"}, headers=ADMIN)).json()
    assert listed["total"] == 0  # nothing half-written


async def test_patching_codes_rederives_isic_and_isic4_drops_source_codes(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    firm = await create(registry, "/v1/firms", _coded("nace2", ["14.39"]), agency)
    changed = await registry.patch(
        f"/v1/firms/{firm['id']}", json={"source_codes": ["10.51"]}, headers=ADMIN | {"If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["source_codes"], changed.json()["isic_codes"]) == (["10.51"], ["1050"])
    plain = await registry.patch(
        f"/v1/firms/{firm['id']}",
        json={"code_system": "isic4", "isic_codes": ["1410"]},
        headers=ADMIN | {"If-Match": '"2"'},
    )
    assert plain.status_code == 200, plain.text
    assert (plain.json()["code_system"], plain.json()["source_codes"], plain.json()["isic_codes"]) == (
        "isic4",
        [],
        ["1410"],
    )


async def test_firms_without_a_code_system_are_isic4(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    assert (firm["code_system"], firm["source_codes"], firm["isic_codes"]) == ("isic4", [], ["1410", "1430"])
