"""Liveness, readiness and Prometheus metrics of a service."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from tests.registry.helpers import cluster_body, create, make_agency
from tests.support import ADMIN, assert_problem, running


async def test_livez_and_healthz(registry: httpx.AsyncClient) -> None:
    for path in ("/livez", "/healthz"):
        response = await registry.get(path)
        assert response.status_code == 200, path
        assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(registry: httpx.AsyncClient) -> None:
    response = await registry.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"


async def test_readyz_is_503_problem_when_the_database_is_unreachable(registry_settings: RegistrySettings) -> None:
    app = create_registry(registry_settings)
    async with running(app) as client:
        working: AsyncEngine = app.state.engine
        unreachable = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")  # nothing listens on 1
        app.state.engine = unreachable
        try:
            response = await client.get("/readyz")
        finally:
            app.state.engine = working
            await unreachable.dispose()
        assert (await client.get("/readyz")).status_code == 200
    body = assert_problem(response, 503, "service-unavailable")
    assert body["checks"]["database"] != "ok"
    assert body["request_id"] == response.headers["x-request-id"]


def _samples(metrics: str, name: str) -> list[dict[str, str]]:
    """The label sets of every sample of ``name``."""
    found = []
    for line in metrics.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} ", line)
        if match:
            found.append(dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))))
    return found


async def test_metrics_count_requests_by_route_template(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    assert (await registry.get(f"/v1/clusters/{cluster['id']}", headers=ADMIN)).status_code == 200
    assert (await registry.get("/v1/clusters/clu_missing", headers=ADMIN)).status_code == 404
    assert (await registry.get("/v1/no-such-route", headers=ADMIN)).status_code == 404

    response = await registry.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text, "http_requests_total")
    routes = {s["route"] for s in samples}
    assert "/v1/clusters/{record_id}" in routes
    assert not any(cluster["id"] in route or "clu_missing" in route for route in routes), routes
    assert "/v1/no-such-route" not in routes  # unknown paths must not grow the label set

    reads = [s for s in samples if s["route"] == "/v1/clusters/{record_id}" and s["method"] == "GET"]
    assert {s["status"] for s in reads} == {"200", "404"}
    assert all(s["service"] == "registry" for s in samples)
    assert {"route": "/v1/clusters", "method": "POST", "status": "201"}.items() <= next(
        s for s in samples if s["route"] == "/v1/clusters" and s["method"] == "POST"
    ).items()
    assert "http_request_duration_seconds_bucket" in response.text


async def test_metrics_count_the_exact_number_of_requests(registry: httpx.AsyncClient) -> None:
    for _ in range(3):
        await registry.get("/v1/agencies", headers=ADMIN)
    text = (await registry.get("/metrics")).text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("http_requests_total{") and 'route="/v1/agencies"' in line and 'status="200"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) == 3.0
