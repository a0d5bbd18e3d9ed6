"""The gateway's own HTTP client to its services (``gateway.upstream.PooledClient``).

The rest of the gateway's tests route the services' URLs to in-process apps through
httpx; these talk to real uvicorn servers over TCP, as the gateway does in production:
keep-alive reuse, bodies both ways, streaming, HEAD, and each kind of failure raised as
the httpx exception the forwarder maps to 502, 503 or 504. The last test runs a whole
gateway with this client in front of a real registry served over TCP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app as create_gateway
from gateway.forward import FORWARDED_ROUTE, ROUTED_FIRST
from gateway.proxy import route_for
from gateway.settings import GatewaySettings
from gateway.upstream import READ_BUFFER_BYTES, PooledClient
from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from tests.support import BOOTSTRAP_KEY, LIFESPAN_TIMEOUTS, assert_problem, free_port, route_paths, serving

BIG = bytes(range(256)) * (4 * READ_BUFFER_BYTES // 256)  # past the read buffer: flow control runs


class Upstream:
    """A raw ASGI service: echoes what it got, or misbehaves on chosen paths."""

    def __init__(self) -> None:
        self.client_ports: list[int] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.client_ports.append(scope["client"][1])
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path == "/slow":
            await asyncio.sleep(2)
        if path == "/big":  # streamed by the server: chunked, no length
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            for start in range(0, len(BIG), 65536):
                await send({"type": "http.response.body", "body": BIG[start : start + 65536], "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/broken":  # announces more than it sends, then fails
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
            await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
            raise RuntimeError("the service fails mid-answer")
        echo = b"%s %s %s|%s" % (
            scope["method"].encode(),
            scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b""),
            b";".join(b"%s=%s" % (k, v) for k, v in scope["headers"]),
            body,
        )
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(echo)), (b"x-echo", b"1")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else echo})


async def _chunks() -> AsyncIterator[bytes]:
    for start in range(0, len(BIG), 100_000):
        await asyncio.sleep(0)
        yield BIG[start : start + 100_000]


async def test_requests_reuse_one_connection_and_carry_bodies_both_ways() -> None:
    upstream = Upstream()
    client = PooledClient(connect_timeout=1, read_timeout=5)
    async with serving(upstream) as port:
        base = f"http://127.0.0.1:{port}"
        for index in range(5):
            response = await client.send("POST", base, f"/p/{index}?a=1&b=%20", [(b"x-k", b"v")], b"hello")
            assert response.status_code == 201 and response.header(b"x-echo") == b"1"
            body = await response.aread()
            assert body.startswith(b"POST /p/%d?a=1&b=%%20 " % index) and body.endswith(b"|hello"), body
            assert b"host=127.0.0.1:%d" % port in body and b"x-k=v" in body and b"content-length=5" in body
        # An interim 100 Continue (uvicorn sends one when asked to) is not the answer.
        response = await client.send("PUT", base, "/continue", [(b"expect", b"100-continue")], b"body")
        assert response.status_code == 201 and (await response.aread()).endswith(b"|body")
        response = await client.send("GET", base, "/get", [], b"")
        assert b"content-length" not in await response.aread()  # a GET without a body says nothing of one
        # HEAD: headers only, and the pool goes on working after it.
        head = await client.send("HEAD", base, "/head", [], b"")
        assert head.status_code == 201 and head.header(b"content-length") is not None
        assert await head.aread() == b""
        again = await client.send("GET", base, "/after-head", [], b"")
        assert (await again.aread()).startswith(b"GET /after-head")
        # A streamed request body goes chunked; a large streamed answer comes back whole.
        echoed = await client.send("POST", base, "/upload", [], _chunks())
        assert (await echoed.aread()).endswith(b"|" + BIG)
        big = await client.send("GET", base, "/big", [], b"")
        assert big.header(b"content-length") is None
        assert b"".join([chunk async for chunk in big.aiter_raw()]) == BIG
        await client.aclose()
    # One connection for the requests in a row, one more after the HEAD (not reused).
    assert len(set(upstream.client_ports)) == 2, upstream.client_ports


async def test_failures_are_the_httpx_errors_the_forwarder_maps() -> None:
    upstream = Upstream()
    client = PooledClient(connect_timeout=1, read_timeout=0.3)
    with pytest.raises(httpx.ConnectError):  # nothing listens: 503, retried whatever the method
        await client.send("POST", f"http://127.0.0.1:{free_port()}", "/", [], b"x")
    async with serving(upstream) as port:
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(httpx.ReadTimeout):  # 504
            await client.send("GET", base, "/slow", [], b"")
        broken = await client.send("GET", base, "/broken", [], b"")
        with pytest.raises(httpx.ReadError):  # 502
            await broken.aread()
        # Neither failure's connection is reused: the next request is answered in full.
        response = await client.send("GET", base, "/fine", [], b"")
        assert (await response.aread()).startswith(b"GET /fine")
        # An answer given up half-way closes its connection instead of returning it.
        big = await client.send("GET", base, "/big", [], b"")
        await big.aclose()
        response = await client.send("GET", base, "/fine", [], b"")
        assert (await response.aread()).startswith(b"GET /fine")
    await client.aclose()


async def test_the_gateway_forwards_over_tcp_with_its_pooled_client(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    admin = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
    async with LifespanManager(create_registry(registry_settings), **LIFESPAN_TIMEOUTS) as registry:
        async with serving(registry.app) as port:
            settings = gateway_settings.model_copy(
                update={"registry_url": f"http://127.0.0.1:{port}", "matching_url": f"http://127.0.0.1:{free_port()}"}
            )
            gateway = create_gateway(settings)  # no http_mounts: the pooled client, over TCP
            async with (
                LifespanManager(gateway, **LIFESPAN_TIMEOUTS) as running,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=running.app), base_url="http://gw") as client,
            ):
                trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                created = await client.post(
                    "/v1/agencies",
                    json={"name": "Ministerio", "country": "EC"},
                    headers=admin | {"traceparent": trace, "X-Request-ID": "req-22"},
                )
                assert created.status_code == 201, created.text
                assert created.headers["x-request-id"] == "req-22"
                assert created.headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
                agency = created.json()
                for _ in range(3):
                    read = await client.get(f"/v1/agencies/{agency['id']}", headers=admin)
                    assert read.status_code == 200 and read.json() == agency
                    assert "ETag" in read.headers and read.headers["content-type"] == "application/json"
                listed = await client.get("/v1/agencies", params={"limit": 1}, headers=admin)
                assert [a["id"] for a in listed.json()["items"]] == [agency["id"]]
                # Matching is not running: connection refused is a 503 problem, never a 500.
                assert_problem(await client.get("/v1/shortlists/x", headers=admin), 503)


def test_no_route_of_the_gateway_is_under_a_services_prefix(gateway_settings: GatewaySettings) -> None:
    # The services' paths are routed before the gateway's own routes (``ROUTED_FIRST``):
    # right only while no route of the gateway's own is under a service's prefix.
    routes = create_gateway(gateway_settings).routes
    assert routes[0] is ROUTED_FIRST and routes[-1] is FORWARDED_ROUTE
    # A template's fixed part: "/v1/api-keys/{key_id}" is under "/v1/api-keys/".
    own = [path for path in route_paths(routes[1:-1]) if route_for(path.partition("{")[0]) is not None]
    assert own == ["/dashboard{path:path}"]  # reporting's, forwarded by a route of its own (sign-in)
