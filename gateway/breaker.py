"""A circuit breaker per upstream: fail fast while a service is down."""

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
        self.failures = 0
        self._state = BreakerState.closed
        self._opened_at = 0.0
        self._trial_in_flight = False

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
        if state is BreakerState.half_open and not self._trial_in_flight:
            self._state = BreakerState.half_open
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self.failures = 0
        self._state = BreakerState.closed
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self.failures += 1
        self._trial_in_flight = False
        if self._state is BreakerState.half_open or self.failures >= self.failure_threshold:
            self._state = BreakerState.open
            self._opened_at = time.monotonic()
