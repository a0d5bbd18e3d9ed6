"""The edge holds against a hostile or careless client (issue 16, items 1 to 3).

- One key's failing requests leave every other tenant served: the circuit breaker
  counts only failures that say the service is unhealthy, and those only once per key.
- No encoded, doubled or raw traversal reaches a service's internals through the gateway.
- Control characters in a path get a 400 problem and the connection stays usable.

The path tests talk to the gateway as an attacker would: raw bytes on a socket to a
real uvicorn server, since an HTTP client library normalises ``../`` away before sending.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from gateway.app import create_app as create_gateway
from gateway.paths import path_refusal
from gateway.proxy import ROUTES, route_for
from gateway.settings import GatewaySettings
from services.common.errors import ServiceUnavailable
from services.events.settings import EventsSettings
from services.matching.settings import MatchingSettings
from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from services.reporting.settings import ReportingSettings
from tests.support import (
    BOOTSTRAP_KEY,
    LIFESPAN_TIMEOUTS,
    PROBLEM,
    Stack,
    assert_problem,
    free_port,
    route_paths,
    serving,
)

ADMIN_KEY = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- a real server and a raw connection to it ------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class RawConnection:
    """One keep-alive HTTP/1.1 connection; request targets are sent byte for byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    @asynccontextmanager
    async def open(cls, port: int) -> AsyncIterator[RawConnection]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            yield cls(reader, writer)
        finally:
            writer.close()

    async def get(self, target: bytes, key: str = BOOTSTRAP_KEY) -> RawResponse:
        self.writer.write(
            b"GET %s HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n\r\n" % (target, key.encode())
        )
        await self.writer.drain()
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return RawResponse(int(status_line.split()[1]), headers, body)


def forwarded_requests(gateway: FastAPI) -> float:
    """Requests the gateway has sent to any upstream (``gateway_upstream_requests_total``)."""
    return sum(
        float(sample.value)
        for metric in gateway.state.metrics.registry.collect()
        if metric.name == "gateway_upstream_requests"
        for sample in metric.samples
        if sample.name == "gateway_upstream_requests_total"
    )


# --- 2. no encoded path reaches an undocumented route ----------------------------------

# Service internals, each behind a public prefix of the same service (and the dashboard).
INTERNALS = [
    ("/v1/firms", "/metrics"),  # registry
    ("/v1/clusters", "/openapi.json"),
    ("/v1/agencies", "/v1/changes?after=0"),  # the registry's change feed
    ("/v1/shortlists", "/v1/catalogue"),  # matching
    ("/v1/linkages", "/v1/changes?after=0"),
    ("/v1/indicators", "/metrics"),  # reporting
    ("/dashboard", "/openapi.json"),
]
# Ways to write "../" (and neighbours) that a server or proxy may decode or normalise.
PARENT_SEGMENTS = {
    "raw": "../",
    "encoded slash": "..%2F",
    "encoded slash lower": "..%2f",
    "encoded dots": "%2e%2e/",
    "encoded dots upper": "%2E%2E/",
    "all encoded": "%2e%2e%2f",
    "all encoded upper": "%2E%2E%2F",
    "one dot encoded": ".%2e/",
    "double encoded": "%252e%252e%252f",
    "double encoded slash": "..%252f",
    "backslash": "..\\",
    "encoded backslash": "..%5c",
    "encoded dots backslash": "%2e%2e%5C",
    "dot segment first": "./../",
    "empty segment first": "/../",
}


def traversal(prefix: str, target: str, parent: str) -> bytes:
    """``prefix`` then enough parent segments to climb to the root, then ``target``."""
    depth = prefix.count("/")
    return (prefix + "/" + parent * depth + target.lstrip("/")).encode()


@pytest.mark.parametrize("parent", PARENT_SEGMENTS.values(), ids=PARENT_SEGMENTS.keys())
async def test_no_encoded_path_reaches_an_undocumented_route(whole_platform: Stack, parent: str) -> None:
    async with serving(whole_platform.gateway) as port, RawConnection.open(port) as connection:
        before = forwarded_requests(whole_platform.gateway)
        for prefix, target in INTERNALS:
            path = traversal(prefix, target, parent)
            refused = await connection.get(path)
            assert refused.status == 400, (path, refused)
            assert refused.headers["content-type"] == PROBLEM
            assert b"refused" in refused.body and b"http_requests_total" not in refused.body
        assert forwarded_requests(whole_platform.gateway) == before, "no upstream was sent any of them"
        # Still one connection, still usable, and a public path is served as before.
        served = await connection.get(b"/v1/agencies")
        assert served.status == 200 and b'"items"' in served.body
    assert forwarded_requests(whole_platform.gateway) == before + 1


