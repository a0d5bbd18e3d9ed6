"""The lifecycle every registry resource shares, exercised on clusters and firms."""

from __future__ import annotations

from typing import Any

import httpx

from services.common.jsontext import json_bytes
from tests.registry.helpers import cluster_body, create, firm_body, make_agency
from tests.support import ADMIN, agency_headers, assert_problem, feed_items


async def test_create_read_update_delete_cluster(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    created = await registry.post("/v1/clusters", json=cluster_body(), headers=headers)
    assert created.status_code == 201, created.text
    cluster = created.json()
    assert cluster["id"].startswith("clu_")
    assert cluster["agency_id"] == agency
    assert cluster["version"] == 1
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/v1/clusters/{cluster['id']}"

    read = await registry.get(f"/v1/clusters/{cluster['id']}", headers=headers)
    assert read.json() == cluster

    patched = await registry.patch(
        f"/v1/clusters/{cluster['id']}", json={"jobs": 4500}, headers=headers | {"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["jobs"] == 4500 and patched.json()["version"] == 2
    assert patched.headers["ETag"] == '"2"'

    stale = await registry.patch(
        f"/v1/clusters/{cluster['id']}", json={"jobs": 1}, headers=headers | {"If-Match": '"1"'}
    )
    assert_problem(stale, 412)
    missing = await registry.patch(f"/v1/clusters/{cluster['id']}", json={"jobs": 1}, headers=headers)
    assert missing.status_code == 428

    deleted = await registry.delete(f"/v1/clusters/{cluster['id']}", headers=headers | {"If-Match": '"2"'})
    assert deleted.status_code == 204
    gone = await registry.get(f"/v1/clusters/{cluster['id']}", headers=headers)
    assert gone.status_code == 404

    ops = [(c["entity"], c["op"], c["version"]) for c in await feed_items(registry)]
    assert ops == [
        ("agency", "created", 1),
        ("cluster", "created", 1),
        ("cluster", "updated", 2),
        ("cluster", "deleted", 3),
    ]


async def test_firm_filters(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    garment = await create(registry, "/v1/firms", firm_body(cluster_ids=[cluster["id"]]), agency)
    await create(
        registry,
        "/v1/firms",
        firm_body(
            name="Lácteos del Norte",
            isic_codes=["1050"],
            hs_codes=["0401"],
            certifications=[],
            capabilities="milk and cheese",
        ),
        agency,
    )
    by_isic = (await registry.get("/v1/firms", params={"isic": "14"}, headers=ADMIN)).json()
    assert [f["id"] for f in by_isic["items"]] == [garment["id"]]
    by_cluster = (await registry.get("/v1/firms", params={"cluster_id": cluster["id"]}, headers=ADMIN)).json()
    assert [f["id"] for f in by_cluster["items"]] == [garment["id"]]
    by_cert = (await registry.get("/v1/firms", params={"certification": "iso-9001"}, headers=ADMIN)).json()
    assert [f["id"] for f in by_cert["items"]] == [garment["id"]]
    by_text = (await registry.get("/v1/firms", params={"q": "CHEESE"}, headers=ADMIN)).json()
    assert [f["name"] for f in by_text["items"]] == ["Lácteos del Norte"]
    unknown = await registry.get("/v1/firms", params={"colour": "red"}, headers=ADMIN)
    assert unknown.status_code == 422


async def test_hot_reads_render_what_the_response_model_documents(registry: httpx.AsyncClient) -> None:
    """A record and a list page are rendered once, straight from the public model, to the
    same bytes FastAPI's response-model path gives; the ETag and a 304 still work."""
    from pydantic import TypeAdapter

    from services.common.pagination import Page
    from services.registry.firms.schemas import FirmPublic

    agency = await make_agency(registry)
    headers = agency_headers(agency)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    firm = await create(registry, "/v1/firms", firm_body(cluster_ids=[cluster["id"]]), agency)

    read = await registry.get(f"/v1/firms/{firm['id']}", headers=headers)
    assert read.status_code == 200 and read.headers["content-type"] == "application/json"
    assert read.json() == firm and read.headers["ETag"] == '"1"'
    one = TypeAdapter(FirmPublic)
    assert read.content == one.dump_json(one.validate_json(read.content), by_alias=True)
    unchanged = await registry.get(f"/v1/firms/{firm['id']}", headers=headers | {"If-None-Match": '"1"'})
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == '"1"'

    listed = await registry.get("/v1/firms", params={"limit": 20, "count": "true"}, headers=headers)
    assert listed.status_code == 200 and [f["id"] for f in listed.json()["items"]] == [firm["id"]]
    page = TypeAdapter(Page[FirmPublic])
    assert listed.content == page.dump_json(page.validate_json(listed.content), by_alias=True)


async def test_list_pages_hold_the_bytes_of_each_record_read(registry: httpx.AsyncClient) -> None:
    """A list page renders each record to the very bytes its read renders (the public model
    validated from the stored record), in every order and in a search's relevance order,
    with the page's cursor and total after them."""
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    claim = {"value": True, "attested_by": "agency", "attested_on": "2026-03-01"}
    bodies = [
        firm_body(
            name="Tejidos Cotacachi",
            cluster_ids=[cluster["id"]],
            national_ids=[{"scheme": "RUC", "value": "1790012345001"}],
            women_owned=claim,
            youth_led=claim | {"value": False},
            employees=40,
            women_employees=25,
        ),
        firm_body(name="Confecciones Ibarra", code_system="nace2", source_codes=["14.39", "1320"], isic_codes=[]),
        {"name": "Bordados Otavalo", "roles": ["supplier", "lead_firm"], "size_class": "micro"}
        | {"isic_codes": ["1392"], "country": "EC"},
    ]
    ids = [(await create(registry, "/v1/firms", body, agency))["id"] for body in bodies]
    reads = {i: (await registry.get(f"/v1/firms/{i}", headers=headers)).content for i in ids}

    def expected(page: dict[str, Any]) -> bytes:
        items = b",".join(reads[item["id"]] for item in page["items"])
        tail = {"next_cursor": page["next_cursor"], "total": page["total"]}
        return b'{"items":[' + items + b"]," + json_bytes(tail)[1:]

    pages: list[dict[str, str]] = [
        {"limit": "2"},
        {"sort": "-name", "limit": "2", "count": "true"},
        {"q": "ibarra"},
        {"q": "tejidos", "limit": "1"},
    ]
    for params in pages:
        cursor = None
        while True:
            asked = params | ({"cursor": cursor} if cursor else {})
            listed = await registry.get("/v1/firms", params=asked, headers=headers)
            assert listed.status_code == 200, listed.text
            assert listed.content == expected(listed.json()), params
            cursor = listed.json()["next_cursor"]
            if cursor is None:
                break
