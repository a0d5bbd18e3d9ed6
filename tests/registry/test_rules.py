"""The registry's shared rules: tenants, authentication, idempotency, ETags, integrity."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.common.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from tests.registry.helpers import cluster_body, create, firm_body, make_agency
from tests.support import ADMIN, SERVICE, TEST_SECRET, agency_headers, assert_problem, principal_headers

SCHEME = {"code": "fsc-coc", "name": "FSC Chain of Custody", "category": "forestry"}


async def feed(registry: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await registry.get("/v1/changes", params={"after": 0, "limit": 1000}, headers=SERVICE)
    assert response.status_code == 200, response.text
    assert not response.json()["has_more"]
    return list(response.json()["items"])


async def read(registry: httpx.AsyncClient, path: str) -> httpx.Response:
    response = await registry.get(path, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response


# --- tenants -------------------------------------------------------------------------------------------------------


async def test_an_agency_cannot_change_another_agencys_cluster(registry: httpx.AsyncClient) -> None:
    a, b = await make_agency(registry, "A"), await make_agency(registry, "B")
    cluster = await create(registry, "/v1/clusters", cluster_body(), a)
    path = f"/v1/clusters/{cluster['id']}"
    before = (await read(registry, path)).json()
    changes_before = await feed(registry)

    patched = await registry.patch(path, json={"jobs": 1}, headers=agency_headers(b) | {"If-Match": '"1"'})
    assert_problem(patched, 403, "forbidden")
    deleted = await registry.delete(path, headers=agency_headers(b) | {"If-Match": '"1"'})
    assert_problem(deleted, 403, "forbidden")
    # Without If-Match the answer is still 403: ownership is checked first and reveals nothing else.
    assert_problem(await registry.delete(path, headers=agency_headers(b)), 403)

    assert (await read(registry, path)).json() == before
    assert await feed(registry) == changes_before

    # The owner and an admin may.
    own = await registry.patch(path, json={"jobs": 2}, headers=agency_headers(a) | {"If-Match": '"1"'})
    assert own.status_code == 200, own.text
    admin = await registry.patch(path, json={"jobs": 3}, headers=ADMIN | {"If-Match": '"2"'})
    assert admin.status_code == 200, admin.text
    assert admin.json()["agency_id"] == a


async def test_an_agency_creates_for_itself_only(registry: httpx.AsyncClient) -> None:
    a, b = await make_agency(registry, "A"), await make_agency(registry, "B")
    response = await registry.post("/v1/clusters", json=cluster_body(agency_id=b), headers=agency_headers(a))
    assert_problem(response, 403, "forbidden")
    explicit_own = await registry.post("/v1/clusters", json=cluster_body(agency_id=a), headers=agency_headers(a))
    assert explicit_own.status_code == 201, explicit_own.text
    implicit_own = await registry.post("/v1/clusters", json=cluster_body(), headers=agency_headers(a))
    assert implicit_own.status_code == 201, implicit_own.text
    assert explicit_own.json()["agency_id"] == implicit_own.json()["agency_id"] == a
    listed = (await registry.get("/v1/clusters", headers=ADMIN)).json()["items"]
    assert {c["agency_id"] for c in listed} == {a}


async def test_an_admin_must_name_the_owning_agency(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    missing = await registry.post("/v1/clusters", json=cluster_body(), headers=ADMIN)
    problem = assert_problem(missing, 422, "validation-error")
    assert [e["field"] for e in problem["errors"]] == ["agency_id"]
    unknown = await registry.post("/v1/clusters", json=cluster_body(agency_id="agy_nobody"), headers=ADMIN)
    assert [e["field"] for e in assert_problem(unknown, 422)["errors"]] == ["agency_id"]
    named = await registry.post("/v1/clusters", json=cluster_body(agency_id=agency), headers=ADMIN)
    assert named.status_code == 201, named.text
    assert named.json()["agency_id"] == agency


@pytest.mark.parametrize("role", [Role.viewer, Role.lead_firm, Role.integrator, Role.service])
async def test_read_only_roles_cannot_write(registry: httpx.AsyncClient, role: Role) -> None:
    agency = await make_agency(registry)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    # Even a principal claiming the owning agency may not write with a read-only role.
    headers = principal_headers(role, agency_id=agency, firm_id="frm_x")
    path = f"/v1/clusters/{cluster['id']}"
    assert_problem(await registry.post("/v1/clusters", json=cluster_body(), headers=headers), 403)
    assert_problem(await registry.post("/v1/firms", json=firm_body(), headers=headers), 403)
    assert_problem(await registry.patch(path, json={"jobs": 1}, headers=headers | {"If-Match": '"1"'}), 403)
    assert_problem(await registry.delete(path, headers=headers | {"If-Match": '"1"'}), 403)
    assert (await registry.get(path, headers=headers)).status_code == 200
    assert len((await registry.get("/v1/clusters", headers=ADMIN)).json()["items"]) == 1


async def test_an_agency_principal_without_an_agency_cannot_create(registry: httpx.AsyncClient) -> None:
    """A principal of role agency that names no agency is refused, not a crash."""
    await make_agency(registry)
    headers = principal_headers(Role.agency, subject="key-without-agency")
    assert_problem(await registry.post("/v1/clusters", json=cluster_body(), headers=headers), 403)
    assert (await registry.get("/v1/clusters", headers=ADMIN)).json()["items"] == []


async def test_only_an_admin_creates_agencies(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    body = {"name": "Rogue agency", "country": "EC"}
    for headers in (agency_headers(agency), principal_headers(Role.viewer), principal_headers(Role.lead_firm)):
        assert_problem(await registry.post("/v1/agencies", json=body, headers=headers), 403)
    assert len((await registry.get("/v1/agencies", headers=ADMIN)).json()["items"]) == 1


async def test_an_agency_changes_its_own_agency_record_only(registry: httpx.AsyncClient) -> None:
    a, b = await make_agency(registry, "A"), await make_agency(registry, "B")
    own = await registry.patch(
        f"/v1/agencies/{a}", json={"website": "https://a.example"}, headers=agency_headers(a) | {"If-Match": '"1"'}
    )
    assert own.status_code == 200, own.text
    other = await registry.patch(
        f"/v1/agencies/{b}", json={"name": "Taken over"}, headers=agency_headers(a) | {"If-Match": '"1"'}
    )
    assert_problem(other, 403)
    assert (await read(registry, f"/v1/agencies/{b}")).json()["name"] == "B"


async def test_only_an_admin_adds_certification_schemes(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    for headers in (agency_headers(agency), principal_headers(Role.viewer), SERVICE):
        assert_problem(await registry.post("/v1/certification-schemes", json=SCHEME, headers=headers), 403)
    codes = [
        s["code"] for s in (await registry.get("/v1/certification-schemes?limit=200", headers=ADMIN)).json()["items"]
    ]
    assert SCHEME["code"] not in codes
    created = await registry.post("/v1/certification-schemes", json=SCHEME, headers=ADMIN)
    assert created.status_code == 201, created.text
    again = await registry.post("/v1/certification-schemes", json=SCHEME, headers=ADMIN)
    assert_problem(again, 409)


async def test_any_principal_reads_every_agencys_records(registry: httpx.AsyncClient) -> None:
    a, b = await make_agency(registry, "A"), await make_agency(registry, "B")
    cluster = await create(registry, "/v1/clusters", cluster_body(), a)
    firm = await create(registry, "/v1/firms", firm_body(cluster_ids=[cluster["id"]]), a)
    for headers in (agency_headers(b), principal_headers(Role.viewer), principal_headers(Role.lead_firm)):
        assert (await registry.get(f"/v1/clusters/{cluster['id']}", headers=headers)).json()["id"] == cluster["id"]
        assert (await registry.get(f"/v1/firms/{firm['id']}", headers=headers)).status_code == 200
        listed = (await registry.get("/v1/firms", params={"agency_id": a}, headers=headers)).json()["items"]
        assert [f["id"] for f in listed] == [firm["id"]]


async def test_the_change_feed_is_for_services_and_admins(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    assert_problem(await registry.get("/v1/changes", headers=agency_headers(agency)), 403)
    assert (await registry.get("/v1/changes", headers=ADMIN)).status_code == 200


# --- authentication ------------------------------------------------------------------------------------------------


def _forged(role: Role = Role.admin) -> dict[str, str]:
    """A header whose payload claims ``role`` but whose signature belongs to a viewer's payload."""
    viewer = sign_principal(Principal(subject="v", role=Role.viewer), TEST_SECRET).split(".")
    wanted = sign_principal(Principal(subject="v", role=role), TEST_SECRET).split(".")
    return {PRINCIPAL_HEADER: f"{wanted[0]}.{wanted[1]}.{viewer[2]}"}


