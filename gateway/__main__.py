"""``python -m gateway serve|migrate|revision|principal``."""

from __future__ import annotations

from gateway.app import MIGRATIONS
from gateway.settings import GatewaySettings
from services.common.cli import run_cli

if __name__ == "__main__":
    run_cli(name="gateway", settings_factory=GatewaySettings, app_path="gateway.app:create_app", migrations=MIGRATIONS)
