"""A circuit breaker per upstream: fail fast while a service is down.

Only failures that say the service is unhealthy count, and no single API key can
open the breaker for everyone:

- the service could not be reached (connection refused, connect timeout): no
  request's content can cause that, so each such failure counts;
- the service was reached but failed (a read timeout, a broken response, an answer
  of 502, 503 or 504): the request itself may be the cause (a query the service
  cannot answer in time), so these count once per API key. With a threshold of
  N, they open the breaker only when N different keys failed in a row.

Any other answer, a 500 included (a crash on that one request), proves the service
is up: it closes the breaker and clears the count. Once open, the breaker lets one
trial request through after ``reset_seconds``; its failure, of either kind, opens
it again (the service was already judged unhealthy).
"""

from __future__ import annotations

import time
from enum import StrEnum


class BreakerState(StrEnum):
    closed = "closed"  # requests flow
    open = "open"  # requests fail fast until the reset time
    half_open = "half_open"  # one trial request decides


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, reset_seconds: float = 10.0) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._unreachable = 0  # connect failures since the last success
        self._failed_keys: set[str] = set()  # keys whose requests reached the service and failed since then
        self._state = BreakerState.closed
        self._opened_at = 0.0
        self._trial_started: float | None = None

    @property
    def failures(self) -> int:
        """The failures counted towards the threshold."""
        return self._unreachable + len(self._failed_keys)

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.open and time.monotonic() - self._opened_at >= self.reset_seconds:
            return BreakerState.half_open
        return self._state

    def retry_after(self) -> float:
        return max(0.0, self.reset_seconds - (time.monotonic() - self._opened_at))

    def allow(self) -> bool:
        state = self.state
        if state is BreakerState.closed:
            return True
        if state is BreakerState.half_open and not self._trial_in_flight():
            self._state = BreakerState.half_open
            self._trial_started = time.monotonic()
            return True
        return False

    def _trial_in_flight(self) -> bool:
        # A trial that never reports (its caller cancelled, or only probing) is given
        # up after reset_seconds, so it cannot keep the breaker from closing forever.
        return self._trial_started is not None and time.monotonic() - self._trial_started < self.reset_seconds

    def record_success(self) -> None:
        self._unreachable = 0
        self._failed_keys.clear()
        self._state = BreakerState.closed
        self._trial_started = None

    def record_failure(self, key: str | None = None) -> None:
        """Count a failure: ``key`` is the API key whose request reached the service and
        failed (counted once per key); ``None`` means the service could not be reached."""
        if key is None:
            self._unreachable += 1
        else:
            self._failed_keys.add(key)
        self._trial_started = None
        if self._state is BreakerState.half_open or self.failures >= self.failure_threshold:
            self._state = BreakerState.open
            self._opened_at = time.monotonic()
