"""Every error is an RFC 9457 problem with the request id, and a failed write leaves nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from tests.registry.helpers import cluster_body, firm_body, make_agency
from tests.support import ADMIN, LIFESPAN_TIMEOUTS, SERVICE, agency_headers, assert_problem, running


def fields_of(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem.get("errors") or []]


async def test_malformed_json_is_400(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    for raw in (b'{"name": ', b"{'name': 'single quotes'}", b'{"name": "x",}', b"\xff\xfe"):
        response = await registry.post(
            "/v1/clusters", content=raw, headers=agency_headers(agency) | {"content-type": "application/json"}
        )
        problem = assert_problem(response, 400, "malformed-body")
        assert problem["instance"] == "/v1/clusters"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in cluster_body().items() if k != "name"}, "name"),
        (cluster_body(smes="many"), "smes"),
        (cluster_body(jobs=-1), "jobs"),
        (cluster_body(colour="red"), "colour"),
        (cluster_body(country="XX"), "country"),
        (cluster_body(country="ECU"), "country"),
        (cluster_body(sector_isic="9999"), "sector_isic"),
        (cluster_body(latitude=91), "latitude"),
        (cluster_body(subdivision="EC-ZZ"), "subdivision"),
        (cluster_body(subdivision="CO-ANT"), "subdivision"),  # a real subdivision, of another country
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_invalid_cluster_is_422_naming_the_field(
    registry: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    agency = await make_agency(registry)
    response = await registry.post("/v1/clusters", json=body, headers=agency_headers(agency))
    problem = assert_problem(response, 422, "validation-error")
    assert field in fields_of(problem), problem
    assert all(error["location"] == "body" for error in problem["errors"])
    listed = (await registry.get("/v1/clusters", headers=ADMIN)).json()
    assert listed["items"] == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"isic_codes": ["1410", "9999"]}, "isic_codes.1"),
        ({"isic_codes": ["ABCDE"]}, "isic_codes.0"),
        ({"hs_codes": ["0000"]}, "hs_codes.0"),
        ({"hs_codes": ["6109", "61"]}, None),  # a chapter is a valid HS code: no error
        ({"roles": ["wholesaler"]}, "roles.0"),
        ({"size_class": "huge"}, "size_class"),
        ({"certifications": [{"scheme": "iso-9001", "valid_from": "yesterday"}]}, "certifications.0.valid_from"),
        ({"certifications": [{"scheme": "iso-9001", "colour": "red"}]}, "certifications.0.colour"),
        ({"cluster_ids": ["clu_does_not_exist"]}, "cluster_ids.0"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_invalid_firm_is_422_naming_the_field(
    registry: httpx.AsyncClient, overrides: dict[str, Any], field: str | None
) -> None:
    agency = await make_agency(registry)
    response = await registry.post("/v1/firms", json=firm_body(**overrides), headers=agency_headers(agency))
    if field is None:
        assert response.status_code == 201, response.text
        return
    problem = assert_problem(response, 422, "validation-error")
    assert field in fields_of(problem), problem


async def test_a_failed_write_leaves_nothing_behind(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    certifications = firm_body()["certifications"] + [{"scheme": "no-such-scheme", "issuer": "Nobody"}]
    response = await registry.post(
        "/v1/firms", json=firm_body(certifications=certifications), headers=agency_headers(agency)
    )
    problem = assert_problem(response, 422, "validation-error")
    assert fields_of(problem) == ["certifications.1.scheme"]

    assert (await registry.get("/v1/firms", headers=ADMIN)).json()["items"] == []
    feed = (await registry.get("/v1/changes", params={"after": 0, "limit": 1000}, headers=SERVICE)).json()
    assert not feed["has_more"]
    assert [c for c in feed["items"] if c["entity"] == "firm"] == []
    assert [c["entity_id"] for c in feed["items"] if c["entity"] == "agency"] == [agency]
    assert (await registry.get("/v1/firms", params={"certification": "iso-9001"}, headers=ADMIN)).json()["items"] == []

    # The same firm with the bad certificate removed goes through, once.
    fixed = await registry.post("/v1/firms", json=firm_body(), headers=agency_headers(agency))
    assert fixed.status_code == 201, fixed.text
    assert len((await registry.get("/v1/firms", headers=ADMIN)).json()["items"]) == 1


async def test_unknown_route_is_404_problem(registry: httpx.AsyncClient) -> None:
    problem = assert_problem(await registry.get("/v1/no-such-thing", headers=ADMIN), 404, "not-found")
    assert problem["instance"] == "/v1/no-such-thing"
    assert_problem(await registry.get("/nowhere"), 404, "not-found")


async def test_unknown_record_is_404_problem(registry: httpx.AsyncClient) -> None:
    assert_problem(await registry.get("/v1/clusters/clu_missing", headers=ADMIN), 404, "not-found")


async def test_wrong_method_is_405_problem(registry: httpx.AsyncClient) -> None:
    response = await registry.put("/v1/clusters", json={}, headers=ADMIN)
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers.get("allow")


async def test_incoming_request_id_is_echoed(registry: httpx.AsyncClient) -> None:
    response = await registry.get("/v1/clusters/clu_missing", headers=ADMIN | {"X-Request-ID": "trace-abc.123:x"})
    problem = assert_problem(response, 404)
    assert response.headers["x-request-id"] == "trace-abc.123:x"
    assert problem["request_id"] == "trace-abc.123:x"
    ok = await registry.get("/v1/clusters", headers=ADMIN | {"X-Request-ID": "ok-1"})
    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == "ok-1"


@pytest.mark.parametrize("unsafe", ["has space", "x" * 129, "semi;colon", "<script>"])
async def test_unsafe_request_id_is_replaced(registry: httpx.AsyncClient, unsafe: str) -> None:
    response = await registry.get("/v1/clusters/clu_missing", headers=ADMIN | {"X-Request-ID": unsafe})
    problem = assert_problem(response, 404)
    assert response.headers["x-request-id"] != unsafe
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_generated_request_ids_differ(registry: httpx.AsyncClient) -> None:
    first = await registry.get("/livez")
    second = await registry.get("/livez")
    assert first.headers["x-request-id"] and second.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.fixture
async def small_limit(registry_settings: RegistrySettings) -> AsyncIterator[httpx.AsyncClient]:
    settings = registry_settings.model_copy(update={"max_body_bytes": 1000})
    async with running(create_registry(settings)) as client:
        yield client


def _big_body() -> bytes:
    return httpx.Request("POST", "/", json=cluster_body(description="x" * 2000)).content


async def test_body_over_the_limit_with_content_length_is_413(small_limit: httpx.AsyncClient) -> None:
    agency = await make_agency(small_limit)
    body = _big_body()
    assert len(body) > 1000
    response = await small_limit.post(
        "/v1/clusters",
        content=body,
        headers=agency_headers(agency) | {"content-type": "application/json", "X-Request-ID": "big-1"},
    )
    problem = assert_problem(response, 413, "payload-too-large")
    assert problem["request_id"] == "big-1"
    assert (await small_limit.get("/v1/clusters", headers=ADMIN)).json()["items"] == []


async def test_chunked_body_over_the_limit_is_413(small_limit: httpx.AsyncClient) -> None:
    agency = await make_agency(small_limit)
    body = _big_body()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 256):
            yield body[start : start + 256]

    response = await small_limit.post(
        "/v1/clusters",
        content=chunks(),
        headers=agency_headers(agency) | {"content-type": "application/json", "X-Request-ID": "big-2"},
    )
    assert "content-length" not in response.request.headers
    problem = assert_problem(response, 413, "payload-too-large")
    assert problem["request_id"] == "big-2"
    assert (await small_limit.get("/v1/clusters", headers=ADMIN)).json()["items"] == []


async def test_chunked_body_under_the_limit_is_accepted(small_limit: httpx.AsyncClient) -> None:
    agency = await make_agency(small_limit)
    body = httpx.Request("POST", "/", json=cluster_body()).content
    assert len(body) < 1000

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 50):
            yield body[start : start + 50]

    response = await small_limit.post(
        "/v1/clusters", content=chunks(), headers=agency_headers(agency) | {"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text


async def test_a_crash_is_a_500_problem_with_the_request_id(registry_settings: RegistrySettings) -> None:
    app = create_registry(registry_settings)

    @app.get("/v1/test-crash")
    async def crash() -> None:
        raise RuntimeError("boom: internal detail that must not leak")

    async with LifespanManager(app, **LIFESPAN_TIMEOUTS) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/v1/test-crash", headers={"X-Request-ID": "crash-1"})
    problem = assert_problem(response, 500, "internal-error")
    assert problem["request_id"] == "crash-1"
    assert "boom" not in response.text
