"""The pooled HTTP client: one per process and upstream, with explicit timeouts."""

from __future__ import annotations

import httpx


def create_http_client(
    *,
    base_url: str = "",
    connect_timeout: float = 2.0,
    read_timeout: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
    mounts: dict[str, httpx.AsyncBaseTransport] | None = None,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    """Create in lifespan, close in lifespan; tests pass ``transport`` or ``mounts``.

    ``mounts`` route chosen base URLs to in-process apps in tests; when given without
    ``transport``, anything else is refused, so a test never reaches the network.
    """
    if mounts is not None and transport is None:
        transport = _RefuseTransport()
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections // 2),
        transport=transport,
        mounts=mounts,
    )


class _RefuseTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"no route to {request.url} in this process", request=request)
