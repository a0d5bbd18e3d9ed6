"""``python -m services.registry serve|migrate|revision|demo|duplicates``."""

from __future__ import annotations

from services.common.cli import run_cli
from services.registry.app import MIGRATIONS
from services.registry.demo import load_demo_command
from services.registry.settings import RegistrySettings

if __name__ == "__main__":
    run_cli(
        name="registry",
        settings_factory=RegistrySettings,
        app_path="services.registry.app:create_app",
        migrations=MIGRATIONS,
        extra={"demo": ("load demo data", load_demo_command)},
        workers={
            "duplicates": (
                "run the duplicate check alone (this process's partition), serving health and metrics",
                "services.registry.app:create_duplicates_app",
            )
        },
    )
