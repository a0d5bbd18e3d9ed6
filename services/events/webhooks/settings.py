"""Webhook delivery settings: the part of the events service's settings (``EVENTS_WEBHOOK_*``)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from services.common.settings import CommaSeparated, ServiceSettings

DEFAULT_RETRY_SCHEDULE = "5s,5m,30m,2h,5h,10h,14h,20h,24h"  # about three days, as Standard Webhooks suggests
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"5s,5m,2h"`` as seconds; ValueError naming the bad step."""
    delays: list[float] = []
    for step in (part.strip() for part in text.split(",")):
        found = _DURATION.match(step)
        if found is None:
            raise ValueError(f"'{step}' is not a duration such as 5s, 30m or 2h")
        delays.append(float(found.group(1)) * _UNITS[found.group(2)])
    return tuple(delays)


class WebhookSettings(ServiceSettings):
    """What webhook delivery needs; ``EventsSettings`` extends it (environment prefix ``EVENTS_``)."""

    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=60)
    webhook_retry_schedule: str = DEFAULT_RETRY_SCHEDULE
    webhook_retry_jitter: float = Field(default=0.1, ge=0, le=0.5)  # each delay varies by up to this share
    webhook_retry_after_max_seconds: float = Field(default=86400.0, ge=0)  # a longer Retry-After is cut to this
    webhook_disable_after_failures: int = Field(default=50, ge=1)  # failed attempts in a row, across events
    webhook_rotation_grace_seconds: int = Field(default=86400, ge=0, le=7 * 86400)
    webhook_secret_bytes: int = Field(default=32, ge=24, le=64)
    webhook_allowed_hosts: CommaSeparated = []  # host names, IPs or CIDRs the SSRF guard lets through
    webhook_workers: int = Field(default=8, ge=1, le=100)  # deliveries sent at once per process
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_batch_size: int = Field(default=100, ge=1, le=1000)
    webhook_enabled: bool = True  # run the fan-out and the delivery workers in this process
    # Settled deliveries (succeeded, or given up on) and their attempts are deleted this long after.
    webhook_log_retention_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @property
    def webhook_retry_delays(self) -> tuple[float, ...]:
        return parse_schedule(self.webhook_retry_schedule)
