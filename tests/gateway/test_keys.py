"""API keys: the bootstrap admin key, keys only for owners that exist in the registry, and
agencies issuing keys for their own firms, brokers and staff."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError
from sqlalchemy import func, insert, select, update

from gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS
from gateway.app import create_app as create_gateway
from gateway.breaker import BreakerState, CircuitBreaker
from gateway.keys.service import BOOTSTRAP_KEY_ID, hash_key, install_bootstrap_key
from gateway.settings import GatewaySettings
from gateway.tables import ApiKey
from services.common.db import create_engine, create_sessionmaker
from services.common.migrations import upgrade
from services.common.principal import Principal, Role
from services.registry.settings import RegistrySettings
from tests.registry.helpers import broker_body, firm_body
from tests.support import BOOTSTRAP_KEY, LIFESPAN_TIMEOUTS, Backend, Stack, assert_problem, gateway_settings_for

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


# --- supplier and broker keys, and keys agencies issue -------------------------------------------------------------


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Agency:
    """An agency's id and key, with a supplier firm, a lead firm and a broker of its own."""

    id: str
    key: dict[str, str]
    supplier: str
    buyer: str
    broker: str

    @classmethod
    async def register(cls, stack: Stack, name: str) -> Agency:
        agency = cls()
        agency.id = await _registered(stack, "/v1/agencies", {"name": name, "country": "EC"})
        agency.key = bearer(await stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=agency.id))
        agency.supplier = await _registered(stack, "/v1/firms", firm_body(agency_id=agency.id))
        agency.buyer = await _registered(stack, "/v1/firms", firm_body(agency_id=agency.id, roles=["lead_firm"]))
        agency.broker = await _registered(stack, "/v1/brokers", broker_body(agency_id=agency.id))
        return agency


async def _principal(stack: Stack, key: str) -> Principal:
    principal: Principal = await stack.gateway.state.authenticator.authenticate(key)
    return principal


async def test_an_agency_issues_supplier_and_broker_keys_for_its_own_records(stack: Stack) -> None:
    a = await Agency.register(stack, "Agency A")
    supplier = await stack.client.post(
        "/v1/api-keys", json={"name": "supplier", "role": "supplier", "firm_id": a.supplier}, headers=a.key
    )
    assert supplier.status_code == 201, supplier.text
    assert supplier.json()["agency_id"] == a.id and supplier.json()["scopes"] == [
        "registry:read",
        "matching:read",
        "matching:write",
        "events:read",
    ]
    assert await _principal(stack, supplier.json()["key"]) == Principal(
        subject=supplier.json()["id"],
        role=Role.supplier,
        agency_id=a.id,
        firm_id=a.supplier,
        scopes=("registry:read", "matching:read", "matching:write", "events:read"),
    )
    own_profile = await stack.client.get(f"/v1/firms/{a.supplier}", headers=bearer(supplier.json()["key"]))
    assert own_profile.status_code == 200, own_profile.text

    broker = await stack.client.post(
        "/v1/api-keys", json={"name": "broker", "role": "broker", "broker_id": a.broker}, headers=a.key
    )
    assert broker.status_code == 201, broker.text
    principal = await _principal(stack, broker.json()["key"])
    assert (principal.role, principal.broker_id, principal.agency_id, principal.firm_id) == (
        Role.broker,
        a.broker,
        a.id,
        None,
    )
    for role, body in (("lead_firm", {"firm_id": a.buyer}), ("viewer", {}), ("integrator", {})):
        issued = await stack.client.post("/v1/api-keys", json={"name": role, "role": role, **body}, headers=a.key)
        assert issued.status_code == 201, issued.text
        assert (await _principal(stack, issued.json()["key"])).agency_id == a.id, role


async def test_a_firm_or_broker_key_belongs_to_its_records_agency(stack: Stack) -> None:
    a = await Agency.register(stack, "Agency A")
    b = await Agency.register(stack, "Agency B")
    for body in ({"role": "supplier", "firm_id": a.supplier}, {"role": "broker", "broker_id": a.broker}):
        by_admin = await stack.client.post("/v1/api-keys", json={"name": "k", **body}, headers=ADMIN_KEY)
        assert by_admin.status_code == 201, by_admin.text
        assert by_admin.json()["agency_id"] == a.id and by_admin.json()["broker_id"] == body.get("broker_id")
        before = await _key_ids(stack)
        elsewhere = await stack.client.post(
            "/v1/api-keys", json={"name": "k", "agency_id": b.id, **body}, headers=ADMIN_KEY
        )
        assert_problem(elsewhere, 422, field="agency_id")
        assert elsewhere.json()["errors"][0]["code"] == "other_agency"
        assert await _key_ids(stack) == before


