"""Token-bucket rate limits per API key: in memory, or in Redis for several replicas.

Each key has a bucket of ``burst`` tokens refilled at ``per_minute / 60`` tokens per
second; a request takes one. Responses carry the IETF ``RateLimit-Policy`` and
``RateLimit`` headers; a refused request gets 429 with ``Retry-After``.

Failed key checks (401) have buckets of their own, per client address: a client
that keeps presenting no key or wrong keys gets 429 once its bucket is empty, while
valid keys from the same address are served as usual.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request

from services.common.errors import TooManyRequests


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float  # seconds until one token is available (0 when allowed)
    reset: float  # seconds until the bucket is full again

    def headers(self, limiter: RateLimiter) -> dict[str, str]:
        values = {
            "RateLimit-Policy": f'"default";q={limiter.per_minute};w=60;burst={limiter.burst}',
            "RateLimit": f'"default";r={self.remaining};t={math.ceil(self.reset)}',
        }
        if not self.allowed:
            values["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return values


class RateLimiter(Protocol):
    per_minute: int
    burst: int

    async def take(self, key: str) -> Decision: ...


def _decide(tokens: float, rate: float, burst: int) -> Decision:
    if tokens >= 1:
        left = tokens - 1
        return Decision(True, int(left), 0.0, (burst - left) / rate)
    return Decision(False, 0, (1 - tokens) / rate, (burst - tokens) / rate)


class MemoryRateLimiter:
    """One process's buckets: right for a single gateway replica."""

    def __init__(self, per_minute: int, burst: int, max_buckets: int = 100_000) -> None:
        self.per_minute, self.burst = per_minute, burst
        self.rate = per_minute / 60.0
        self.max_buckets = max_buckets
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    async def take(self, key: str) -> Decision:
        now = time.monotonic()
        if len(self._buckets) >= self.max_buckets:  # client addresses are many: forget the full buckets
            self._buckets = {k: v for k, v in self._buckets.items() if v[0] + (now - v[1]) * self.rate < self.burst}
            if len(self._buckets) >= self.max_buckets:  # none full: start afresh rather than scan on every request
                self._buckets.clear()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        decision = _decide(tokens, self.rate, self.burst)
        self._buckets[key] = (tokens - 1 if decision.allowed else tokens, now)
        return decision


# Refill and take atomically in Redis, on Redis's clock, so replicas agree.
_TAKE_SCRIPT = """
local bucket = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', bucket, 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', bucket, math.ceil(burst / rate) + 60)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every gateway replica that uses the same Redis."""

    def __init__(self, redis: Any, per_minute: int, burst: int, namespace: str = "linkages:ratelimit:") -> None:
        self.redis = redis
        self.per_minute, self.burst = per_minute, burst
        self.rate = per_minute / 60.0
        self.namespace = namespace
        self._script = redis.register_script(_TAKE_SCRIPT)

    async def take(self, key: str) -> Decision:
        allowed, tokens_text = await self._script(keys=[self.namespace + key], args=[self.rate, self.burst])
        tokens = float(tokens_text)
        if int(allowed):
            return Decision(True, int(tokens), 0.0, (self.burst - tokens) / self.rate)
        return Decision(False, 0, (1 - tokens) / self.rate, (self.burst - tokens) / self.rate)


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy, uvicorn's
    ``FORWARDED_ALLOW_IPS`` makes it the address the proxy forwards)."""
    return request.client.host if request.client else "unknown"


async def count_failed_key_check(request: Request) -> None:
    """Take a token from the client address's bucket of failed key checks: 429 once it is empty."""
    limiter: RateLimiter = request.app.state.auth_failure_limiter
    decision = await limiter.take(client_address(request))
    if not decision.allowed:
        raise TooManyRequests(
            "Too many requests without a valid API key from this address",
            headers={"Retry-After": str(max(1, math.ceil(decision.retry_after)))},
        )
