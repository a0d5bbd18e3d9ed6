"""Matching service settings (environment prefix ``MATCHING_``)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import ServiceSettings, service_config
from services.matching.catalogue.consortia import FIGURES_BYTES


class MatchingSettings(ServiceSettings):
    model_config = service_config("MATCHING_")

    service_name: str = "matching"
    port: int = 8002
    registry_url: str = "http://127.0.0.1:8001"
    feed_batch_size: int = 1000
    feed_wait_seconds: float = 10.0
    delta_limit: int = 5000
    deadline_sweep_seconds: float = 30.0  # how often requests past their deadline are recorded closed
    certificate_expiry_days: int = Field(default=30, ge=1, le=3650)  # certificate_expiring this many days ahead
    certificate_sweep_seconds: float = Field(default=3600.0, gt=0)  # how often expiring certificates are looked for
    # Per-network figures consortium shortlists keep per catalogue view (count it against memory).
    consortium_figures_bytes: int = Field(default=FIGURES_BYTES, ge=0)