async def test_a_supplier_key_needs_a_firm_with_the_supplier_role(stack: Stack) -> None:
    a = await Agency.register(stack, "Agency A")
    before = await _key_ids(stack)
    for headers in (ADMIN_KEY, a.key):
        refused = await stack.client.post(
            "/v1/api-keys", json={"name": "k", "role": "supplier", "firm_id": a.buyer}, headers=headers
        )
        assert_problem(refused, 422, field="firm_id")
        assert refused.json()["errors"][0]["code"] == "not_supplier"
    assert await _key_ids(stack) == before


@pytest.mark.parametrize(
    "body",
    [
        {"role": "supplier"},
        {"role": "broker"},
        {"role": "viewer", "broker_id": "brk_01J00000000000000000000000"},
        {"role": "broker", "broker_id": "brk_01J00000000000000000000000", "firm_id": "frm_01J00000000000000000000000"},
    ],
)
async def test_supplier_and_broker_keys_name_their_owner(stack: Stack, body: dict[str, str]) -> None:
    refused = await stack.client.post("/v1/api-keys", json={"name": "k", **body}, headers=ADMIN_KEY)
    assert_problem(refused, 422)


async def test_a_broker_key_for_a_broker_that_does_not_exist_is_refused(stack: Stack) -> None:
    body = {"name": "k", "role": "broker", "broker_id": "brk_01J00000000000000000000000"}
    refused = await stack.client.post("/v1/api-keys", json=body, headers=ADMIN_KEY)
    assert_problem(refused, 422, field="broker_id")
    assert refused.json()["errors"][0]["code"] == "not_found"


async def test_an_agency_issues_keys_for_itself_only(stack: Stack) -> None:
    a = await Agency.register(stack, "Agency A")
    b = await Agency.register(stack, "Agency B")
    before = await _key_ids(stack)
    for body, field in (
        ({"role": "supplier", "firm_id": b.supplier}, "firm_id"),
        ({"role": "lead_firm", "firm_id": b.buyer}, "firm_id"),
        ({"role": "broker", "broker_id": b.broker}, "broker_id"),
    ):
        refused = await stack.client.post("/v1/api-keys", json={"name": "k", **body}, headers=a.key)
        assert_problem(refused, 422, field=field)
        assert refused.json()["errors"][0]["code"] == "other_agency" and "your agency" in refused.text
    for body in (
        {"role": "admin"},
        {"role": "agency", "agency_id": a.id},
        {"role": "viewer", "agency_id": b.id},
        {"role": "supplier", "firm_id": a.supplier, "agency_id": b.id},
    ):
        assert_problem(await stack.client.post("/v1/api-keys", json={"name": "k", **body}, headers=a.key), 403)
    assert await _key_ids(stack) == before


async def test_an_agency_manages_its_own_agencys_keys_only(stack: Stack) -> None:
    a = await Agency.register(stack, "Agency A")
    b = await Agency.register(stack, "Agency B")
    a_supplier = await stack.client.post(
        "/v1/api-keys", json={"name": "k", "role": "supplier", "firm_id": a.supplier}, headers=a.key
    )
    b_supplier = await stack.client.post(
        "/v1/api-keys", json={"name": "k", "role": "supplier", "firm_id": b.supplier}, headers=b.key
    )
    a_id, b_id = a_supplier.json()["id"], b_supplier.json()["id"]

    listed = (await stack.client.get("/v1/api-keys", headers=a.key)).json()["items"]
    assert a_id in {k["id"] for k in listed} and {k["agency_id"] for k in listed} == {a.id}
    assert_problem(await stack.client.get("/v1/api-keys", params={"agency_id": b.id}, headers=a.key), 403)
    assert (await stack.client.get(f"/v1/api-keys/{a_id}", headers=a.key)).status_code == 200
    for method, path in (
        ("GET", f"/v1/api-keys/{b_id}"),
        ("POST", f"/v1/api-keys/{b_id}/rotate"),
        ("DELETE", f"/v1/api-keys/{b_id}"),
        ("GET", "/v1/api-keys/key_bootstrap"),
    ):
        answer = await stack.client.request(method, path, headers=a.key)
        assert_problem(answer, 404)
        assert answer.json()["detail"] == f"No API key with id '{path.split('/')[3]}'"
    assert (
        await stack.client.get(f"/v1/firms/{b.supplier}", headers=bearer(b_supplier.json()["key"]))
    ).status_code == 200

    # Its own agency keys it sees, but only an admin rotates or revokes them.
    agency_key_id = next(k["id"] for k in listed if k["role"] == "agency")
    assert_problem(await stack.client.delete(f"/v1/api-keys/{agency_key_id}", headers=a.key), 403)
    assert_problem(await stack.client.post(f"/v1/api-keys/{agency_key_id}/rotate", headers=a.key), 403)

    rotated = await stack.client.post(f"/v1/api-keys/{a_id}/rotate", params={"grace_seconds": 0}, headers=a.key)
    assert rotated.status_code == 201, rotated.text
    assert (rotated.json()["role"], rotated.json()["firm_id"], rotated.json()["agency_id"]) == (
        "supplier",
        a.supplier,
        a.id,
    )


