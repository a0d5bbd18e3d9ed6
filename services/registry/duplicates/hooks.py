"""The duplicates domain's handlers of other domains' hooks, connected by the registry app."""

from __future__ import annotations

from services.registry.duplicates.service import firm_written
from services.registry.firms.hooks import firms_written


def connect_hooks() -> None:
    """Keep the detector's keys current, and detect duplicates, on every write of firms."""
    firms_written.connect(firm_written)
