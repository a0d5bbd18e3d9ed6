"""Fixtures: every database test runs on SQLite and, when configured, PostgreSQL.

Set ``TEST_POSTGRES_URL`` (an admin URL such as
``postgresql://postgres@127.0.0.1:5432/postgres``) to run the PostgreSQL half;
``.ci/run`` sets it and ``REQUIRE_POSTGRES=1``, which turns a missing URL into an
error instead of skipped tests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from _pytest.terminal import TerminalReporter
from fastapi import FastAPI

from gateway.settings import GatewaySettings
from services.events.settings import EventsSettings
from services.matching.settings import MatchingSettings
from services.registry.app import MIGRATIONS as REGISTRY_MIGRATIONS
from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from services.reporting.settings import ReportingSettings
from tests.support import (
    POSTGRES_ENV,
    Backend,
    Stack,
    events_settings_for,
    gateway_settings_for,
    matching_settings_for,
    registry_settings_for,
    reporting_settings_for,
    running,
)

# The slow tiers `make test-fast` leaves out, then the others; unmarked tests are "core".
TIERS = ("deploy", "browser", "bench", "fuzz", "redis")
OUTCOMES = ("passed", "failed", "error", "skipped")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag each test with its tier; reports carry ``user_properties`` (also from xdist workers)."""
    for item in items:
        tier = next((t for t in TIERS if item.get_closest_marker(t) is not None), "core")
        item.user_properties.append(("tier", tier))


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    """Say which tiers ran: per tier, how many tests passed, failed, errored or skipped."""
    counts: dict[str, dict[str, int]] = {tier: dict.fromkeys(OUTCOMES, 0) for tier in ("core", *TIERS)}
    for outcome in OUTCOMES:
        for report in terminalreporter.stats.get(outcome, []):
            # One count per test and outcome: a pass is its call; a skip or error is whichever phase it came from.
            if outcome == "passed" and getattr(report, "when", "call") != "call":
                continue
            tier = dict(getattr(report, "user_properties", [])).get("tier")
            if tier in counts:
                counts[tier][outcome] += 1
    if not any(n for by_outcome in counts.values() for n in by_outcome.values()):
        return  # nothing ran (--collect-only, or nothing selected)
    terminalreporter.section("test tiers")
    for tier, by_outcome in counts.items():
        ran = ", ".join(f"{n} {outcome}" for outcome, n in by_outcome.items() if n) or "not run"
        terminalreporter.write_line(f"{tier:>8}: {ran}")


@pytest.fixture(scope="session")
def sqlite_backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    return Backend("sqlite", tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgres_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {POSTGRES_ENV} is not set")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    backend = Backend("postgres", tmp_path_factory.mktemp("pg"), admin_url=url)
    yield backend
    backend.drop_all()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(f"{request.param}_backend")
    return backend


@pytest.fixture
async def registry_url(backend: Backend) -> str:
    return await backend.fresh(REGISTRY_MIGRATIONS)


@pytest.fixture
def registry_settings(registry_url: str, tmp_path: Path) -> RegistrySettings:
    return registry_settings_for(registry_url, tmp_path)


@pytest.fixture
async def registry(registry_settings: RegistrySettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_registry(registry_settings)) as client:
        yield client


# --- the gateway in front of the registry -------------------------------------------


@pytest.fixture
async def gateway_url(backend: Backend) -> str:
    from gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS

    return await backend.fresh(GATEWAY_MIGRATIONS)


@pytest.fixture
def gateway_settings(gateway_url: str, tmp_path: Path) -> GatewaySettings:
    return gateway_settings_for(gateway_url, tmp_path)


@pytest.fixture
async def stack(registry_settings: RegistrySettings, gateway_settings: GatewaySettings) -> AsyncIterator[Stack]:
    """Gateway and registry in one process; matching and reporting are not running."""
    async with Stack.start(registry_settings, gateway_settings) as running_stack:
        yield running_stack


# --- matching ------------------------------------------------------------------------


@pytest.fixture
async def matching_url(backend: Backend) -> str:
    from services.matching.app import MIGRATIONS as MATCHING_MIGRATIONS

    return await backend.fresh(MATCHING_MIGRATIONS)


@pytest.fixture
def matching_settings(matching_url: str, tmp_path: Path) -> MatchingSettings:
    return matching_settings_for(matching_url, tmp_path / "matching")


@pytest.fixture
async def platform(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings, matching_settings: MatchingSettings
) -> AsyncIterator[Stack]:
    """Gateway, registry and matching in one process."""
    async with Stack.start(registry_settings, gateway_settings, matching_settings=matching_settings) as stack:
        yield stack


@pytest.fixture
async def whole_platform(
    registry_settings: RegistrySettings,
    gateway_settings: GatewaySettings,
    matching_settings: MatchingSettings,
    reporting_settings: ReportingSettings,
    events_settings: EventsSettings,
) -> AsyncIterator[Stack]:
    """Gateway, registry, matching, reporting and events in one process."""
    async with Stack.start(
        registry_settings,
        gateway_settings,
        matching_settings=matching_settings,
        reporting_settings=reporting_settings,
        events_settings=events_settings,
    ) as stack:
        yield stack


# --- reporting -----------------------------------------------------------------------


@pytest.fixture
async def reporting_url(backend: Backend) -> str:
    from services.reporting.app import MIGRATIONS as REPORTING_MIGRATIONS

    return await backend.fresh(REPORTING_MIGRATIONS)


@pytest.fixture
def reporting_settings(reporting_url: str, tmp_path: Path) -> ReportingSettings:
    return reporting_settings_for(reporting_url, tmp_path / "reporting")


# --- events --------------------------------------------------------------------------


@pytest.fixture
async def events_url(backend: Backend) -> str:
    from services.events.app import MIGRATIONS as EVENTS_MIGRATIONS

    return await backend.fresh(EVENTS_MIGRATIONS)


@pytest.fixture
def events_settings(events_url: str, tmp_path: Path) -> EventsSettings:
    return events_settings_for(events_url, tmp_path / "events")


@pytest.fixture
def service_apps(
    gateway_settings: GatewaySettings,
    registry_settings: RegistrySettings,
    matching_settings: MatchingSettings,
    reporting_settings: ReportingSettings,
    events_settings: EventsSettings,
) -> dict[str, FastAPI]:
    """Every service's app, built but not started: for the tests that walk their routes."""
    from gateway.app import create_app as create_gateway
    from services.events.app import create_app as create_events
    from services.matching.app import create_app as create_matching
    from services.reporting.app import create_app as create_reporting

    return {
        "gateway": create_gateway(gateway_settings),
        "registry": create_registry(registry_settings),
        "matching": create_matching(matching_settings),
        "reporting": create_reporting(reporting_settings),
        "events": create_events(events_settings),
    }