def _signed(subject: str, *, ttl_seconds: int) -> dict[str, str]:
    return {
        PRINCIPAL_HEADER: sign_principal(
            Principal(subject=subject, role=Role.admin), TEST_SECRET, ttl_seconds=ttl_seconds
        )
    }


INVALID_PRINCIPALS: dict[str, Callable[[], dict[str, str]]] = {
    "none": lambda: {},
    "empty": lambda: {PRINCIPAL_HEADER: ""},
    "garbage": lambda: {PRINCIPAL_HEADER: "garbage"},
    "forged": _forged,
    "other-secret": lambda: principal_headers(Role.admin, secret="another-secret-0123456789abcdef0123456"),
    "expired": lambda: _signed("old", ttl_seconds=-1),
    "too-long-lived": lambda: _signed("long", ttl_seconds=86400),
}


@pytest.mark.parametrize("case", list(INVALID_PRINCIPALS))
async def test_requests_without_a_valid_principal_are_401(registry: httpx.AsyncClient, case: str) -> None:
    headers = INVALID_PRINCIPALS[case]()  # signed now, so only the intended defect makes it invalid
    agency = await make_agency(registry)
    for response in (
        await registry.get("/v1/clusters", headers=headers),
        await registry.get("/v1/agencies/" + agency, headers=headers),
        await registry.post("/v1/clusters", json=cluster_body(agency_id=agency), headers=headers),
        await registry.post("/v1/agencies", json={"name": "X", "country": "EC"}, headers=headers),
        await registry.get("/v1/changes", headers=headers),
    ):
        assert_problem(response, 401, "unauthorized")
    assert (await registry.get("/v1/clusters", headers=ADMIN)).json()["items"] == []


