"""API keys: the bootstrap admin key, and keys only for owners that exist in the registry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update

from gateway.breaker import BreakerState, CircuitBreaker
from gateway.keys.service import BOOTSTRAP_KEY_ID, hash_key, install_bootstrap_key
from gateway.tables import ApiKey
from services.common.db import create_engine, create_sessionmaker
from tests.registry.helpers import firm_body
from tests.support import BOOTSTRAP_KEY, Stack, assert_problem

ADMIN_KEY = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}

KEY = "lk_bootstrap_race_key_0123456789abcdefghijklmnopq"
ROTATED = "lk_bootstrap_race_new_0123456789abcdefghijklmnopq"


async def test_replicas_installing_the_bootstrap_key_at_once_all_succeed(gateway_url: str) -> None:
    # One engine per replica, as separate processes would have; several replicas per round.
    engines = [create_engine(gateway_url, pool_size=2) for _ in range(4)]
    replicas = [create_sessionmaker(engine) for engine in engines]
    try:
        results = await asyncio.gather(
            *(install_bootstrap_key(sessions, KEY) for sessions in replicas), return_exceptions=True
        )
        assert results == [None] * len(replicas), results
        async with replicas[0]() as session:
            assert await session.scalar(select(func.count()).select_from(ApiKey)) == 1
            row = await session.get(ApiKey, BOOTSTRAP_KEY_ID)
        assert row is not None and row.secret_hash == hash_key(KEY) and row.role == "admin"

        # A later start with another key (GATEWAY_BOOTSTRAP_API_KEY changed) takes it over
        # and revives it when revoked, still as the one row.
        async with replicas[0]() as session, session.begin():
            await session.execute(
                update(ApiKey).where(ApiKey.id == BOOTSTRAP_KEY_ID).values(revoked_at=datetime.now(UTC))  # type: ignore[arg-type]
            )
        results = await asyncio.gather(
            *(install_bootstrap_key(sessions, ROTATED) for sessions in replicas), return_exceptions=True
        )
        assert results == [None] * len(replicas), results
        async with replicas[0]() as session:
            rows = (await session.scalars(select(ApiKey))).all()
        assert [(r.id, r.secret_hash, r.revoked_at) for r in rows] == [(BOOTSTRAP_KEY_ID, hash_key(ROTATED), None)]
    finally:
        for engine in engines:
            await engine.dispose()


# --- owners ----------------------------------------------------------------------------------------------------------


async def _registered(stack: Stack, path: str, body: dict[str, Any]) -> str:
    response = await stack.client.post(path, json=body, headers=ADMIN_KEY)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _key_ids(stack: Stack) -> list[str]:
    return [k["id"] for k in (await stack.client.get("/v1/api-keys", headers=ADMIN_KEY)).json()["items"]]


async def test_keys_are_issued_for_owners_that_exist(stack: Stack) -> None:
    agency_id = await _registered(stack, "/v1/agencies", {"name": "Ministerio", "country": "EC"})
    firm_id = await _registered(stack, "/v1/firms", firm_body(agency_id=agency_id, roles=["supplier", "lead_firm"]))
    for body in ({"role": "agency", "agency_id": agency_id}, {"role": "lead_firm", "firm_id": firm_id}):
        created = await stack.client.post("/v1/api-keys", json={"name": "k", **body}, headers=ADMIN_KEY)
        assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "agency", "agency_id": "agy_01J00000000000000000000000"}, "agency_id"),
        ({"role": "lead_firm", "firm_id": "frm_01J00000000000000000000000"}, "firm_id"),
        ({"role": "viewer", "agency_id": "agy_01J00000000000000000000000"}, "agency_id"),
        ({"role": "agency", "agency_id": "../firms"}, "agency_id"),
    ],
)
async def test_a_key_for_an_owner_that_does_not_exist_is_refused(
    stack: Stack, body: dict[str, str], field: str
) -> None:
    before = await _key_ids(stack)
    refused = await stack.client.post("/v1/api-keys", json={"name": "k", **body}, headers=ADMIN_KEY)
    assert [e["field"] for e in assert_problem(refused, 422)["errors"]] == [field]
    assert await _key_ids(stack) == before  # no key written


async def test_a_lead_firm_key_needs_a_firm_with_the_lead_firm_role(stack: Stack) -> None:
    agency_id = await _registered(stack, "/v1/agencies", {"name": "Ministerio", "country": "EC"})
    supplier_id = await _registered(stack, "/v1/firms", firm_body(agency_id=agency_id, roles=["supplier"]))
    refused = await stack.client.post(
        "/v1/api-keys", json={"name": "k", "role": "lead_firm", "firm_id": supplier_id}, headers=ADMIN_KEY
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "firm_id" and "lead_firm" in refused.json()["errors"][0]["message"]


async def test_a_key_whose_owner_cannot_be_checked_is_503(stack: Stack) -> None:
    agency_id = await _registered(stack, "/v1/agencies", {"name": "Ministerio", "country": "EC"})
    before = await _key_ids(stack)
    # The registry goes away: its address is no longer routed (a connection error).
    stack.gateway.state.forwarder.upstreams["registry"].base_url = "http://registry-down"
    refused = await stack.client.post(
        "/v1/api-keys", json={"name": "k", "role": "agency", "agency_id": agency_id}, headers=ADMIN_KEY
    )
    assert_problem(refused, 503)
    assert await _key_ids(stack) == before
    # Keys that name no owner need no registry.
    viewer = await stack.client.post("/v1/api-keys", json={"name": "k", "role": "viewer"}, headers=ADMIN_KEY)
    assert viewer.status_code == 201, viewer.text


def _state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state  # read afresh (a comparison above narrowed the attribute for mypy)


async def test_an_owner_check_reports_to_the_circuit_breaker(stack: Stack) -> None:
    agency_id = await _registered(stack, "/v1/agencies", {"name": "Ministerio", "country": "EC"})
    registry = stack.gateway.state.forwarder.upstreams["registry"]
    registry.breaker.reset_seconds = 0.2
    reachable, registry.base_url = registry.base_url, "http://registry-down"
    body = {"name": "k", "role": "agency", "agency_id": agency_id}
    while registry.breaker.state is not BreakerState.open:  # owner checks that cannot connect open it
        assert (await stack.client.post("/v1/api-keys", json=body, headers=ADMIN_KEY)).status_code == 503
    registry.base_url = reachable
    await asyncio.sleep(0.3)  # half-open: the next request to the registry is its trial
    created = await stack.client.post("/v1/api-keys", json=body, headers=ADMIN_KEY)
    assert created.status_code == 201, created.text
    # The owner check was the trial and said the registry is back: requests flow at once.
    assert _state(registry.breaker) is BreakerState.closed
    assert (await stack.client.get("/v1/agencies", headers=ADMIN_KEY)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "portal\x00", "role": "viewer"}, "name"),
        ({"name": "portal\nkey", "role": "viewer"}, "name"),
        ({"name": "k", "role": "agency", "agency_id": "agy_1\x00"}, "agency_id"),
        ({"name": "k", "role": "viewer", "scopes": ["registry:read\x00"]}, "scopes.0"),
    ],
)
async def test_a_key_with_text_out_of_bounds_is_refused(stack: Stack, body: dict[str, Any], field: str) -> None:
    before = await _key_ids(stack)
    refused = await stack.client.post("/v1/api-keys", json=body, headers=ADMIN_KEY)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert await _key_ids(stack) == before
