"""``python -m services.reporting serve|migrate|revision|principal``."""

from __future__ import annotations

from services.common.cli import run_cli
from services.reporting.app import MIGRATIONS
from services.reporting.settings import ReportingSettings

if __name__ == "__main__":
    run_cli(
        name="reporting",
        settings_factory=ReportingSettings,
        app_path="services.reporting.app:create_app",
        migrations=MIGRATIONS,
    )