@pytest.mark.parametrize(
    "path",
    ["/v1/firms//x", "//v1/firms", "/v1/firms/.", "/v1/firms/a%3Fb", "/v1/firms/a%23b", "/v1/firms/a%25b", "*"],
)
def test_other_non_canonical_paths_are_refused(path: str) -> None:
    assert path_refusal(urllib.parse.unquote(path), path.encode()) is not None


@pytest.mark.parametrize("path", ["/v1/firms", "/v1/firms/", "/v1/firms/frm_01JD3W6V8K2N4R7T9X0Y1Z2A3B", "/"])
def test_canonical_paths_pass(path: str) -> None:
    assert path_refusal(path, path.encode()) is None


def test_every_route_under_a_public_prefix_is_documented(
    registry_settings: RegistrySettings,
    matching_settings: MatchingSettings,
    reporting_settings: ReportingSettings,
    events_settings: EventsSettings,
) -> None:
    """The prefix allow-list (``ROUTES``) forwards only documented routes: no service
    keeps an internal route under a public prefix (a canonical path cannot leave it)."""
    from services.events.app import create_app as create_events
    from services.matching.app import create_app as create_matching
    from services.reporting.app import create_app as create_reporting

    apps = {
        "registry": create_registry(registry_settings),
        "matching": create_matching(matching_settings),
        "reporting": create_reporting(reporting_settings),
        "events": create_events(events_settings),
    }
    for name, app in apps.items():
        documented = set(app.openapi()["paths"])
        served = {path for path in route_paths(app.routes) if route_for(path) is not None}
        assert served, name
        assert served <= documented, (name, served - documented)
        assert {route_for(path)[1] for path in served} == {name}  # type: ignore[index]
    assert {upstream for _, upstream in ROUTES} == set(apps)


# --- 3. control characters: a 400 problem, and the connection stays usable ---------------


@pytest.mark.parametrize("character", ["%00", "%01", "%09", "%0A", "%0D", "%1F", "%7F", "%7f"])
async def test_a_control_character_in_a_path_is_a_400_and_the_connection_stays_open(
    stack: Stack, character: str
) -> None:
    async with serving(stack.gateway) as port, RawConnection.open(port) as connection:
        refused = await connection.get(b"/v1/firms/a%sb" % character.encode())
        assert refused.status == 400, refused
        assert refused.headers["content-type"] == PROBLEM
        assert b"control characters" in refused.body
        assert refused.headers.get("connection") != "close"
        next_one = await connection.get(b"/v1/firms")  # on the same connection
        assert next_one.status == 200 and b'"items"' in next_one.body


@pytest.mark.parametrize("character", [b"\x00", b"\x01", b"\x7f"])
async def test_a_raw_control_character_is_a_400_from_the_server(stack: Stack, character: bytes) -> None:
    # Raw control bytes make the request line malformed: uvicorn's parser answers 400
    # and closes the connection before the app sees the request (RFC 9112: the message
    # boundary is unknown after a malformed request line). Never a 500.
    async with serving(stack.gateway) as port:
        async with RawConnection.open(port) as connection:
            assert (await connection.get(b"/v1/firms/a" + character + b"b")).status == 400
        async with RawConnection.open(port) as connection:
            assert (await connection.get(b"/v1/firms")).status == 200


# --- 1. one key cannot deny an upstream to everyone --------------------------------------


def registry_that_fails_some_requests(settings: RegistrySettings) -> FastAPI:
    """The real registry, plus routes where a request fails as a bad input can make it:
    a crash (500), a timeout, and a 503 answer."""
    app = create_registry(settings)

    @app.get("/v1/firms/{firm_id}/crash")
    async def crash(firm_id: str) -> None:
        raise RuntimeError(f"this request crashes the registry: {firm_id}")

    @app.get("/v1/firms/{firm_id}/slow")
    async def slow(firm_id: str) -> None:
        await asyncio.sleep(5)

    @app.get("/v1/firms/{firm_id}/unavailable")
    async def unavailable(firm_id: str) -> None:
        raise ServiceUnavailable("this request finds the registry unavailable")

    return app