async def test_a_revocation_by_the_agency_takes_effect_at_once(stack: Stack) -> None:
    a = await Agency.register(stack, "Agency A")
    issued = await stack.client.post(
        "/v1/api-keys", json={"name": "k", "role": "broker", "broker_id": a.broker}, headers=a.key
    )
    key = bearer(issued.json()["key"])
    assert (await stack.client.get(f"/v1/brokers/{a.broker}", headers=key)).status_code == 200  # now cached
    assert (await stack.client.delete(f"/v1/api-keys/{issued.json()['id']}", headers=a.key)).status_code == 204
    assert_problem(await stack.client.get(f"/v1/brokers/{a.broker}", headers=key), 401)


async def test_a_revocation_through_another_replica_takes_effect_within_the_key_cache_bound(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings
) -> None:
    """Two gateway replicas on one database: B trusts a key it verified for at most
    ``key_cache_seconds``, then reads the database again and refuses the key A revoked."""
    bound = 1.0  # the default is 5 s (the documented maximum); 1 s keeps the test short
    settings = gateway_settings.model_copy(update={"key_cache_seconds": bound})
    async with Stack.start(registry_settings, settings) as stack, AsyncExitStack() as replicas:
        mounts: dict[str, httpx.AsyncBaseTransport] = {
            "http://registry": httpx.ASGITransport(app=stack.upstreams["registry"])
        }
        replica = await replicas.enter_async_context(
            LifespanManager(create_gateway(settings, http_mounts=mounts), **LIFESPAN_TIMEOUTS)
        )
        client_b = await replicas.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=replica.app), base_url="http://gateway-b")
        )
        a = await Agency.register(stack, "Agency A")
        issued = await stack.client.post(
            "/v1/api-keys", json={"name": "k", "role": "broker", "broker_id": a.broker}, headers=a.key
        )
        key = bearer(issued.json()["key"])
        assert (await client_b.get(f"/v1/brokers/{a.broker}", headers=key)).status_code == 200  # B caches it
        assert (await stack.client.delete(f"/v1/api-keys/{issued.json()['id']}", headers=a.key)).status_code == 204
        revoked_at = time.monotonic()
        assert_problem(await stack.client.get(f"/v1/brokers/{a.broker}", headers=key), 401)  # A: at once
        while (answer := await client_b.get(f"/v1/brokers/{a.broker}", headers=key)).status_code == 200:
            assert time.monotonic() - revoked_at <= bound, "replica B still accepts the key past the bound"
            await asyncio.sleep(0.05)
        assert_problem(answer, 401)
        assert time.monotonic() - revoked_at <= bound + 0.5


def test_the_key_cache_bound_is_at_most_five_seconds(gateway_url: str, tmp_path: Path) -> None:
    settings = gateway_settings_for(gateway_url, tmp_path)
    assert GatewaySettings().key_cache_seconds == 5
    with pytest.raises(ValidationError) as refused:
        GatewaySettings.model_validate(settings.model_dump() | {"key_cache_seconds": 6})
    assert [e["loc"] for e in refused.value.errors()] == [("key_cache_seconds",)]


async def test_keys_issue_is_an_agency_scope(stack: Stack) -> None:
    a = await Agency.register(stack, "Agency A")
    body = {"name": "k", "role": "viewer"}
    without = await stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=a.id, scopes=["registry:read"])
    refused = await stack.client.post("/v1/api-keys", json=body, headers=bearer(without))
    assert_problem(refused, 403)
    assert "keys:issue" in refused.json()["detail"]
    for role in ("lead_firm", "supplier", "integrator", "viewer", "broker"):
        scoped = await stack.client.post(
            "/v1/api-keys", json=body | {"role": role, "scopes": ["registry:read", "keys:issue"]}, headers=ADMIN_KEY
        )
        assert_problem(scoped, 422)


