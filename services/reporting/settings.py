"""Reporting service settings (environment prefix ``REPORTING_``)."""

from __future__ import annotations

from services.common.settings import ServiceSettings, service_config


class ReportingSettings(ServiceSettings):
    model_config = service_config("REPORTING_")

    service_name: str = "reporting"
    port: int = 8003
    registry_url: str = "http://127.0.0.1:8001"
    matching_url: str = "http://127.0.0.1:8002"
    feed_batch_size: int = 1000
    feed_wait_seconds: float = 10.0
    series_max_periods: int = 120
    dashboard_cluster_rows: int = 100
