"""``python -m services.matching serve|migrate|revision|principal|demo``."""

from __future__ import annotations

from services.common.cli import run_cli
from services.matching.app import MIGRATIONS
from services.matching.demo import demo_arguments, load_demo_command
from services.matching.settings import MatchingSettings

if __name__ == "__main__":
    run_cli(
        name="matching",
        settings_factory=MatchingSettings,
        app_path="services.matching.app:create_app",
        migrations=MIGRATIONS,
        extra={"demo": ("load demo requests, answers, awards and scorecards through the gateway", load_demo_command)},
        extra_arguments={"demo": demo_arguments},
    )
