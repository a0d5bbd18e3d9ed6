"""``python -m services.matching serve|migrate|revision|principal``."""

from __future__ import annotations

from services.common.cli import run_cli
from services.matching.app import MIGRATIONS
from services.matching.settings import MatchingSettings

if __name__ == "__main__":
    run_cli(
        name="matching",
        settings_factory=MatchingSettings,
        app_path="services.matching.app:create_app",
        migrations=MIGRATIONS,
    )
