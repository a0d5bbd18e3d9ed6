"""Reporting's filters refuse text past their bounds with a 422 naming the parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.common.principal import Role
from services.reporting.settings import ReportingSettings
from tests.support import assert_problem, principal_headers, running


def viewer() -> dict[str, str]:
    """A viewer's principal, signed now (a signature lives a minute: not at import)."""
    return principal_headers(Role.viewer)


@pytest.fixture
async def reporting(reporting_settings: ReportingSettings) -> AsyncIterator[httpx.AsyncClient]:
    from services.reporting.app import create_app

    async with running(create_app(reporting_settings, http_mounts={})) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/indicators?programme_id=prg%00", "programme_id"),
        ("/v1/indicators?cluster_id=clu%0A1", "cluster_id"),
        ("/v1/indicators?agency_id=%7F", "agency_id"),
        ("/v1/indicators/series?indicator=networks%00", "indicator.0"),
        ("/v1/indicators/clusters?limit=99999999999999999999", "limit"),
        ("/v1/indicators/clusters?cursor=%00", "cursor"),
        ("/v1/indicators?to=0", "to"),  # not 1970-01-01
        ("/v1/indicators/series?to=0001-01-01", "to"),  # its default start would be year 0: a 500
    ],
)
async def test_a_filter_out_of_bounds_is_refused(reporting: httpx.AsyncClient, path: str, field: str) -> None:
    response = await reporting.get(path, headers=viewer())
    assert_problem(response, 422, field=field)
