"""The gateway: the platform's only public entry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import metrics_reader
from gateway.breaker import BreakerState, CircuitBreaker
from gateway.forward import FORWARDED_ROUTE, ROUTED_FIRST
from gateway.forward import router as forward_router
from gateway.keys.router import router as keys_router
from gateway.keys.service import KeyAuthenticator, install_bootstrap_key, install_metrics_key
from gateway.openapi import merge_documents
from gateway.paths import CanonicalPathMiddleware
from gateway.proxy import SPOOLED_UPLOADS, Forwarder, Upstream, UpstreamMetrics, route_for
from gateway.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from gateway.session import router as session_router
from gateway.settings import UPSTREAMS, GatewaySettings
from gateway.tables import metadata
from gateway.upstream import HttpxClient, PooledClient, UpstreamClient
from services.common.app import build_service_app, database_ready, open_database
from services.common.docs import add_docs
from services.common.http import create_http_client
from services.common.openapi import document_enforcement
from services.common.version import VERSION

MIGRATIONS = Path(__file__).parent / "migrations"
EXPOSED_HEADERS = [
    "X-Request-ID",
    "ETag",
    "Location",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "Idempotent-Replayed",
    "traceparent",
]
logger = structlog.get_logger(__name__)


class RateLimitHeadersMiddleware:
    """Adds the key's rate-limit state to every response of an authenticated request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra: dict[str, str] = scope.get("state", {}).get("rate_limit_headers") or {}
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in extra.items() if k.lower().encode() not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _upstream_check(name: str) -> Any:
    """Readiness of one upstream: its circuit is not open and its own ``/readyz`` answers 200."""

    async def check(app: FastAPI) -> None:
        upstream: Upstream = app.state.forwarder.upstreams[name]
        # Only looked at: allow() would take a half-open circuit's one trial request.
        if upstream.breaker.state is BreakerState.open:
            raise RuntimeError("circuit open")
        async with asyncio.timeout(2.0):
            response = await upstream.client.send("GET", upstream.base_url, "/readyz", [], b"")
            await response.aread()
        if response.status_code != 200:
            raise RuntimeError(f"readyz answered {response.status_code}")

    return check


def create_app(
    settings: GatewaySettings | None = None,
    *,
    http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None,
    rate_limiter: RateLimiter | None = None,
) -> FastAPI:
    """``http_mounts`` lets tests route upstream base URLs to in-process apps."""
    settings = settings or GatewaySettings()
    base_urls = {
        "registry": settings.registry_url,
        "matching": settings.matching_url,
        "reporting": settings.reporting_url,
        "events": settings.events_url,
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(open_database(app, settings, metadata))
            if settings.bootstrap_api_key is not None:
                await install_bootstrap_key(app.state.sessionmaker, settings.bootstrap_api_key.get_secret_value())
            if settings.metrics_api_key is not None:
                await install_metrics_key(app.state.sessionmaker, settings.metrics_api_key.get_secret_value())
            app.state.authenticator = KeyAuthenticator(app.state.sessionmaker, settings.key_cache_seconds)
            key_limiter, app.state.auth_failure_limiter = await _rate_limiters(settings, stack)
            app.state.rate_limiter = rate_limiter or key_limiter
            connect, read = settings.upstream_connect_timeout, settings.upstream_read_timeout
            # One pooled client for every service; tests route the services' URLs to
            # in-process apps through httpx instead (``gateway.upstream``).
            client: UpstreamClient = (
                PooledClient(connect_timeout=connect, read_timeout=read)
                if http_mounts is None
                else HttpxClient(create_http_client(connect_timeout=connect, read_timeout=read, mounts=http_mounts))
            )
            stack.push_async_callback(client.aclose)
            upstreams = {
                name: Upstream(
                    name,
                    base_urls[name],
                    client,
                    CircuitBreaker(settings.breaker_failure_threshold, settings.breaker_reset_seconds),
                )
                for name in UPSTREAMS
            }
            app.state.forwarder = Forwarder(
                upstreams=upstreams,
                principal_secret=settings.principal_secret.get_secret_value(),
                principal_ttl_seconds=settings.principal_ttl_seconds,
                retries=settings.upstream_retries,
                metrics=UpstreamMetrics(app.state.metrics.registry),
                deadline_seconds=settings.upstream_deadline_seconds,
                upload_deadline_seconds=settings.upload_deadline_seconds,
            )
            app.state.service_documents = {}
            yield

    app = build_service_app(
        settings,
        title="Linkages platform API",
        description="The platform's public API.",
        version=VERSION,
        lifespan=lifespan,
        routers=[keys_router, session_router, forward_router],
        # Not ready without a required service, nor with no service at all: either way a
        # probe must not send traffic here; the other services' states are reported.
        readiness={"database": database_ready} | {name: _upstream_check(name) for name in settings.required_upstreams},
        readiness_any_of={name: _upstream_check(name) for name in UPSTREAMS},
        openapi_url=None,
        body_limits={path: settings.max_upload_bytes for path in SPOOLED_UPLOADS},  # spooled uploads: their own limit
        metrics_dependencies=[Depends(metrics_reader)],  # the public port: only keys with metrics:read
    )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document(request: Request) -> JSONResponse:
        documents: dict[str, Any] = request.app.state.service_documents
        for name, upstream in request.app.state.forwarder.upstreams.items():
            if name not in documents:
                try:
                    async with asyncio.timeout(3.0):
                        response = await upstream.client.send("GET", upstream.base_url, "/openapi.json", [], b"")
                        content = await response.aread()
                    if response.status_code == 200:
                        documents[name] = json.loads(content)
                except (httpx.HTTPError, TimeoutError, ValueError) as exc:
                    logger.warning("openapi_fetch_failed", upstream=name, error=repr(exc))
        merged = merge_documents(app.openapi(), documents, title=app.title, version=VERSION)
        # What the gateway adds in front of every operation: keys, rate limits, upstream failures.
        behind_gateway = replace(app.state.enforcement, gateway=True, proxied=lambda path: route_for(path) is not None)
        document_enforcement(merged, behind_gateway)
        missing = sorted(set(UPSTREAMS) - set(documents))
        if missing:
            merged["info"]["x-unavailable-services"] = missing
        return JSONResponse(merged)

    add_docs(app, openapi_url="/openapi.json", title=app.title)

    app.router.routes.insert(0, ROUTED_FIRST)  # first: the services' paths, straight away
    app.router.routes.append(FORWARDED_ROUTE)  # last: every /v1/ path no route above serves
    # Innermost, so a refused path gets the request id and an access log line like any
    # answer; still before routing, so no route sees a path that is not canonical.
    app.user_middleware.append(Middleware(CanonicalPathMiddleware))
    app.add_middleware(RateLimitHeadersMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    # openapi() of the gateway's own routes only; services' paths are merged in above.
    app.openapi_schema = None
    return app


async def _rate_limiters(settings: GatewaySettings, stack: AsyncExitStack) -> tuple[RateLimiter, RateLimiter]:
    """Budgets per API key, and budgets of failed key checks per client address."""
    if not settings.redis_url:
        return (
            MemoryRateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
            MemoryRateLimiter(settings.auth_failures_per_minute, settings.auth_failures_burst),
        )
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    return (
        RedisRateLimiter(redis, settings.rate_limit_per_minute, settings.rate_limit_burst),
        RedisRateLimiter(
            redis, settings.auth_failures_per_minute, settings.auth_failures_burst, namespace="linkages:authfail:"
        ),
    )
