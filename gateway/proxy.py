"""Forwarding to the services: routing, principal signing, retries, circuit breaking.

Each upstream has one pooled httpx client with explicit connect and read
timeouts, and every forwarded request has one total deadline, connecting,
retries and waiting for the answer's headers included: past it the client gets
504. A request that never reached the upstream (connection refused) is
retried whatever its method; one that may have reached it is retried only when
repeating it is harmless (GET, HEAD, OPTIONS, PUT, DELETE, or a create with an
``Idempotency-Key``: see ``repeatable``). Failures that say the service is unhealthy open the
upstream's circuit breaker (``gateway.breaker`` says which count, and how no
single key can open it), after which requests fail fast with 503 until a trial
request succeeds.

Only canonical paths reach this module (``gateway.paths`` refuses the rest before
routing); they are routed by prefix to the service that documents them and sent
on re-encoded, so the service decodes exactly the path the gateway checked.

Answers stream through to the client, except small ones of known length
(``BUFFERED_BODY_BYTES``), which are read whole and sent on in one message: most
answers are small, and a stream costs the gateway a task per request.

Uploads (``SPOOLED_UPLOADS``, bulk imports of any size) are not read into memory:
their bodies are spooled to a temporary file as they arrive, under their own size
limit, and sent on from it once complete, so a refused or broken upload never
reaches the service half-sent and a failed attempt can be repeated.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from fastapi import Request
from prometheus_client import Counter, Histogram
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from gateway.breaker import CircuitBreaker
from gateway.upstream import Headers, UpstreamClient, UpstreamResponse
from services.common.errors import BadGateway, GatewayTimeout, NotFound, ServiceUnavailable
from services.common.principal import PRINCIPAL_HEADER, Principal, sign_principal

logger = structlog.get_logger(__name__)

# Public path prefixes and the service behind each. Anything else is not routed
# (the services' change feeds, health and metrics stay internal).
ROUTES: tuple[tuple[str, str], ...] = (
    ("/v1/agencies", "registry"),
    ("/v1/programmes", "registry"),
    ("/v1/clusters", "registry"),
    ("/v1/firms", "registry"),
    ("/v1/institutions", "registry"),
    ("/v1/brokers", "registry"),
    ("/v1/networks", "registry"),
    ("/v1/activities", "registry"),
    ("/v1/firm-results", "registry"),
    ("/v1/certification-schemes", "registry"),
    ("/v1/codes", "registry"),
    ("/v1/imports", "registry"),
    ("/v1/duplicates", "registry"),
    ("/v1/buyer-standards", "matching"),
    ("/v1/shortlists", "matching"),
    ("/v1/linkages", "matching"),
    ("/v1/requests", "matching"),
    ("/v1/invitations", "matching"),
    ("/v1/scorecards", "matching"),
    ("/v1/indicators", "reporting"),
    ("/v1/results", "reporting"),
    ("/v1/charts", "reporting"),
    ("/v1/exports", "reporting"),
    ("/dashboard", "reporting"),
    ("/v1/events", "events"),
    ("/v1/event-types", "events"),
    ("/v1/webhook-endpoints", "events"),
)
# POST paths whose bodies are files (bulk imports): spooled to disk, not held in memory.
SPOOLED_UPLOADS = frozenset({"/v1/imports"})
SPOOL_IN_MEMORY_BYTES = 1024 * 1024  # smaller uploads stay in memory
SPOOL_CHUNK_BYTES = 256 * 1024
# Answers up to this size with a Content-Length are read whole and sent on in one
# message; larger ones, and those without a length, stream through.
BUFFERED_BODY_BYTES = 256 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENT_METHODS = SAFE_METHODS | {"PUT", "DELETE"}
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",  # the gateway has the whole body: no service need wait for a 100 Continue
        "host",
        "content-length",
    }
)
# The caller's credentials stay here; the headers the gateway sets itself replace the caller's.
NOT_FORWARDED = HOP_BY_HOP | {
    "authorization",
    "x-api-key",
    PRINCIPAL_HEADER.lower(),
    "cookie",
    "x-request-id",
    "traceparent",
    "x-forwarded-for",
    "x-forwarded-proto",
}
_NOT_FORWARDED_RAW = frozenset(name.encode() for name in NOT_FORWARDED)
# The gateway's own server writes these on every answer; an upstream's copies would repeat them.
NOT_RETURNED = HOP_BY_HOP | {"date", "server"}
_NOT_RETURNED_RAW = frozenset(name.encode() for name in NOT_RETURNED)
_PRINCIPAL_RAW = PRINCIPAL_HEADER.lower().encode()
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


# Every prefix is one segment ("/dashboard") or "/v1/" and one segment: found by a dict
# lookup, not by trying each prefix (this runs on every request).
_ROUTE_OF_PREFIX = {prefix: (prefix, upstream) for prefix, upstream in ROUTES}
assert all(prefix.count("/") == (2 if prefix.startswith("/v1/") else 1) for prefix in _ROUTE_OF_PREFIX)


def route_for(path: str) -> tuple[str, str] | None:
    """(prefix, upstream name) serving ``path``, matching whole path segments."""
    segments = path.split("/", 3)  # "", "v1", "firms", the rest
    if len(segments) < 2:
        return None
    if segments[1] == "v1":
        return _ROUTE_OF_PREFIX.get("/v1/" + segments[2]) if len(segments) > 2 else None
    return _ROUTE_OF_PREFIX.get("/" + segments[1])


def required_scope(upstream: str, method: str) -> str:
    """The scope a key needs for ``method`` on a path ``upstream`` serves: reads, or writes."""
    return f"{upstream}:{'read' if method in SAFE_METHODS else 'write'}"


def upstream_path(request: Request) -> str:
    """The request's path as sent to the service: the decoded path the gateway checked
    and routed on, percent-encoded once, so the service decodes that same path."""
    return urllib.parse.quote(request.scope["path"], safe="/!$&'()*+,;=:@")


def repeatable(method: str, path: str, prefix: str, has_idempotency_key: bool) -> bool:
    """Whether sending a request again is harmless when the first may have reached the service.

    Creates (a POST to a collection) honour ``Idempotency-Key``: a repeat returns the
    first response. Actions such as a merge (``POST /v1/duplicates/{id}/merge``) and
    PATCHes do not, so the key does not make them safe to send twice.
    """
    return method in IDEMPOTENT_METHODS or (method == "POST" and path == prefix and has_idempotency_key)


def next_traceparent(incoming: str | None) -> str:
    """Continue the caller's W3C trace with a new span id, or start a trace."""
    match = _TRACEPARENT.match(incoming or "")
    trace_id = match.group(1) if match and match.group(1) != "0" * 32 else secrets.token_hex(16)
    flags = match.group(3) if match else "01"
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