async def test_non_ascii_principal_header_is_401_not_500(registry: httpx.AsyncClient) -> None:
    response = await registry.get("/v1/clusters", headers=[(PRINCIPAL_HEADER.encode(), b"v1.\xe9\xe9.\xfc\xfc")])
    assert_problem(response, 401, "unauthorized")


# --- Idempotency-Key -----------------------------------------------------------------------------------------------


async def test_same_key_same_body_replays_the_first_response(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency) | {"Idempotency-Key": "create-cluster-1"}
    first = await registry.post("/v1/clusters", json=cluster_body(), headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    # The same JSON with its keys in another order is the same request.
    reordered = dict(reversed(list(cluster_body().items())))
    for body in (cluster_body(), reordered):
        replay = await registry.post("/v1/clusters", json=body, headers=headers)
        assert replay.status_code == 201, replay.text
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json() == first.json()
        assert replay.headers["ETag"] == first.headers["ETag"]
        assert replay.headers["Location"] == first.headers["Location"]

    clusters = (await registry.get("/v1/clusters", headers=ADMIN)).json()["items"]
    assert [c["id"] for c in clusters] == [first.json()["id"]]
    cluster_changes = [c for c in await feed(registry) if c["entity"] == "cluster"]
    assert [(c["entity_id"], c["op"]) for c in cluster_changes] == [(first.json()["id"], "created")]


async def test_same_key_different_body_is_422(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency) | {"Idempotency-Key": "k-1"}
    first = await registry.post("/v1/clusters", json=cluster_body(), headers=headers)
    assert first.status_code == 201, first.text
    other = await registry.post("/v1/clusters", json=cluster_body(name="Another"), headers=headers)
    assert_problem(other, 422, "idempotency-key-reused")
    other_path = await registry.post("/v1/firms", json=firm_body(), headers=headers)
    assert_problem(other_path, 422, "idempotency-key-reused")
    assert len((await registry.get("/v1/clusters", headers=ADMIN)).json()["items"]) == 1
    assert (await registry.get("/v1/firms", headers=ADMIN)).json()["items"] == []


async def test_a_failed_request_does_not_use_up_its_key(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency) | {"Idempotency-Key": "retry-after-fix"}
    bad = await registry.post("/v1/clusters", json=cluster_body(country="XX"), headers=headers)
    assert_problem(bad, 422, "validation-error")
    good = await registry.post("/v1/clusters", json=cluster_body(), headers=headers)
    assert good.status_code == 201, good.text
    assert "idempotent-replayed" not in good.headers


async def test_keys_are_scoped_to_the_principal(registry: httpx.AsyncClient) -> None:
    a, b = await make_agency(registry, "A"), await make_agency(registry, "B")
    key = {"Idempotency-Key": "shared-key"}
    from_a = await registry.post("/v1/clusters", json=cluster_body(), headers=agency_headers(a) | key)
    from_b = await registry.post("/v1/clusters", json=cluster_body(), headers=agency_headers(b) | key)
    from_admin = await registry.post("/v1/clusters", json=cluster_body(agency_id=a), headers=ADMIN | key)
    for response in (from_a, from_b, from_admin):
        assert response.status_code == 201, response.text
        assert "idempotent-replayed" not in response.headers
    assert len({from_a.json()["id"], from_b.json()["id"], from_admin.json()["id"]}) == 3
    assert from_b.json()["agency_id"] == b


@pytest.mark.parametrize("key", ["", "k" * 201])
async def test_an_invalid_key_is_422(registry: httpx.AsyncClient, key: str) -> None:
    agency = await make_agency(registry)
    response = await registry.post(
        "/v1/clusters", json=cluster_body(), headers=agency_headers(agency) | {"Idempotency-Key": key}
    )
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["Idempotency-Key"]


async def test_concurrent_requests_with_one_key_create_one_record(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency) | {"Idempotency-Key": "concurrent-1"}
    responses = await asyncio.gather(
        *(registry.post("/v1/clusters", json=cluster_body(), headers=headers) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    created = [r for r in responses if r.status_code == 201]
    assert created, "at least one request succeeds"
    assert len({r.json()["id"] for r in created}) == 1
    assert len([r for r in created if "idempotent-replayed" not in r.headers]) == 1, "one request did the write"
    for conflict in (r for r in responses if r.status_code == 409):
        assert_problem(conflict, 409, "idempotency-in-progress")

    clusters = (await registry.get("/v1/clusters", headers=ADMIN)).json()["items"]
    assert [c["id"] for c in clusters] == [created[0].json()["id"]]
    assert len([c for c in await feed(registry) if c["entity"] == "cluster"]) == 1
    # A retry after the race replays the winner.
    retry = await registry.post("/v1/clusters", json=cluster_body(), headers=headers)
    assert retry.status_code == 201 and retry.json()["id"] == created[0].json()["id"]
    assert retry.headers["Idempotent-Replayed"] == "true"


async def test_idempotent_certification_scheme_creation(registry: httpx.AsyncClient) -> None:
    headers = ADMIN | {"Idempotency-Key": "scheme-1"}
    first = await registry.post("/v1/certification-schemes", json=SCHEME, headers=headers)
    assert first.status_code == 201, first.text
    replay = await registry.post("/v1/certification-schemes", json=SCHEME, headers=headers)
    assert replay.status_code == 201, replay.text  # a replay, not the 409 of a second create
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert len([c for c in await feed(registry) if c["entity_id"] == SCHEME["code"]]) == 1


# --- ETags and updates ---------------------------------------------------------------------------------------------


async def test_if_none_match_with_the_current_etag_is_304(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    path = f"/v1/clusters/{cluster['id']}"
    etag = (await read(registry, path)).headers["ETag"]
    not_modified = await registry.get(path, headers=ADMIN | {"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == etag
    assert (await registry.get(path, headers=ADMIN | {"If-None-Match": f"W/{etag}"})).status_code == 304
    assert (await registry.get(path, headers=ADMIN | {"If-None-Match": '"99"'})).status_code == 200

    changed = await registry.patch(path, json={"smes": 301}, headers=ADMIN | {"If-Match": etag})
    assert changed.status_code == 200, changed.text
    stale = await registry.get(path, headers=ADMIN | {"If-None-Match": etag})
    assert stale.status_code == 200
    assert stale.json()["smes"] == 301
    assert stale.headers["ETag"] == changed.headers["ETag"] != etag


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"subdivision": "CO-ANT"}, "subdivision"),  # valid code, other country
        ({"country": "CO"}, "subdivision"),  # the stored subdivision EC-I is not in CO
        ({"country": "XX"}, "country"),
        ({"sector_isic": "9999"}, "sector_isic"),
        ({"name": None}, "name"),
        ({"jobs": -5}, "jobs"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_a_patch_that_leaves_the_record_invalid_is_422_and_changes_nothing(
    registry: httpx.AsyncClient, patch: dict[str, Any], field: str
) -> None:
    agency = await make_agency(registry)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    path = f"/v1/clusters/{cluster['id']}"
    before = (await read(registry, path)).json()
    response = await registry.patch(path, json=patch, headers=agency_headers(agency) | {"If-Match": '"1"'})
    problem = assert_problem(response, 422, "validation-error")
    assert field in [e["field"] for e in problem["errors"]], problem
    assert (await read(registry, path)).json() == before
    assert [c["op"] for c in await feed(registry) if c["entity"] == "cluster"] == ["created"]


async def test_a_patch_with_an_unknown_field_is_422(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    path = f"/v1/clusters/{cluster['id']}"
    headers = agency_headers(agency) | {"If-Match": '"1"'}
    for patch, field in (
        ({"colour": "red"}, "colour"),
        ({"version": 7}, "version"),
        ({"id": "clu_other"}, "id"),
        ({"agency_id": "agy_other"}, "agency_id"),  # ownership does not move by PATCH
    ):
        problem = assert_problem(await registry.patch(path, json=patch, headers=headers), 422)
        assert field in [e["field"] for e in problem["errors"]], problem
    assert (await read(registry, path)).json() == cluster


async def test_a_firm_patch_with_an_unknown_certification_changes_nothing(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    path = f"/v1/firms/{firm['id']}"
    response = await registry.patch(
        path,
        json={"certifications": [{"scheme": "no-such-scheme"}], "name": "Renamed"},
        headers=agency_headers(agency) | {"If-Match": '"1"'},
    )
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["certifications.0.scheme"]
    assert (await read(registry, path)).json() == firm
    by_cert = (await registry.get("/v1/firms", params={"certification": "iso-9001"}, headers=ADMIN)).json()
    assert [f["id"] for f in by_cert["items"]] == [firm["id"]]


# --- integrity -----------------------------------------------------------------------------------------------------


async def test_a_referenced_cluster_cannot_be_deleted(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    firm = await create(registry, "/v1/firms", firm_body(cluster_ids=[cluster["id"]]), agency)
    path = f"/v1/clusters/{cluster['id']}"
    refused = await registry.delete(path, headers=agency_headers(agency) | {"If-Match": '"1"'})
    problem = assert_problem(refused, 409, "conflict")
    assert {"entity": "firm", "id": firm["id"]} in problem["referenced_by"]
    assert (await read(registry, path)).json() == cluster
    assert [c["op"] for c in await feed(registry) if c["entity"] == "cluster"] == ["created"]

    # Once the firm no longer names it, the cluster can go.
    unlinked = await registry.patch(
        f"/v1/firms/{firm['id']}", json={"cluster_ids": []}, headers=agency_headers(agency) | {"If-Match": '"1"'}
    )
    assert unlinked.status_code == 200, unlinked.text
    deleted = await registry.delete(path, headers=agency_headers(agency) | {"If-Match": '"1"'})
    assert deleted.status_code == 204, deleted.text
    assert_problem(await registry.get(path, headers=ADMIN), 404)


async def test_an_agency_that_still_owns_records_cannot_be_deleted(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    refused = await registry.delete(f"/v1/agencies/{agency}", headers=ADMIN | {"If-Match": '"1"'})
    assert_problem(refused, 409, "conflict")
    await read(registry, f"/v1/agencies/{agency}")
    assert (await read(registry, f"/v1/clusters/{cluster['id']}")).json()["agency_id"] == agency
