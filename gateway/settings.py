"""Gateway settings (environment prefix ``GATEWAY_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from services.common.settings import CommaSeparated, ServiceSettings, service_config

UPSTREAMS = ("registry", "matching", "reporting", "events")


class GatewaySettings(ServiceSettings):
    model_config = service_config("GATEWAY_")

    service_name: str = "gateway"
    port: int = 8000
    registry_url: str = "http://127.0.0.1:8001"
    matching_url: str = "http://127.0.0.1:8002"
    reporting_url: str = "http://127.0.0.1:8003"
    events_url: str = "http://127.0.0.1:8004"
    required_upstreams: CommaSeparated = Field(
        default=["registry", "matching"],
        description="Services without which /readyz answers 503 (comma-separated; empty: any one service "
        "suffices). The others are reported, and the gateway is never ready with none of them.",
    )
    bootstrap_api_key: SecretStr | None = Field(
        default=None, description="An admin API key accepted from start-up (create the others with it)."
    )
    metrics_api_key: SecretStr | None = Field(
        default=None, description="A key accepted from start-up that may only read /metrics (give it to Prometheus)."
    )
    redis_url: str | None = Field(default=None, description="Shares rate-limit budgets between gateway replicas.")
    rate_limit_per_minute: int = 600
    rate_limit_burst: int = 120
    auth_failures_per_minute: int = Field(
        default=30, gt=0, description="Requests without a valid key (401) per client address and minute..."
    )
    auth_failures_burst: int = Field(default=20, gt=0, description="...and in a row; past them, 429.")
    cors_origins: list[str] = []
    upstream_connect_timeout: float = 2.0
    upstream_read_timeout: float = 15.0
    upstream_retries: int = 2
    upstream_deadline_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Total time a forwarded request may take until the service's answer starts"
        " (connecting, retries and waiting included); past it the client gets 504.",
    )
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 10.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = Field(
        default=1024 * 1024 * 1024,
        description="Limit of an upload (POST /v1/imports), spooled to a temporary file; as the registry's.",
    )
    upload_deadline_seconds: float = Field(
        default=900.0, description="Time to send a spooled upload to the service and get its answer."
    )
    principal_ttl_seconds: int = 60
    key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=5,
        description="How long a verified API key is trusted without reading the database again: a key revoked"
        " through another gateway replica is refused by this one within this bound (at once through this one).",
    )
    session_ttl_seconds: int = Field(
        default=8 * 3600, description="How long a browser stays signed in to the dashboard (/login)."
    )

    @field_validator("required_upstreams")
    @classmethod
    def _known_upstreams(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(UPSTREAMS))
        if unknown:
            raise ValueError(f"unknown services {unknown}; known: {', '.join(UPSTREAMS)}")
        return value
