"""Fixtures of the reporting tests: a known dataset, on the whole platform in one process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS
from services.matching.app import MIGRATIONS as MATCHING_MIGRATIONS
from services.registry.app import MIGRATIONS as REGISTRY_MIGRATIONS
from services.reporting.app import MIGRATIONS as REPORTING_MIGRATIONS
from tests.reporting.dataset import Dataset, caught_up
from tests.support import (
    Backend,
    Stack,
    gateway_settings_for,
    matching_settings_for,
    registry_settings_for,
    reporting_settings_for,
)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgres"])
async def dataset(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dataset]:
    """The dataset of ``dataset.py``, applied by the reporting service: built once per test
    module and backend (about 5 s each), since the tests that use it only read it. Those
    modules run on the module's event loop (``pytest.mark.asyncio(loop_scope="module")``)."""
    backend: Backend = request.getfixturevalue(f"{request.param}_backend")
    data_dir = tmp_path_factory.mktemp("dataset")
    async with Stack.start(
        registry_settings_for(await backend.fresh(REGISTRY_MIGRATIONS), data_dir),
        gateway_settings_for(await backend.fresh(GATEWAY_MIGRATIONS), data_dir),
        matching_settings=matching_settings_for(await backend.fresh(MATCHING_MIGRATIONS), data_dir / "matching"),
        reporting_settings=reporting_settings_for(await backend.fresh(REPORTING_MIGRATIONS), data_dir / "reporting"),
    ) as platform:
        data = await Dataset(platform).build()
        await caught_up(platform)
        yield data
