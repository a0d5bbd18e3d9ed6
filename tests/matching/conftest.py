"""Fixtures of the matching tests."""

from __future__ import annotations

import pytest

from tests.matching.helpers import Market
from tests.support import Stack


@pytest.fixture
async def market(platform: Stack) -> Market:
    """An agency's cluster of four suppliers with keys, and two lead firms (see ``Market``)."""
    return await Market(platform).setup()
