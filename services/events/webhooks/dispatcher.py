"""The webhook worker: fan out new events, claim due deliveries, send them, record the outcome.

Each process that runs the events service runs one dispatcher (``EVENTS_WEBHOOK_ENABLED``);
several replicas on one PostgreSQL database share the queue safely (``queue``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import httpx
import structlog
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.events.webhooks.metrics import WebhookMetrics
from services.events.webhooks.queue import (
    EXCERPT_BYTES,
    LEASE_MARGIN_SECONDS,
    CanRead,
    Job,
    Outcome,
    claim,
    fan_out,
    record,
)
from services.events.webhooks.retries import retry_after_seconds
from services.events.webhooks.settings import WebhookSettings
from services.events.webhooks.signing import signature_header
from services.events.webhooks.ssrf import GuardedTransport, UrlPolicy

logger = structlog.get_logger(__name__)
USER_AGENT = "linkages-webhooks/1"


def create_webhook_client(settings: WebhookSettings, policy: UrlPolicy) -> httpx.AsyncClient:
    """The one client deliveries go through: SSRF-guarded, no redirects, the delivery timeout."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy),
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,  # a 3xx is a failed attempt (Standard Webhooks)
        limits=httpx.Limits(
            max_connections=settings.webhook_workers * 2, max_keepalive_connections=settings.webhook_workers
        ),
        headers={"User-Agent": USER_AGENT},
    )


async def send(client: httpx.AsyncClient, job: Job, timeout: float) -> Outcome:
    """One attempt: sign, POST, read at most 1 kB of the answer, all within ``timeout`` seconds.

    httpx's timeouts bound each phase (connect, each read); ``timeout`` bounds the whole
    attempt, so a receiver that answers one byte at a time cannot hold it past its lease.
    """
    attempted_at = datetime.now(UTC)
    timestamp = int(attempted_at.timestamp())
    headers = {
        "content-type": "application/json",
        "webhook-id": job.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(job.secrets, job.message_id, timestamp, job.body),
    }
    started = time.perf_counter()
    try:
        async with (
            asyncio.timeout(timeout),
            client.stream("POST", job.url, content=job.body, headers=headers) as response,
        ):
            excerpt = bytearray()
            async for chunk in response.aiter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
            latency = (time.perf_counter() - started) * 1000
            return Outcome(
                attempted_at=attempted_at,
                latency_ms=latency,
                status_code=response.status_code,
                response_excerpt=bytes(excerpt[:EXCERPT_BYTES]).decode("utf-8", errors="replace") or None,
                retry_after=retry_after_seconds(response.headers.get("retry-after"), attempted_at),
                error=None if response.is_success else _status_error(response),
            )
    except (httpx.HTTPError, TimeoutError) as exc:
        latency = (time.perf_counter() - started) * 1000
        message = str(exc) or ("no answer within the timeout" if isinstance(exc, TimeoutError) else type(exc).__name__)
        return Outcome(attempted_at=attempted_at, latency_ms=latency, error=f"{type(exc).__name__}: {message}"[:1000])


def _status_error(response: httpx.Response) -> str:
    if response.is_redirect:
        return f"Redirects are not followed (HTTP {response.status_code} to {response.headers.get('location', '?')})"[
            :1000
        ]
    return f"HTTP {response.status_code}"


class WebhookDispatcher:
    """Runs fan-out and delivery in a background task of the events service."""

    def __init__(
        self,
        *,
        settings: WebhookSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient,
        events: Table,
        cursors: Table,
        can_read: CanRead,
        metrics: WebhookMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.client = client
        self.events = events
        self.cursors = cursors
        self.can_read = can_read
        self.metrics = metrics
        self.lease_seconds = settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Look for work now (a delivery was queued, or an event written)."""
        self._wake.set()

    async def fan_out_once(self) -> int:
        async with self.sessionmaker() as session, session.begin():
            return await fan_out(
                session, self.events, self.cursors, self.can_read, batch_size=self.settings.webhook_batch_size
            )

    async def deliver_once(self) -> int:
        """Claim and send one batch of due deliveries; how many were sent."""
        async with self.sessionmaker() as session, session.begin():
            jobs = await claim(session, limit=self.settings.webhook_workers, lease_seconds=self.lease_seconds)
        if jobs:
            await asyncio.gather(*(self._deliver(job) for job in jobs))
        return len(jobs)

    async def _deliver(self, job: Job) -> None:
        outcome = await send(self.client, job, self.settings.webhook_timeout_seconds)
        if self.metrics is not None:
            self.metrics.observe(outcome.status_code, outcome.latency_ms)
        async with self.sessionmaker() as session, session.begin():
            await record(session, job, outcome, self.settings)
        logger.info(
            "webhook_attempt",
            delivery_id=job.delivery_id,
            endpoint_id=job.endpoint_id,
            webhook_id=job.message_id,
            status_code=outcome.status_code,
            latency_ms=round(outcome.latency_ms, 1),
            error=outcome.error,
        )

    async def run(self) -> None:
        while not self._stopping:
            try:
                busy = await self.fan_out_once() > 0
                busy = await self.deliver_once() > 0 or busy
                self.last_error = None
            except Exception as exc:  # the loop outlives a database hiccup; readiness reports it
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("webhook_dispatcher_failed")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.webhook_poll_seconds)
                self._wake.clear()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Let the attempts in flight finish (up to the send timeout), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.lease_seconds)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
