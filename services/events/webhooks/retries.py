"""When a failed delivery is tried again: the schedule, jitter and ``Retry-After``."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

SLOW_DOWN_STATUSES = frozenset({429, 502, 503, 504})  # their Retry-After is honoured


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header in seconds: delay-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def next_delay(
    delays: tuple[float, ...],
    failures: int,
    *,
    jitter: float,
    retry_after: float | None = None,
    retry_after_max: float = 86400.0,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after the ``failures``-th failed one; None when the schedule is spent.

    The first attempt is immediate; the n-th failure waits ``delays[n-1]``, varied by up
    to ``jitter`` either way (so endpoints that failed together do not retry together).
    A ``Retry-After`` the receiver sent replaces the step when it asks for longer, up to
    ``retry_after_max``.
    """
    if failures > len(delays):
        return None
    delay = delays[failures - 1]
    if jitter:
        delay *= 1 + (rng or random).uniform(-jitter, jitter)
    if retry_after is not None:
        delay = max(delay, min(retry_after, retry_after_max))
    return delay