class UpstreamMetrics:
    def __init__(self, registry: object) -> None:
        self.requests = Counter(
            "gateway_upstream_requests_total",
            "Requests forwarded, by upstream, route, method and outcome.",
            ["upstream", "route", "method", "status"],
            registry=registry,  # type: ignore[arg-type]
        )
        self.latency = Histogram(
            "gateway_upstream_duration_seconds",
            "Upstream latency by upstream and route.",
            ["upstream", "route"],
            registry=registry,  # type: ignore[arg-type]
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        # The labelled children, found once: ``labels()`` validates and hashes its
        # arguments on every call. Their number is bounded by routes x methods x statuses.
        self._counters: dict[tuple[str, str, str, str], Counter] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    def observe(self, upstream: str, route: str, method: str, outcome: str, seconds: float) -> None:
        key = (upstream, route, method, outcome)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.requests.labels(*key)
        counter.inc()
        histogram = self._histograms.get(key[:2])
        if histogram is None:
            histogram = self._histograms[key[:2]] = self.latency.labels(upstream, route)
        histogram.observe(seconds)


@dataclass
class Upstream:
    name: str
    base_url: str
    client: UpstreamClient
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)


@dataclass(frozen=True)
class UpstreamAnswer:
    """A whole answer the gateway asked for on its own account (``Forwarder.read``)."""

    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass
