"""Prometheus metrics: one registry per app, so several apps share a test process.

Values that live in a database (the change feed's last sequence number) are read
when Prometheus scrapes: ``on_scrape`` hooks run before ``/metrics`` renders, each
under a short timeout, and a failing hook leaves its metric at its last value rather
than failing the scrape (``up`` must keep meaning "the process answers").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ScrapeHook", "ServiceMetrics"]

ScrapeHook = Callable[[], Awaitable[None]]
SCRAPE_HOOK_TIMEOUT_SECONDS = 2.0
logger = structlog.get_logger(__name__)


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["service", "method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.service = service
        self._scrape_hooks: dict[str, ScrapeHook] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(self.service, method, route, str(status)).inc()
        self.latency.labels(self.service, method, route).observe(seconds)

    def on_scrape(self, name: str, hook: ScrapeHook) -> None:
        """Run ``hook`` before each scrape; registering ``name`` again replaces it."""
        self._scrape_hooks[name] = hook

    async def refresh(self) -> None:
        """Run the scrape hooks (concurrently, each with a timeout)."""
        names = list(self._scrape_hooks)
        results = await asyncio.gather(
            *(asyncio.wait_for(self._scrape_hooks[name](), SCRAPE_HOOK_TIMEOUT_SECONDS) for name in names),
            return_exceptions=True,
        )
        for name, result in zip(names, results, strict=True):
            if isinstance(result, Exception):
                logger.warning("metrics_hook_failed", hook=name, error=f"{type(result).__name__}: {result}")
            elif isinstance(result, BaseException):
                raise result

    def render(self) -> bytes:
        return generate_latest(self.registry)
