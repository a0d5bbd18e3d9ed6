"""Token-bucket rate limits per API key: in memory, or in Redis for several replicas.

Each key has a bucket of ``burst`` tokens refilled at ``per_minute / 60`` tokens per
second; a request takes one. Responses carry the IETF ``RateLimit-Policy`` and
``RateLimit`` headers; a refused request gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol


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

    def __init__(self, per_minute: int, burst: int) -> None:
        self.per_minute, self.burst = per_minute, burst
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    async def take(self, key: str) -> Decision:
        now = time.monotonic()
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