class Forwarder:
    upstreams: dict[str, Upstream]
    principal_secret: str
    principal_ttl_seconds: int
    retries: int
    metrics: UpstreamMetrics
    deadline_seconds: float = 10.0  # in total, retries included, until the response headers, whatever the transport
    upload_deadline_seconds: float = 900.0  # the same for a spooled upload, sending it included
    # Signed principal headers by principal, each with the time to sign it again.
    _signed: dict[Principal, tuple[bytes, float]] = field(default_factory=dict, repr=False)

    async def forward(self, request: Request, principal: Principal, prefix: str, upstream_name: str) -> Response:
        upstream = self.upstreams.get(upstream_name)
        if upstream is None:
            raise NotFound(f"No service is configured for {prefix}")
        if request.method == "POST" and request.url.path in SPOOLED_UPLOADS:
            async with _SpooledBody(request) as spooled:
                return await self._forward(request, principal, prefix, upstream, spooled)
        return await self._forward(request, principal, prefix, upstream, await request.body())

    async def read(self, upstream_name: str, path: str, principal: Principal, request_id: str) -> UpstreamAnswer:
        """A GET the gateway makes on its own account, as ``principal``, body read: the same
        signing, deadline, retries and circuit breaker as a forwarded request."""
        upstream = self.upstreams[upstream_name]
        headers = [(_PRINCIPAL_RAW, self.principal_header(principal)), (b"x-request-id", request_id.encode())]
        response = await self._send(upstream, "GET", path, headers, b"", True, principal.subject)
        try:
            content = await response.aread()
        except httpx.TransportError as exc:
            raise BadGateway(f"The {upstream.name} service failed: {type(exc).__name__}") from None
        finally:
            await response.aclose()
        return UpstreamAnswer(response.status_code, content)

    def principal_header(self, principal: Principal) -> bytes:
        """The signed principal header, signed again once half its lifetime has passed: every
        header sent has at least half of ``principal_ttl_seconds`` left, and signing (JSON,
        base64, HMAC: about 15 us) is done once per key and half-lifetime, not per request."""
        now = time.time()
        cached = self._signed.get(principal)
        if cached is not None and now < cached[1]:
            return cached[0]
        if len(self._signed) >= 10_000:  # principals are few; bound the cache all the same
            self._signed.clear()
        header = sign_principal(principal, self.principal_secret, ttl_seconds=self.principal_ttl_seconds, now=now)
        self._signed[principal] = (header.encode(), now + self.principal_ttl_seconds / 2)
        return header.encode()

    async def _forward(
        self, request: Request, principal: Principal, prefix: str, upstream: Upstream, body: bytes | _SpooledBody
    ) -> Response:
        scope = request.scope
        traceparent = b""
        headers: Headers = []
        for name, value in scope["headers"]:  # ASGI gives names in lower case
            if name == b"traceparent":
                traceparent = traceparent or value  # the first, as the trace context spec reads it
            elif name not in _NOT_FORWARDED_RAW:
                headers.append((name, value))
        trace = next_traceparent(traceparent.decode("latin-1")).encode()
        client = scope.get("client")
        headers += (
            (_PRINCIPAL_RAW, self.principal_header(principal)),
            (b"x-request-id", request.state.request_id.encode()),
            (b"traceparent", trace),
            (b"x-forwarded-for", client[0].encode() if client else b""),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
        )
        method = scope["method"]
        target = upstream_path(request)
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        retryable = repeatable(method, scope["path"], prefix, any(n == b"idempotency-key" for n, _ in headers))
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self._send(upstream, method, target, headers, body, retryable, principal.subject)
            outcome = str(response.status_code)
        finally:
            self.metrics.observe(upstream.name, prefix, method, outcome, time.perf_counter() - started)
        raw_headers = [(k, v) for k, v in response.headers if k not in _NOT_RETURNED_RAW]
        raw_headers.append((b"traceparent", trace))
        length = response.header(b"content-length") or b""
        if length.isdigit() and int(length) <= BUFFERED_BODY_BYTES:
            return await _buffered(response, upstream.name, [*raw_headers, (b"content-length", length)])
        streamed = StreamingResponse(
            response.aiter_raw(), status_code=response.status_code, background=BackgroundTask(response.aclose)
        )
        streamed.raw_headers = raw_headers
        return streamed

    async def _send(
        self,
        upstream: Upstream,
        method: str,
        target: str,
        headers: Headers,
        body: bytes | _SpooledBody,
        retryable: bool,
        key: str,
    ) -> UpstreamResponse:
        attempt = 0
        failure: Exception
        deadline = self.upload_deadline_seconds if isinstance(body, _SpooledBody) else self.deadline_seconds
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + deadline
        while True:
            if not upstream.breaker.allow():
                raise ServiceUnavailable(
                    f"The {upstream.name} service is unavailable; retry later",
                    headers={"Retry-After": str(max(1, round(upstream.breaker.retry_after())))},
                )
            content = body.chunks() if isinstance(body, _SpooledBody) else body
            try:
                async with asyncio.timeout_at(deadline_at):
                    response = await upstream.client.send(method, upstream.base_url, target, headers, content)
            except TimeoutError:
                failure = httpx.ReadTimeout(f"no answer within {deadline} s")
                may_retry = False  # the request's whole time is spent
            except httpx.ConnectError as exc:
                failure = exc
                may_retry = True  # the request never reached the service
            except httpx.TimeoutException as exc:
                failure, may_retry = exc, retryable and not isinstance(exc, httpx.PoolTimeout)
            except httpx.TransportError as exc:
                failure, may_retry = exc, retryable
            else:
                if response.status_code in (502, 503, 504):
                    upstream.breaker.record_failure(key)  # the service says it is unhealthy
                else:
                    upstream.breaker.record_success()  # it answered: up, even if this request crashed it
                if response.status_code == 500:
                    # The service crashed on this request: a gateway never answers 500 itself.
                    await response.aclose()
                    raise BadGateway(f"The {upstream.name} service failed on this request")
                return response
            # Unreachable counts whoever asked; a failure after reaching it, once per key.
            unreachable = isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout)
            upstream.breaker.record_failure(None if unreachable else key)
            logger.warning("upstream_failed", upstream=upstream.name, attempt=attempt, error=repr(failure))
            backoff = 0.05 * 2 ** (attempt + 1)
            if not may_retry or attempt >= self.retries or loop.time() + backoff >= deadline_at:
                raise _problem_for(upstream.name, failure) from None
            attempt += 1
            await asyncio.sleep(backoff)


