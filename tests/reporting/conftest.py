"""Fixtures of the reporting tests: the whole platform in one process, and a known dataset."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.settings import GatewaySettings
from services.matching.settings import MatchingSettings
from services.registry.settings import RegistrySettings
from services.reporting.settings import ReportingSettings
from tests.reporting.dataset import Dataset, caught_up
from tests.support import Stack


@pytest.fixture
async def reporting_platform(
    registry_settings: RegistrySettings,
    gateway_settings: GatewaySettings,
    matching_settings: MatchingSettings,
    reporting_settings: ReportingSettings,
) -> AsyncIterator[Stack]:
    """Gateway, registry, matching and reporting in one process."""
    async with Stack.start(
        registry_settings, gateway_settings, matching_settings=matching_settings, reporting_settings=reporting_settings
    ) as stack:
        yield stack


@pytest.fixture
async def dataset(reporting_platform: Stack) -> Dataset:
    """The dataset of ``dataset.py``, applied by the reporting service."""
    data = await Dataset(reporting_platform).build()
    await caught_up(reporting_platform)
    return data
