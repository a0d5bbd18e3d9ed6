"""Fixtures of the reporting tests: a known dataset, on the whole platform in one process."""

from __future__ import annotations

import pytest

from tests.reporting.dataset import Dataset, caught_up
from tests.support import Stack


@pytest.fixture
async def dataset(whole_platform: Stack) -> Dataset:
    """The dataset of ``dataset.py``, applied by the reporting service."""
    data = await Dataset(whole_platform).build()
    await caught_up(whole_platform)
    return data
