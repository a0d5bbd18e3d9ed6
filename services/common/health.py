"""``/livez`` (process alive), ``/readyz`` (dependencies reachable) and ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from services.common.errors import PROBLEM_CONTENT_TYPE, ServiceUnavailable
from services.common.metrics import CONTENT_TYPE_LATEST, ServiceMetrics

ReadinessCheck = Callable[[FastAPI], Awaitable[None]]  # raises when not ready
CHECK_TIMEOUT_SECONDS = 2.0


async def _run_check(app: FastAPI, check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check(app), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return f"failed: {type(exc).__name__}: {exc}"[:300]
    return "ok"


def health_router(
    checks: Mapping[str, ReadinessCheck],
    any_of: Mapping[str, ReadinessCheck] | None = None,
    metrics_dependencies: Sequence[Any] = (),
) -> APIRouter:
    """Health routes. Ready when every one of ``checks`` passes and, when ``any_of``
    is given, at least one of those does (the gateway's upstreams: one service down
    leaves the others served, all of them down leaves nothing to serve).
    ``metrics_dependencies`` guard ``/metrics`` (the gateway's is on the public port)."""
    router = APIRouter(tags=["operations"])
    reported = {**checks, **(any_of or {})}

    @router.get("/livez", operation_id="read_liveness", summary="The process is alive")
    @router.get("/healthz", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", operation_id="read_readiness", summary="Dependencies are reachable and state is loaded")
    async def readyz(request: Request) -> JSONResponse:
        names = list(reported)
        results = await asyncio.gather(*(_run_check(request.app, reported[name]) for name in names))
        report = dict(zip(names, results, strict=True))
        failed = [name for name in checks if report[name] != "ok"]
        if any_of and all(report[name] != "ok" for name in any_of):
            failed.append("none of " + ", ".join(any_of))
        if not failed:
            return JSONResponse({"status": "ready", "checks": report})
        problem = ServiceUnavailable("Not ready: " + "; ".join(failed))
        body = {
            "type": problem.type,
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
            "request_id": getattr(request.state, "request_id", None),
            "checks": report,
        }
        return JSONResponse(body, status_code=503, media_type=PROBLEM_CONTENT_TYPE)

    @router.get(
        "/metrics", summary="Prometheus metrics", include_in_schema=False, dependencies=list(metrics_dependencies)
    )
    async def metrics(request: Request) -> Response:
        service_metrics: ServiceMetrics = request.app.state.metrics
        await service_metrics.refresh()
        return Response(service_metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
