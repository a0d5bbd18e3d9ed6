"""The gateway in front of the registry: keys, scopes, forwarding, failures, limits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr
from redis.asyncio import Redis

from gateway.app import create_app as create_gateway
from gateway.proxy import BUFFERED_BODY_BYTES
from gateway.ratelimit import MemoryRateLimiter, RedisRateLimiter
from gateway.settings import UPSTREAMS, GatewaySettings
from services.common.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from services.registry.settings import RegistrySettings
from tests.registry.helpers import cluster_body, firm_body, firm_row, to_csv
from tests.support import BOOTSTRAP_KEY, Stack, assert_problem, running

ADMIN_KEY = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _agency_with_key(stack: Stack, name: str = "Ministerio") -> tuple[str, str]:
    agency = await stack.client.post("/v1/agencies", json={"name": name, "country": "EC"}, headers=ADMIN_KEY)
    assert agency.status_code == 201, agency.text
    agency_id = agency.json()["id"]
    key = await stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=agency_id)
    return agency_id, key


async def test_requests_without_a_valid_key_are_refused(stack: Stack) -> None:
    missing = await stack.client.get("/v1/clusters")
    assert_problem(missing, 401)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await stack.client.get("/v1/clusters", headers=bearer("lk_000000000000_not-a-real-key"))
    assert wrong.status_code == 401


async def test_agency_key_registers_a_cluster_and_a_firm(stack: Stack) -> None:
    agency_id, key = await _agency_with_key(stack)
    cluster = await stack.client.post(
        "/v1/clusters",
        json=cluster_body(),
        headers=bearer(key)
        | {"X-Request-ID": "req-123", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    assert cluster.status_code == 201, cluster.text
    assert cluster.json()["agency_id"] == agency_id
    assert cluster.headers["x-request-id"] == "req-123"
    assert cluster.headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert cluster.headers["ETag"] == '"1"'
    firm = await stack.client.post(
        "/v1/firms", json=firm_body(cluster_ids=[cluster.json()["id"]]), headers={"X-API-Key": key}
    )
    assert firm.status_code == 201, firm.text
    listed = await stack.client.get("/v1/firms", params={"cluster_id": cluster.json()["id"]}, headers=bearer(key))
    assert [f["id"] for f in listed.json()["items"]] == [firm.json()["id"]]
    assert "RateLimit" in listed.headers and "RateLimit-Policy" in listed.headers


async def test_a_forged_principal_header_from_a_client_is_ignored(stack: Stack) -> None:
    _, key = await _agency_with_key(stack)
    forged = sign_principal(Principal(subject="me", role=Role.admin), "guessed-secret")
    response = await stack.client.post(
        "/v1/agencies", json={"name": "Mine", "country": "EC"}, headers=bearer(key) | {PRINCIPAL_HEADER: forged}
    )
    assert response.status_code == 403  # the registry saw the agency key's principal, not the forged one


async def test_scopes_limit_what_a_key_may_do(stack: Stack) -> None:
    agency_id, agency_key = await _agency_with_key(stack)
    viewer = await stack.issue_key(BOOTSTRAP_KEY, role="viewer")
    assert (await stack.client.get("/v1/clusters", headers=bearer(viewer))).status_code == 200
    refused = await stack.client.post("/v1/clusters", json=cluster_body(), headers=bearer(viewer))
    assert refused.status_code == 403 and "registry:write" in refused.json()["detail"]
    read_only = await stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=agency_id, scopes=["registry:read"])
    assert (await stack.client.post("/v1/clusters", json=cluster_body(), headers=bearer(read_only))).status_code == 403
    keys = await stack.client.get("/v1/api-keys", headers=bearer(agency_key))
    assert keys.status_code == 200  # keys:issue: its own agency's keys
    assert (await stack.client.get("/v1/api-keys", headers=bearer(read_only))).status_code == 403
    too_much = await stack.client.post(
        "/v1/api-keys", headers=ADMIN_KEY, json={"name": "x", "role": "viewer", "scopes": ["registry:write"]}
    )
    assert too_much.status_code == 422


async def test_keys_are_shown_once_stored_hashed_and_listed_without_secret(stack: Stack) -> None:
    created = await stack.client.post("/v1/api-keys", headers=ADMIN_KEY, json={"name": "portal", "role": "integrator"})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("lk_") and len(key) > 50
    assert created.headers["Cache-Control"] == "no-store"
    listed = await stack.client.get("/v1/api-keys", headers=ADMIN_KEY)
    body = listed.text
    assert key not in body and key[-20:] not in body
    assert created.json()["id"] in body


async def test_revoked_rotated_and_expired_keys(stack: Stack) -> None:
    created = await stack.client.post("/v1/api-keys", headers=ADMIN_KEY, json={"name": "k", "role": "viewer"})
    key_id, key = created.json()["id"], created.json()["key"]
    assert (await stack.client.get("/v1/clusters", headers=bearer(key))).status_code == 200

    rotated = await stack.client.post(f"/v1/api-keys/{key_id}/rotate", params={"grace_seconds": 0}, headers=ADMIN_KEY)
    assert rotated.status_code == 201
    new_key = rotated.json()["key"]
    assert rotated.json()["rotated_from"] == key_id
    assert (await stack.client.get("/v1/clusters", headers=bearer(key))).status_code == 401
    assert (await stack.client.get("/v1/clusters", headers=bearer(new_key))).status_code == 200

    revoked = await stack.client.delete(f"/v1/api-keys/{rotated.json()['id']}", headers=ADMIN_KEY)
    assert revoked.status_code == 204
    assert (await stack.client.get("/v1/clusters", headers=bearer(new_key))).status_code == 401

    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    short = await stack.client.post(
        "/v1/api-keys", headers=ADMIN_KEY, json={"name": "short", "role": "viewer", "expires_at": soon}
    )
    short_key = short.json()["key"]
    assert (await stack.client.get("/v1/clusters", headers=bearer(short_key))).status_code == 200
    await asyncio.sleep(1.1)
    expired = await stack.client.get("/v1/clusters", headers=bearer(short_key))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


async def test_unrouted_paths_and_internal_endpoints_are_not_exposed(stack: Stack) -> None:
    assert (await stack.client.get("/v1/changes", headers=ADMIN_KEY)).status_code == 404
    assert (await stack.client.get("/v1/nothing-here", headers=ADMIN_KEY)).status_code == 404


async def test_a_service_that_is_down_gets_503_fast_and_opens_the_breaker(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    # Matching is not running: its connections are refused. The breaker stays open for the
    # whole test (however slow the machine), so no half-open trial adds attempts.
    settings = gateway_settings.model_copy(update={"breaker_reset_seconds": 600})
    async with Stack.start(registry_settings, settings) as stack:
        statuses = [(await stack.client.get("/v1/shortlists", headers=ADMIN_KEY)) for _ in range(5)]
        for response in statuses:
            assert_problem(response, 503)
        # Failing fast: matching was tried only until the breaker opened (3 refusals), then the
        # breaker answered alone (with Retry-After) instead of 2 attempts per request.
        breaker = stack.gateway.state.forwarder.upstreams["matching"].breaker
        assert breaker.failures == settings.breaker_failure_threshold == 3
        assert all("Retry-After" in r.headers for r in statuses[1:])
        ready = (await stack.client.get("/readyz")).json()
        assert ready["checks"]["database"] == "ok" and ready["checks"]["matching"] != "ok"


async def test_the_gateway_is_not_ready_while_no_upstream_is(gateway_settings: GatewaySettings) -> None:
    async with running(create_gateway(gateway_settings, http_mounts={})) as gateway:  # every upstream refused
        response = await gateway.get("/readyz")
    body = assert_problem(response, 503, "service-unavailable")
    assert body["checks"]["database"] == "ok"
    assert all(body["checks"][name].startswith("failed: ConnectError") for name in UPSTREAMS), body["checks"]


def _unhealthy_registry() -> FastAPI:
    """A registry whose /readyz answers but whose API says it is unavailable."""
    app = FastAPI()

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/v1/firms")
    async def firms() -> JSONResponse:
        return JSONResponse({"title": "overloaded"}, status_code=503)

    return app


async def _distinct_keys(stack: Stack, count: int) -> list[str]:
    """Keys of as many viewers: the breaker counts a failing service once per key."""
    return [await stack.issue_key(BOOTSTRAP_KEY, name=f"viewer {i}", role="viewer") for i in range(count)]


async def test_the_gateway_is_not_ready_without_a_required_service(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    assert gateway_settings.required_upstreams == ["registry", "matching"]  # the default
    async with Stack.start(registry_settings, gateway_settings) as stack:  # matching is not running
        unready = await stack.client.get("/readyz")
        alive = await stack.client.get("/livez")
        firms = await stack.client.get("/v1/firms", headers=ADMIN_KEY)
    body = assert_problem(unready, 503, "service-unavailable")
    assert "matching" in body["detail"] and "registry" not in body["detail"], body["detail"]
    assert body["checks"]["registry"] == "ok" and body["checks"]["matching"].startswith("failed: ConnectError")
    assert alive.status_code == 200 and firms.status_code == 200  # alive, and serving what it can

    reporting_optional = gateway_settings.model_copy(update={"required_upstreams": ["registry"]})
    async with Stack.start(registry_settings, reporting_optional) as stack:
        ready = await stack.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["reporting"] != "ok"  # reported, not required


def test_required_services_are_named_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_REQUIRED_UPSTREAMS", "registry, events")
    assert GatewaySettings().required_upstreams == ["registry", "events"]
    monkeypatch.setenv("GATEWAY_REQUIRED_UPSTREAMS", "")
    assert GatewaySettings().required_upstreams == []
    monkeypatch.setenv("GATEWAY_REQUIRED_UPSTREAMS", "registry,billing")
    with pytest.raises(ValueError, match="billing"):
        GatewaySettings()


async def test_the_gateway_is_not_ready_while_every_upstream_circuit_is_open(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    # No service required: ready while any one answers.
    settings = gateway_settings.model_copy(update={"breaker_reset_seconds": 60, "required_upstreams": []})
    async with Stack.start(registry_settings, settings, extra_upstreams={"registry": _unhealthy_registry()}) as stack:
        ready = await stack.client.get("/readyz")  # matching and reporting are not running; the registry is
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["registry"] == "ok" and ready.json()["checks"]["matching"] != "ok"
        for key in await _distinct_keys(stack, settings.breaker_failure_threshold):  # one key cannot open it
            assert (await stack.client.get("/v1/firms", headers={"Authorization": f"Bearer {key}"})).status_code == 503
        unready = await stack.client.get("/readyz")
    assert unready.status_code == 503, unready.text
    assert unready.json()["checks"]["registry"] == "failed: RuntimeError: circuit open"


async def test_a_readiness_probe_does_not_take_a_half_open_circuits_trial_request(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    settings = gateway_settings.model_copy(update={"breaker_reset_seconds": 0.3})
    async with Stack.start(registry_settings, settings, extra_upstreams={"registry": _unhealthy_registry()}) as stack:
        for key in await _distinct_keys(stack, settings.breaker_failure_threshold):
            await stack.client.get("/v1/firms", headers={"Authorization": f"Bearer {key}"})
        await asyncio.sleep(0.4)  # the circuit is half-open: the next request is its trial
        assert (await stack.client.get("/readyz")).json()["checks"]["registry"] == "ok"
        trial = await stack.client.get("/v1/firms", headers=ADMIN_KEY)
    assert trial.json() == {"title": "overloaded"}, "the trial request reached the registry"


def _misbehaving_upstream() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/shortlists")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(600)  # only the gateway's timeouts can end the request
        return {"ok": "late"}

    @app.get("/v1/linkages")
    async def crash() -> dict[str, str]:
        raise RuntimeError("boom")

    return app


async def test_slow_and_crashing_upstreams_map_to_504_and_502(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    slow = gateway_settings.model_copy(
        update={"upstream_read_timeout": 0.2, "upstream_connect_timeout": 0.1, "upstream_deadline_seconds": 0.3}
    )
    async with Stack.start(registry_settings, slow, extra_upstreams={"matching": _misbehaving_upstream()}) as stack:
        async with asyncio.timeout(60):  # only bounds a hang: the upstream answers after 600 s
            timed_out = await stack.client.get("/v1/shortlists", headers=ADMIN_KEY)
        assert_problem(timed_out, 504)  # ended by the gateway's timeouts, not by the upstream
        crashed = await stack.client.get("/v1/linkages", headers=ADMIN_KEY)
        assert crashed.status_code == 502
        assert crashed.json()["request_id"] == crashed.headers["x-request-id"]


@asynccontextmanager
async def _hung_server() -> AsyncIterator[tuple[str, list[int]]]:
    """A real TCP server that accepts connections and never answers: its base URL, and a
    list that grows by one item per connection accepted."""
    hang = asyncio.Event()
    accepted: list[int] = []

    async def accept_and_hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        await hang.wait()
        writer.close()

    server = await asyncio.start_server(accept_and_hang, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted
    finally:
        hang.set()
        server.close()
        await server.wait_closed()


async def test_a_hung_upstream_gets_504_within_one_total_deadline(gateway_settings: GatewaySettings) -> None:
    deadline = 1.0
    async with _hung_server() as (hung_url, accepted):
        # Each attempt could wait 600 s for an answer: only the total deadline can end the request.
        settings = gateway_settings.model_copy(
            update={"registry_url": hung_url, "upstream_deadline_seconds": deadline, "upstream_read_timeout": 600}
        )
        async with running(create_gateway(settings)) as gateway:  # real sockets: no in-process mounts
            started = time.monotonic()
            async with asyncio.timeout(60):  # only bounds a hang, generously for a loaded machine
                response = await gateway.get("/v1/firms", headers=ADMIN_KEY)
            elapsed = time.monotonic() - started
    assert_problem(response, 504)
    assert elapsed >= deadline  # the deadline was waited for, not cut short
    assert len(accepted) == 1  # one deadline for the request, not one per attempt: no retry once it is spent


@asynccontextmanager
async def _hanging_up_server(requests: list[bytes]) -> AsyncIterator[str]:
    """A real TCP server that reads each request's head, records it, and hangs up without
    answering (the client cannot tell whether the service acted on it): its base URL."""

    async def read_and_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(read_and_hang_up, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("/v1/firms", 3),  # a create honours Idempotency-Key: repeated (1 + 2 retries)
        ("/v1/duplicates/dup_1/merge", 1),  # an action does not: never sent twice
        ("/v1/duplicates/merges/mrg_1/undo", 1),
    ],
)
async def test_a_post_is_repeated_only_where_its_idempotency_key_is_honoured(
    gateway_settings: GatewaySettings, path: str, sent: int
) -> None:
    requests: list[bytes] = []
    async with _hanging_up_server(requests) as url:
        settings = gateway_settings.model_copy(update={"registry_url": url, "upstream_retries": 2})
        async with running(create_gateway(settings)) as gateway:
            response = await gateway.post(path, json={}, headers=ADMIN_KEY | {"Idempotency-Key": "k-1"})
    assert response.status_code == 502, response.text
    assert len(requests) == sent, requests


async def test_rate_limit_in_memory(registry_settings: RegistrySettings, gateway_settings: GatewaySettings) -> None:
    limiter = MemoryRateLimiter(per_minute=1, burst=3)  # no refill to speak of while the test runs
    async with Stack.start(registry_settings, gateway_settings, rate_limiter=limiter) as stack:
        statuses = [(await stack.client.get("/v1/clusters", headers=ADMIN_KEY)) for _ in range(4)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429]
        limited = statuses[-1]
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert_problem(limited, 429)
        assert "r=0" in limited.headers["RateLimit"]
        assert statuses[0].headers["RateLimit"].startswith('"default";r=2')


async def test_failed_key_checks_are_rate_limited_per_client_address(stack: Stack) -> None:
    """With the default limits: 200 requests with wrong keys in a row end in 429s."""
    settings: GatewaySettings = stack.gateway.state.settings
    statuses = []
    refused = None
    for attempt in range(200):
        # wrong keys, no key at all, and a wrong key at the browser sign-in all count
        if attempt % 3 == 0:
            response = await stack.client.get("/v1/clusters")
        elif attempt % 3 == 1:
            response = await stack.client.get("/v1/clusters", headers=bearer(f"lk_000000000000_wrong-{attempt}"))
        else:
            response = await stack.client.post("/login", data={"api_key": f"lk_000000000000_wrong-{attempt}"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            refused = response  # the last one: a slow loop may end on a refilled attempt's 401
    first_refused = statuses.index(429)
    assert first_refused >= settings.auth_failures_burst and set(statuses[:first_refused]) == {401}
    assert statuses.count(429) > 100, statuses  # one refills every 2 s while the loop runs
    assert refused is not None
    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # A valid key from the same address is served as usual.
    assert (await stack.client.get("/v1/clusters", headers=ADMIN_KEY)).status_code == 200


@pytest.mark.redis
async def test_rate_limit_shared_through_redis(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    namespace = f"test:{uuid.uuid4().hex}:"
    try:
        async with (
            Stack.start(
                registry_settings, gateway_settings, rate_limiter=RedisRateLimiter(redis, 1, 3, namespace)
            ) as first,
            Stack.start(
                registry_settings, gateway_settings.model_copy(), rate_limiter=RedisRateLimiter(redis, 1, 3, namespace)
            ) as second,
        ):
            statuses = [
                (await first.client.get("/v1/clusters", headers=ADMIN_KEY)).status_code,
                (await second.client.get("/v1/clusters", headers=ADMIN_KEY)).status_code,
                (await first.client.get("/v1/clusters", headers=ADMIN_KEY)).status_code,
                (await second.client.get("/v1/clusters", headers=ADMIN_KEY)).status_code,
            ]
            assert statuses == [200, 200, 200, 429]
    finally:
        keys = [k async for k in redis.scan_iter(match=namespace + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_one_merged_openapi_document(stack: Stack) -> None:
    document = (await stack.client.get("/openapi.json")).json()
    paths = document["paths"]
    assert "/v1/clusters" in paths and "/v1/clusters/{record_id}" in paths and "/v1/api-keys" in paths
    assert "/v1/changes" not in paths and "/readyz" not in paths
    assert set(document["components"]["securitySchemes"]) == {"ApiKey", "ApiKeyHeader"}
    assert "Problem" in document["components"]["schemas"]
    assert document["info"]["x-unavailable-services"] == ["events", "matching", "reporting"]
    refs = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    refs.add(value.rsplit("/", 1)[-1])
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(document)
    assert refs <= set(document["components"]["schemas"]), "every $ref resolves"


async def test_cors_for_configured_portal_origins(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    settings = gateway_settings.model_copy(update={"cors_origins": ["https://portal.example.org"]})
    async with Stack.start(registry_settings, settings) as stack:
        preflight = await stack.client.options(
            "/v1/clusters",
            headers={
                "Origin": "https://portal.example.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://portal.example.org"
        other = await stack.client.options(
            "/v1/clusters", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in other.headers


async def test_metrics_per_upstream(stack: Stack) -> None:
    await stack.client.get("/v1/clusters", headers=ADMIN_KEY)
    metrics = (await stack.client.get("/metrics", headers=ADMIN_KEY)).text
    assert (
        'gateway_upstream_requests_total{method="GET",route="/v1/clusters",status="200",upstream="registry"}' in metrics
    )
    # The gateway's own request metrics (and access log) name the forwarding route's template.
    assert 'http_requests_total{method="GET",route="/v1/{path:path}",service="gateway",status="200"}' in metrics, (
        "forwarded requests are counted as unmatched"
    )


METRICS_KEY = "lk_metricstest1_prometheus-scrapes-with-this-key-0123456789"


async def test_metrics_need_a_key_with_the_metrics_scope(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    settings = gateway_settings.model_copy(update={"metrics_api_key": SecretStr(METRICS_KEY)})
    async with Stack.start(registry_settings, settings) as stack:
        anonymous = await stack.client.get("/metrics")
        assert_problem(anonymous, 401)
        _, agency_key = await _agency_with_key(stack)
        assert (await stack.client.get("/metrics", headers=bearer(agency_key))).status_code == 403
        scraped = await stack.client.get("/metrics", headers=bearer(METRICS_KEY))  # as Prometheus does
        assert scraped.status_code == 200 and "http_requests_total" in scraped.text
        assert (await stack.client.get("/metrics", headers=ADMIN_KEY)).status_code == 200
        # The metrics key reads metrics and nothing else.
        assert (await stack.client.get("/v1/clusters", headers=bearer(METRICS_KEY))).status_code == 403
        assert (await stack.client.get("/v1/api-keys", headers=bearer(METRICS_KEY))).status_code == 403


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
async def test_both_key_headers_work(stack: Stack, header: str) -> None:
    value = f"Bearer {BOOTSTRAP_KEY}" if header == "Authorization" else BOOTSTRAP_KEY
    assert (await stack.client.get("/v1/clusters", headers={header: value})).status_code == 200


async def test_imports_stream_through_the_gateway_under_their_own_size_limit(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    small = gateway_settings.model_copy(update={"max_body_bytes": 4096, "max_upload_bytes": 200_000})
    async with Stack.start(registry_settings, small) as stack:
        _, key = await _agency_with_key(stack)
        content = to_csv([firm_row(i) for i in range(300)])
        assert small.max_body_bytes < len(content) < small.max_upload_bytes

        async def chunks(data: bytes) -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
            for start in range(0, len(data), 1000):
                yield data[start : start + 1000]

        upload = bearer(key) | {"Content-Type": "text/csv"}
        accepted = await stack.client.post("/v1/imports", content=chunks(content), headers=upload)
        assert accepted.status_code == 202, accepted.text
        for _ in range(600):
            job = (await stack.client.get(f"/v1/imports/{accepted.json()['id']}", headers=bearer(key))).json()
            if job["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
        assert job["status"] == "completed" and job["progress"]["rows_accepted"] == 300, job
        # Other bodies keep the gateway's own limit; an upload past its limit is refused whole.
        large_json = await stack.client.post(
            "/v1/clusters", json=cluster_body(description="x" * 5000), headers=bearer(key)
        )
        assert large_json.status_code == 413
        oversized = to_csv([firm_row(i) for i in range(1500)])
        assert len(oversized) > small.max_upload_bytes
        refused = await stack.client.post("/v1/imports", content=chunks(oversized), headers=upload)
        assert_problem(refused, 413)
        jobs = (await stack.client.get("/v1/imports", headers=bearer(key))).json()["items"]
        assert [j["id"] for j in jobs] == [accepted.json()["id"]]


async def test_a_browser_signs_in_with_a_key_and_reads_with_its_session_cookie(stack: Stack) -> None:
    client = stack.client
    html = {"Accept": "text/html,application/xhtml+xml"}
    # A browser without credentials is sent to sign in, keeping where it was going; an API client gets 401.
    sent = await client.get("/dashboard", params={"country": "EC"}, headers=html)
    assert sent.status_code == 303 and sent.headers["location"] == "/login?next=%2Fdashboard%3Fcountry%3DEC"
    assert (await client.get("/dashboard")).status_code == 401
    form = await client.get("/login", params={"next": "/dashboard?country=EC"})
    assert form.status_code == 200 and 'name="api_key"' in form.text and "/dashboard?country=EC" in form.text
    agency_id, key = await _agency_with_key(stack)
    wrong = await client.post("/login", data={"api_key": "lk_000000000000_wrong", "next": "/dashboard"})
    assert wrong.status_code == 401 and "SESSION" not in str(wrong.cookies).upper() and 'role="alert"' in wrong.text
    # Never redirected off the gateway.
    offsite = await client.post("/login", data={"api_key": key, "next": "//evil.example.org/x"})
    assert offsite.status_code == 303 and offsite.headers["location"] == "/dashboard"
    signed_in = await client.post("/login", data={"api_key": key, "next": "/v1/clusters"})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/v1/clusters"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and key not in cookie
    session = {"Cookie": f"lk_session={signed_in.cookies['lk_session']}"}
    client.cookies.clear()
    await client.post("/v1/clusters", json=cluster_body(), headers=bearer(key))
    listed = await client.get("/v1/clusters", headers=session)
    assert listed.status_code == 200 and [c["agency_id"] for c in listed.json()["items"]] == [agency_id]
    # A session reads only: a write needs the key itself.
    write = await client.post("/v1/clusters", json=cluster_body(name="Other"), headers=session)
    assert write.status_code == 401
    forged = signed_in.cookies["lk_session"][:-2] + "xx"
    assert (await client.get("/v1/clusters", headers={"Cookie": f"lk_session={forged}"})).status_code == 401
    latin1 = {b"Cookie": f"lk_session={forged[:-1]}é".encode("latin-1")}
    assert (await client.get("/v1/clusters", headers=latin1)).status_code == 401
    # Revoking the key ends its sessions; signing out clears the cookie.
    keys = (await client.get("/v1/api-keys", headers=ADMIN_KEY)).json()["items"]
    key_id = next(k["id"] for k in keys if key.startswith(k["prefix"]))
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=ADMIN_KEY)).status_code == 204
    assert (await client.get("/v1/clusters", headers=session)).status_code == 401
    signed_out = await client.post("/logout", headers=session)
    assert signed_out.status_code == 303 and 'lk_session=""' in signed_out.headers["set-cookie"]


async def test_a_key_that_cannot_read_reports_is_told_so_on_the_sign_in_page(stack: Stack) -> None:
    client = stack.client
    html = {"Accept": "text/html,application/xhtml+xml"}
    integrator = await stack.issue_key(BOOTSTRAP_KEY, role="integrator")  # registry and matching, no reports
    refused = await client.post("/login", data={"api_key": integrator, "next": "/dashboard?country=EC"})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers  # no session it could not use
    assert refused.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in refused.text and "cannot read reports" in refused.text
    assert "reporting:read" in refused.text and "viewer" in refused.text  # which keys can, and how to get one
    assert 'name="api_key"' in refused.text and "/dashboard?country=EC" in refused.text  # try again, same view
    # A session made for the API (it reads clusters) sent to the dashboard: the page, not a raw JSON 403.
    signed_in = await client.post("/login", data={"api_key": integrator, "next": "/v1/clusters"})
    assert signed_in.status_code == 303
    session = {"Cookie": f"lk_session={signed_in.cookies['lk_session']}"}
    client.cookies.clear()
    page = await client.get("/dashboard", headers=session | html)
    assert page.status_code == 403 and "cannot read reports" in page.text
    api = await client.get("/dashboard", headers=bearer(integrator))  # an API client still gets the problem
    assert_problem(api, 403)
    viewer = await stack.issue_key(BOOTSTRAP_KEY, role="viewer")
    allowed = await client.post("/login", data={"api_key": viewer, "next": "/dashboard"})
    assert allowed.status_code == 303 and allowed.headers["location"] == "/dashboard"


def _sized_upstream() -> FastAPI:
    """Answers of a few bytes (sent on whole) and of a megabyte (streamed through)."""
    app = FastAPI()

    @app.api_route("/v1/shortlists", methods=["GET", "HEAD"])
    async def small() -> Response:
        return Response(b'{"small":true}', media_type="application/json", headers={"ETag": '"s1"'})

    @app.get("/v1/linkages")
    async def large() -> Response:
        return Response(b"x" * (BUFFERED_BODY_BYTES * 4), media_type="text/plain")

    return app


async def test_small_answers_are_sent_on_whole_and_large_ones_streamed_unchanged(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    async with Stack.start(
        registry_settings, gateway_settings, extra_upstreams={"matching": _sized_upstream()}
    ) as stack:
        small = await stack.client.get("/v1/shortlists", headers=ADMIN_KEY)
        assert (small.status_code, small.content, small.headers["content-length"]) == (200, b'{"small":true}', "14")
        assert small.headers["etag"] == '"s1"' and "traceparent" in small.headers
        head = await stack.client.head("/v1/shortlists", headers=ADMIN_KEY)
        assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "14")
        large = await stack.client.get("/v1/linkages", headers=ADMIN_KEY)
        assert large.status_code == 200 and large.content == b"x" * (BUFFERED_BODY_BYTES * 4)