@asynccontextmanager
async def gateway_before(registry: FastAPI, settings: GatewaySettings, **mounts: str) -> AsyncIterator[Stack]:
    """The gateway in front of ``registry``; ``mounts`` send other base URLs over real TCP."""
    async with LifespanManager(registry, **LIFESPAN_TIMEOUTS) as running_registry:
        transports: dict[str, httpx.AsyncBaseTransport] = {
            "http://registry": httpx.ASGITransport(app=running_registry.app, raise_app_exceptions=False)
        }
        transports |= {url: httpx.AsyncHTTPTransport() for url in mounts.values()}
        gateway = create_gateway(settings, http_mounts=transports)
        async with (
            LifespanManager(gateway, **LIFESPAN_TIMEOUTS) as running_gateway,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=running_gateway.app), base_url="http://gateway", timeout=30
            ) as client,
        ):
            yield Stack(client, gateway, {"registry": registry})


@pytest.fixture
def fragile_settings(gateway_settings: GatewaySettings) -> GatewaySettings:
    # Threshold 3 (from the fixture), and a short deadline for the slow route.
    return gateway_settings.model_copy(
        update={"upstream_connect_timeout": 0.1, "upstream_deadline_seconds": 0.3, "breaker_reset_seconds": 0.5}
    )


async def _tenants(stack: Stack, count: int) -> list[str]:
    return [await stack.issue_key(BOOTSTRAP_KEY, name=f"tenant {i}", role="viewer") for i in range(count)]


async def test_one_keys_failing_requests_leave_other_tenants_served(
    registry_settings: RegistrySettings, fragile_settings: GatewaySettings
) -> None:
    async with gateway_before(registry_that_fails_some_requests(registry_settings), fragile_settings) as stack:
        attacker, tenant = await _tenants(stack, 2)
        for round_ in range(2):  # repeatably
            for failing, status in (("crash", 502), ("unavailable", 503), ("slow", 504)):
                for _ in range(fragile_settings.breaker_failure_threshold + 1):
                    answer = await stack.client.get(f"/v1/firms/x/{failing}", headers=bearer(attacker))
                    assert answer.status_code == status, (round_, failing, answer.text)
                    assert "Retry-After" not in answer.headers, "the breaker stayed closed"
                served = await stack.client.get("/v1/agencies", headers=bearer(tenant))
                assert served.status_code == 200, (round_, failing, served.text)
            # The issue's own reproduction: a NUL in the search text (500 on PostgreSQL
            # while the registry does not refuse it; 4xx once it does).
            for _ in range(fragile_settings.breaker_failure_threshold + 1):
                answer = await stack.client.get("/v1/firms", params={"q": "a\x00b"}, headers=bearer(attacker))
                assert answer.status_code != 503 and "Retry-After" not in answer.headers, answer.text
            assert (await stack.client.get("/v1/agencies", headers=bearer(tenant))).status_code == 200
        assert stack.gateway.state.forwarder.upstreams["registry"].breaker.state == "closed"


async def test_failures_from_several_keys_open_the_breaker(
    registry_settings: RegistrySettings, fragile_settings: GatewaySettings
) -> None:
    async with gateway_before(registry_that_fails_some_requests(registry_settings), fragile_settings) as stack:
        keys = await _tenants(stack, fragile_settings.breaker_failure_threshold + 1)
        for key in keys[:-1]:
            assert (await stack.client.get("/v1/firms/x/unavailable", headers=bearer(key))).status_code == 503
        failing_fast = await stack.client.get("/v1/agencies", headers=bearer(keys[-1]))
        assert_problem(failing_fast, 503)
        assert "Retry-After" in failing_fast.headers
        # A probe of readiness while half-open must not hold the trial forever.
        await asyncio.sleep(fragile_settings.breaker_reset_seconds)
        await stack.client.get("/readyz")
        deadline = time.monotonic() + 5
        while (served := await stack.client.get("/v1/agencies", headers=bearer(keys[-1]))).status_code != 200:
            assert time.monotonic() < deadline, served.text
            await asyncio.sleep(0.1)


async def test_a_real_connection_failure_opens_the_breaker_for_one_key(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    nothing_listens = f"http://127.0.0.1:{free_port()}"  # connection refused, by the operating system
    settings = gateway_settings.model_copy(update={"matching_url": nothing_listens})
    registry = create_registry(registry_settings)
    async with gateway_before(registry, settings, matching=nothing_listens) as stack:
        key = (await _tenants(stack, 1))[0]
        statuses: list[httpx.Response] = []
        for _ in range(settings.breaker_failure_threshold):
            statuses.append(await stack.client.get("/v1/shortlists", headers=bearer(key)))
        assert {r.status_code for r in statuses} == {503}
        assert "Retry-After" in statuses[-1].headers, "open: failing fast"
        assert stack.gateway.state.forwarder.upstreams["matching"].breaker.state == "open"
        assert (await stack.client.get("/v1/agencies", headers=bearer(key))).status_code == 200
