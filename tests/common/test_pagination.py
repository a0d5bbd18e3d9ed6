"""Cursor pagination: opaque cursors, complete and ordered walks, bounded limits."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from services.common.errors import ValidationFailed
from services.common.pagination import decode_cursor, encode_cursor
from tests.registry.helpers import cluster_body, create, make_agency
from tests.support import ADMIN, agency_headers, assert_problem


@pytest.mark.parametrize("key", ["clu_01JD3W6V8K2N4R7T9X0Y1Z2A3B", "", "iso-9001", "ünïcödé/+=?&", "a" * 300])
def test_cursor_round_trip(key: str) -> None:
    cursor = encode_cursor(key)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # safe in a query string
    assert decode_cursor(cursor) == key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "x",
        _b64(b"not json"),
        _b64(b"\xff\xfe\xfd"),
        _b64(json.dumps({"key": "clu_1"}).encode()),
        _b64(json.dumps({"k": 5}).encode()),
        _b64(json.dumps({"k": None}).encode()),
        _b64(json.dumps(["k"]).encode()),
        _b64(json.dumps("k").encode()),
    ],
)
def test_garbage_cursor_is_a_validation_error(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor)
    assert caught.value.errors is not None
    assert [(e.location, e.field) for e in caught.value.errors] == [("query", "cursor")]


@pytest.mark.parametrize("cursor", ["garbage!", _b64(b"not json"), _b64(json.dumps({"k": 5}).encode())])
async def test_garbage_cursor_through_a_list_is_422(registry: httpx.AsyncClient, cursor: str) -> None:
    response = await registry.get("/v1/clusters", params={"cursor": cursor}, headers=ADMIN)
    problem = assert_problem(response, 422, field="cursor")
    assert problem["type"].endswith("/validation-error")
    assert problem["errors"][0]["location"] == "query"


async def test_paging_walk_returns_every_record_once_in_id_order(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    ids = [(await create(registry, "/v1/clusters", cluster_body(name=f"Cluster {i}"), agency))["id"] for i in range(7)]

    seen: list[str] = []
    pages: list[int] = []
    cursor: str | None = None
    for _ in range(10):  # a bound, so a cursor that never ends fails instead of hanging
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = await registry.get("/v1/clusters", params=params, headers=agency_headers(agency))
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        pages.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [3, 3, 1]
    assert seen == sorted(ids)
    assert len(set(seen)) == 7


async def test_exact_multiple_of_limit_ends_with_null_cursor(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    for i in range(3):
        await create(registry, "/v1/clusters", cluster_body(name=f"Cluster {i}"), agency)
    first = (await registry.get("/v1/clusters", params={"limit": 3}, headers=ADMIN)).json()
    assert len(first["items"]) == 3
    assert first["next_cursor"] is None


async def test_pages_are_stable_when_records_are_added_between_pages(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    for i in range(4):
        await create(registry, "/v1/clusters", cluster_body(name=f"Cluster {i}"), agency)
    first = (await registry.get("/v1/clusters", params={"limit": 2}, headers=ADMIN)).json()
    await create(registry, "/v1/clusters", cluster_body(name="Late"), agency)  # a newer id sorts last
    rest = (
        await registry.get("/v1/clusters", params={"limit": 10, "cursor": first["next_cursor"]}, headers=ADMIN)
    ).json()
    walked = [c["id"] for c in first["items"] + rest["items"]]
    everything = [
        c["id"] for c in (await registry.get("/v1/clusters", params={"limit": 10}, headers=ADMIN)).json()["items"]
    ]
    assert walked == everything
    assert len(everything) == 5


@pytest.mark.parametrize("limit", [0, -1, 201, 10_000])
async def test_limit_out_of_range_is_422(registry: httpx.AsyncClient, limit: int) -> None:
    response = await registry.get("/v1/clusters", params={"limit": limit}, headers=ADMIN)
    assert_problem(response, 422, field="limit")


async def test_limit_not_a_number_is_422(registry: httpx.AsyncClient) -> None:
    response = await registry.get("/v1/clusters", params={"limit": "ten"}, headers=ADMIN)
    assert_problem(response, 422, field="limit")


async def test_limit_bounds_are_inclusive(registry: httpx.AsyncClient) -> None:
    for limit in (1, 200):
        response = await registry.get("/v1/clusters", params={"limit": limit}, headers=ADMIN)
        assert response.status_code == 200, response.text


async def test_limit_applies_to_lists_outside_the_record_machinery(registry: httpx.AsyncClient) -> None:
    """The certification vocabulary uses the shared page dependency, not the ListQuery model."""
    assert (await registry.get("/v1/certification-schemes", params={"limit": 0}, headers=ADMIN)).status_code == 422
    bad = await registry.get("/v1/certification-schemes", params={"cursor": "garbage!"}, headers=ADMIN)
    assert_problem(bad, 422, field="cursor")
    walked: list[str] = []
    cursor: str | None = None
    for _ in range(200):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await registry.get("/v1/certification-schemes", params=params, headers=ADMIN)).json()
        walked += [s["code"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = (await registry.get("/v1/certification-schemes", params={"limit": 200}, headers=ADMIN)).json()
    assert walked == [s["code"] for s in everything["items"]]
    assert len(walked) > 2


async def test_unknown_query_parameter_is_422(registry: httpx.AsyncClient) -> None:
    response = await registry.get("/v1/clusters", params={"limt": 3}, headers=ADMIN)
    assert_problem(response, 422, field="limt")


async def _walk(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of a list, page by page, under the same ``params``."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(50):
        page_params = params | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=page_params, headers=ADMIN)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


async def test_sort_by_name_walks_pages_in_name_then_id_order(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    names = ["Mango", "Apple", "Kiwi", "Mango", "Banana", "Mango", "Cherry"]  # repeats: ties break by id
    for name in names:
        await create(registry, "/v1/clusters", cluster_body(name=name), agency)
    everything = await _walk(registry, "/v1/clusters", {"limit": 100})
    ascending = await _walk(registry, "/v1/clusters", {"limit": 2, "sort": "name"})
    descending = await _walk(registry, "/v1/clusters", {"limit": 2, "sort": "-name"})
    by_name = sorted(everything, key=lambda c: c["id"])
    by_name.sort(key=lambda c: c["name"])  # stable: equal names keep id order
    assert [c["id"] for c in ascending] == [c["id"] for c in by_name]
    by_name_desc = sorted(everything, key=lambda c: c["id"])
    by_name_desc.sort(key=lambda c: c["name"], reverse=True)  # stable: ties still by id ascending
    assert [c["id"] for c in descending] == [c["id"] for c in by_name_desc]
    assert len({c["id"] for c in descending}) == len(names)


async def test_sort_by_updated_at_descending_survives_pages(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    ids = [(await create(registry, "/v1/clusters", cluster_body(name=f"C{i}"), agency))["id"] for i in range(5)]
    # Touch the first one last: it becomes the most recently updated.
    current = (await registry.get(f"/v1/clusters/{ids[0]}", headers=ADMIN)).json()
    patched = await registry.patch(
        f"/v1/clusters/{ids[0]}", json={"name": "Touched"}, headers=ADMIN | {"If-Match": f'"{current["version"]}"'}
    )
    assert patched.status_code == 200, patched.text
    walked = await _walk(registry, "/v1/clusters", {"limit": 2, "sort": "-updated_at"})
    assert walked[0]["id"] == ids[0]
    stamps = [(c["updated_at"], c["id"]) for c in walked]
    assert [s for s, _ in stamps] == sorted((s for s, _ in stamps), reverse=True)
    assert sorted(c["id"] for c in walked) == sorted(ids)


async def test_count_gives_the_filtered_total_on_every_page(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    for i in range(5):
        await create(registry, "/v1/clusters", cluster_body(name=f"C{i}"), agency)
    plain = (await registry.get("/v1/clusters", params={"limit": 2}, headers=ADMIN)).json()
    assert plain["total"] is None
    first = (await registry.get("/v1/clusters", params={"limit": 2, "count": "true"}, headers=ADMIN)).json()
    assert first["total"] == 5 and len(first["items"]) == 2
    second = await registry.get(
        "/v1/clusters", params={"limit": 2, "count": "true", "cursor": first["next_cursor"]}, headers=ADMIN
    )
    assert second.json()["total"] == 5


async def test_unknown_sort_field_is_422_naming_sort(registry: httpx.AsyncClient) -> None:
    for sort in ("capabilities", "-agency_id", "name;drop", "Name"):
        response = await registry.get("/v1/firms", params={"sort": sort}, headers=ADMIN)
        problem = assert_problem(response, 422, field="sort")
        assert problem["errors"][0]["location"] == "query"
    listed = assert_problem(await registry.get("/v1/firms", params={"sort": "colour"}, headers=ADMIN), 422)
    assert "name" in listed["errors"][0]["message"] and "updated_at" in listed["errors"][0]["message"]


async def test_cursor_of_another_sort_is_422(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    for i in range(3):
        await create(registry, "/v1/clusters", cluster_body(name=f"C{i}"), agency)
    by_name = (await registry.get("/v1/clusters", params={"limit": 1, "sort": "name"}, headers=ADMIN)).json()
    mixed = await registry.get(
        "/v1/clusters", params={"limit": 1, "sort": "-name", "cursor": by_name["next_cursor"]}, headers=ADMIN
    )
    assert_problem(mixed, 422, field="cursor")
    unsorted = await registry.get("/v1/clusters", params={"limit": 1, "cursor": by_name["next_cursor"]}, headers=ADMIN)
    assert_problem(unsorted, 422, field="cursor")


async def test_sort_and_count_on_the_shared_page_dependency(registry: httpx.AsyncClient) -> None:
    """Lists built on ``PageParamsDep`` (here the certification vocabulary) take the same parameters."""
    everything = await _walk(registry, "/v1/certification-schemes", {"limit": 200})
    walked = await _walk(registry, "/v1/certification-schemes", {"limit": 3, "sort": "-name"})
    expected = sorted(everything, key=lambda s: s["code"])
    expected.sort(key=lambda s: s["name"], reverse=True)
    assert [s["code"] for s in walked] == [s["code"] for s in expected]
    counted = await registry.get("/v1/certification-schemes", params={"count": "true", "limit": 1}, headers=ADMIN)
    assert counted.json()["total"] == len(everything)
    unknown = await registry.get("/v1/certification-schemes", params={"sort": "id2"}, headers=ADMIN)
    assert_problem(unknown, 422, field="sort")
