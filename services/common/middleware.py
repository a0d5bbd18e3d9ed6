"""Pure-ASGI middleware every service and the gateway install.

``RequestContextMiddleware`` gives each request an id (``X-Request-ID``, generated
when absent or unsafe), binds it to every log line, returns it, records Prometheus
metrics per route and writes one access log line. ``BodySizeLimitMiddleware``
answers 413 before a handler reads more than the configured number of bytes.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.metrics import ServiceMetrics

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
logger = structlog.get_logger("access")


def body_limit(path: str, max_bytes: int, path_limits: Mapping[str, int] | None = None) -> int:
    """The body size limit of ``path``: that of the longest prefix in ``path_limits``
    holding it (so "/v1/imports" wins over "/v1"), else ``max_bytes``."""
    limits = path_limits or {}
    holding = [prefix for prefix in limits if path == prefix or path.startswith(prefix.rstrip("/") + "/")]
    return limits[max(holding, key=len)] if holding else max_bytes


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, service: str) -> None:
        self.app = app
        self.metrics = metrics
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER.encode())
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        # A state dict of this request's own: a server may hand every request the same
        # lifespan-state dict (asgi_lifespan does), and concurrent requests would then
        # overwrite each other's request id and principal in it.
        scope["state"] = {**scope.get("state", {}), "request_id": request_id}
        structlog.contextvars.bind_contextvars(request_id=request_id, service=self.service)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID_HEADER.encode()]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], template, status, elapsed)
            if template not in ("/metrics", "/livez", "/healthz", "/readyz"):
                logger.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id", "service")


class BodySizeLimitMiddleware:
    """413 past ``max_bytes``; ``path_limits`` give path prefixes their own limit (uploads).

    The limit that applied is left in ``scope["state"]["body_limit"]`` for the problem app.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, problem_app: ASGIApp, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.problem_app = problem_app  # renders the 413 problem
        self.path_limits = dict(path_limits or {})

    def limit_for(self, path: str) -> int:
        return body_limit(path, self.max_bytes, self.path_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope["path"])
        scope.setdefault("state", {})["body_limit"] = max_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self.problem_app(scope, receive, send)
            return
        received = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                # The app may catch the failed read and answer it (FastAPI turns any body
                # error into a 400): drop that answer, the 413 below replaces it.
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if started:
                raise
        if too_large and not started:
            await self.problem_app(scope, receive, send)


class _BodyTooLarge(Exception):
    pass
