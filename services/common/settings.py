"""Settings base class: every service's settings extend it with its own env prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEVELOPMENT_PRINCIPAL_SECRET = "development-only-principal-secret-change-me"


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A list setting written in the environment as ``a,b,c`` (not as JSON).
CommaSeparated = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]


class ServiceSettings(BaseSettings):
    """Configuration every service shares.

    Subclasses set ``model_config = service_config("REGISTRY_")`` and a default
    ``port``. ``PRINCIPAL_SECRET`` and ``ENVIRONMENT`` are read without the service
    prefix as well, because every service of one deployment must agree on them.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "service"
    environment: Literal["development", "test", "production"] = Field(
        default="development",
        validation_alias=AliasChoices("environment", "ENVIRONMENT"),
    )
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Field(default=Path("data"), validation_alias=AliasChoices("data_dir", "DATA_DIR"))
    database_url: str = ""
    database_pool_size: int = 10
    database_echo: bool = False
    principal_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_PRINCIPAL_SECRET),
        validation_alias=AliasChoices("principal_secret", "PRINCIPAL_SECRET"),
    )
    principal_max_age_seconds: int = 300
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("log_level", "LOG_LEVEL"))
    log_json: bool = Field(default=True, validation_alias=AliasChoices("log_json", "LOG_JSON"))
    page_size_default: int = 50
    page_size_max: int = 200
    idempotency_ttl_hours: int = 24
    max_body_bytes: int = 1_048_576
    http_connect_timeout: float = 2.0
    http_read_timeout: float = 10.0

    @model_validator(mode="after")
    def _refuse_default_secret_outside_development(self) -> ServiceSettings:
        secret = self.principal_secret.get_secret_value()
        if self.environment == "production" and (secret == DEVELOPMENT_PRINCIPAL_SECRET or len(secret) < 32):
            raise ValueError("PRINCIPAL_SECRET must be set to a random value of at least 32 characters in production")
        return self

    @property
    def effective_database_url(self) -> str:
        """The SQLAlchemy async URL: the configured one, or SQLite under data_dir."""
        if self.database_url:
            return async_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.data_dir / (self.service_name + '.db')}"


def service_config(env_prefix: str) -> SettingsConfigDict:
    """The model_config of a service's settings class."""
    return SettingsConfigDict(env_prefix=env_prefix, extra="ignore", populate_by_name=True)


def async_database_url(url: str) -> str:
    """Map plain ``postgresql://`` and ``sqlite://`` URLs to their async drivers."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url
