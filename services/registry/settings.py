"""Registry service settings (environment prefix ``REGISTRY_``)."""

from __future__ import annotations

from services.common.settings import ServiceSettings, service_config


class RegistrySettings(ServiceSettings):
    model_config = service_config("REGISTRY_")

    service_name: str = "registry"
    port: int = 8001
