"""Webhook delivery metrics, in the events service's Prometheus registry.

``webhook_attempts_total{service, result}`` counts attempts by result (``2xx``,
``3xx``, ``4xx``, ``5xx``, ``error`` for timeouts, refused connections and the SSRF
guard); ``webhook_attempt_duration_seconds`` their latency; and, read at each scrape,
``webhook_deliveries_pending`` (queued or waiting for a retry) and
``webhook_endpoints_disabled``.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlmodel import col

from services.common.metrics import ServiceMetrics
from services.events.webhooks.tables import PENDING, WebhookDelivery, WebhookEndpoint


class WebhookMetrics:
    def __init__(self, metrics: ServiceMetrics) -> None:
        self.service = metrics.service
        self.attempts = Counter(
            "webhook_attempts_total",
            "Webhook delivery attempts by result: 2xx, 3xx, 4xx, 5xx or error (no answer).",
            ["service", "result"],
            registry=metrics.registry,
        )
        self.duration = Histogram(
            "webhook_attempt_duration_seconds",
            "Time from sending a webhook to its answer (or failure).",
            ["service"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
            registry=metrics.registry,
        )
        self.pending = Gauge(
            "webhook_deliveries_pending",
            "Webhook deliveries queued or waiting for a retry.",
            ["service"],
            registry=metrics.registry,
        )
        self.disabled = Gauge(
            "webhook_endpoints_disabled",
            "Webhook endpoints disabled (by their owner, a 410 or persistent failure).",
            ["service"],
            registry=metrics.registry,
        )

    def observe(self, status_code: int | None, latency_ms: float) -> None:
        result = "error" if status_code is None else f"{status_code // 100}xx"
        self.attempts.labels(self.service, result).inc()
        self.duration.labels(self.service).observe(latency_ms / 1000)


def webhook_metrics(app: FastAPI) -> WebhookMetrics:
    """The app's webhook metrics, with the queue gauges read at each scrape."""
    metrics = WebhookMetrics(app.state.metrics)

    async def refresh() -> None:
        async with app.state.read_sessionmaker() as session:
            pending = await session.scalar(
                select(func.count()).select_from(WebhookDelivery).where(col(WebhookDelivery.status) == PENDING)
            )
            disabled = await session.scalar(
                select(func.count()).select_from(WebhookEndpoint).where(~col(WebhookEndpoint.enabled))
            )
        metrics.pending.labels(metrics.service).set(pending or 0)
        metrics.disabled.labels(metrics.service).set(disabled or 0)

    app.state.metrics.on_scrape("webhooks", refresh)
    return metrics
