"""``python -m services.events serve|migrate|revision|principal``."""

from __future__ import annotations

from services.common.cli import run_cli
from services.events.app import MIGRATIONS
from services.events.settings import EventsSettings

if __name__ == "__main__":
    run_cli(
        name="events",
        settings_factory=EventsSettings,
        app_path="services.events.app:create_app",
        migrations=MIGRATIONS,
    )