async def test_the_upgrade_gives_keys_issue_to_agency_keys_with_every_scope(backend: Backend) -> None:
    """Migration 0002: agency keys issued with the role's scopes may issue keys, as new ones
    may; a key restricted on purpose, and keys of other roles, keep their scopes."""
    url = await backend.empty()
    await upgrade(GATEWAY_MIGRATIONS, url, "0001")
    before = {
        "key_full": ("agency", ["registry:read", "registry:write", "matching:read", "reporting:read"]),
        "key_read_only": ("agency", ["registry:read"]),
        "key_viewer": ("viewer", ["registry:read", "matching:read", "reporting:read"]),
    }
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for key_id, (role, scopes) in before.items():
                await connection.execute(
                    insert(ApiKey).values(
                        id=key_id,
                        name=key_id,
                        prefix=key_id,
                        secret_hash=key_id,
                        role=role,
                        scopes=scopes,
                        created_at=datetime.now(UTC),
                    )
                )
        await upgrade(GATEWAY_MIGRATIONS, url, "0002")
        async with create_sessionmaker(engine)() as session:
            after = {row.id: (row.role, row.scopes, row.broker_id) for row in await session.scalars(select(ApiKey))}
    finally:
        await engine.dispose()
    assert after == {
        "key_full": ("agency", [*before["key_full"][1], "keys:issue", "matching:write"], None),
        "key_read_only": ("agency", ["registry:read"], None),
        "key_viewer": ("viewer", ["registry:read", "matching:read", "reporting:read"], None),
    }


async def scopes_after_upgrade(
    backend: Backend, start: str, end: str, before: dict[str, tuple[str, list[str]]]
) -> dict[str, list[str]]:
    """Each key's scopes once keys of ``before`` (id: role, scopes) made at ``start`` are upgraded to ``end``."""
    url = await backend.empty()
    await upgrade(GATEWAY_MIGRATIONS, url, start)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for key_id, (role, scopes) in before.items():
                await connection.execute(
                    insert(ApiKey).values(
                        id=key_id,
                        name=key_id,
                        prefix=key_id,
                        secret_hash=key_id,
                        role=role,
                        scopes=scopes,
                        created_at=datetime.now(UTC),
                    )
                )
        await upgrade(GATEWAY_MIGRATIONS, url, end)
        async with create_sessionmaker(engine)() as session:
            return {row.id: row.scopes for row in await session.scalars(select(ApiKey))}
    finally:
        await engine.dispose()


async def test_the_upgrade_gives_events_scopes_to_keys_with_their_roles_scopes(backend: Backend) -> None:
    """Migration 0003: keys issued with their role's scopes read events (and those of roles
    that keep webhook endpoints write them), as new keys do; restricted keys stay as they are."""
    lead = ["registry:read", "matching:read", "matching:write"]
    before = {
        "key_lead": ("lead_firm", lead),
        "key_viewer": ("viewer", ["registry:read", "matching:read", "reporting:read"]),
        "key_restricted": ("lead_firm", ["registry:read"]),
        "key_metrics": ("admin", ["metrics:read"]),
    }
    after = await scopes_after_upgrade(backend, "0002", "0003", before)
    assert after == {
        "key_lead": [*lead, "events:read", "events:write"],
        "key_viewer": ["registry:read", "matching:read", "reporting:read", "events:read"],
        "key_restricted": ["registry:read"],
        "key_metrics": ["metrics:read"],
    }


async def test_the_upgrade_gives_reporting_write_to_admin_and_agency_keys_with_their_roles_scopes(
    backend: Backend,
) -> None:
    """Migration 0004: admin and agency keys issued with their role's scopes keep results
    frameworks (``reporting:write``), as new keys do; restricted keys and other roles stay as they are."""
    agency = ["registry:read", "registry:write", "matching:read", "matching:write", "reporting:read", "keys:issue"]
    agency += ["events:read", "events:write"]
    viewer = ["registry:read", "matching:read", "reporting:read", "events:read"]
    before = {
        "key_agency": ("agency", agency),
        "key_agency_read_only": ("agency", ["reporting:read"]),
        "key_viewer": ("viewer", viewer),
    }
    after = await scopes_after_upgrade(backend, "0003", "0004", before)
    assert after == {
        "key_agency": [*agency, "reporting:write"],
        "key_agency_read_only": ["reporting:read"],
        "key_viewer": viewer,
    }