async def _buffered(response: UpstreamResponse, name: str, raw_headers: list[tuple[bytes, bytes]]) -> Response:
    """A small answer of known length, read whole and sent on as one message.

    Cheaper than streaming it (no task watching for the client's disconnect, one
    send), and an upstream that breaks off mid-body is a 502 rather than a cut answer.
    """
    try:
        body = await response.aread()
    except httpx.TransportError as exc:
        raise BadGateway(f"The {name} service failed: {type(exc).__name__}") from None
    finally:
        await response.aclose()
    buffered = Response(body, status_code=response.status_code)
    buffered.raw_headers = raw_headers  # the upstream's Content-Length: the raw body's, or a HEAD's
    return buffered


class _SpooledBody:
    """A request body written to a temporary file as it arrives, then read from it per attempt.

    The body size limit (``BodySizeLimitMiddleware``) applies while it is spooled, so
    an upload past it is refused with 413 before the service sees a byte.
    """

    def __init__(self, request: Request) -> None:
        self.request = request
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 (closed in __aexit__)

    async def __aenter__(self) -> _SpooledBody:
        try:
            async for chunk in self.request.stream():
                await asyncio.to_thread(self.file.write, chunk)
        except BaseException:  # past the size limit, or the client went away
            self.file.close()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        self.file.close()

    async def chunks(self) -> AsyncIterator[bytes]:
        await asyncio.to_thread(self.file.seek, 0)
        while chunk := await asyncio.to_thread(self.file.read, SPOOL_CHUNK_BYTES):
            yield chunk


def _problem_for(name: str, failure: Exception) -> Exception:
    if isinstance(failure, httpx.ConnectTimeout | httpx.ConnectError):
        return ServiceUnavailable(f"The {name} service cannot be reached")
    if isinstance(failure, httpx.TimeoutException):
        return GatewayTimeout(f"The {name} service did not answer in time")
    return BadGateway(f"The {name} service failed: {type(failure).__name__}")
