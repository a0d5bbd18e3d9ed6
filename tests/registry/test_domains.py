"""Institutions, brokers, networks and activities: their fields, filters, rules and references."""

from __future__ import annotations

from typing import Any

import httpx

from tests.registry.helpers import (
    activity_body,
    broker_body,
    cluster_body,
    create,
    firm_body,
    institution_body,
    make_agency,
    network_body,
    programme_body,
)
from tests.support import ADMIN, agency_headers, assert_problem, feed_items


def error_fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in assert_problem(response, 422)["errors"]]


async def ids(registry: httpx.AsyncClient, path: str, **params: Any) -> list[str]:
    response = await registry.get(path, params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def delete(registry: httpx.AsyncClient, path: str, record: dict[str, Any], agency: str) -> httpx.Response:
    headers = agency_headers(agency) | {"If-Match": f'"{record["version"]}"'}
    return await registry.delete(f"{path}/{record['id']}", headers=headers)


# Institutions


async def test_institution_create_read_and_filters(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    created = await registry.post(
        "/v1/institutions", json=institution_body(cluster_ids=[cluster["id"]]), headers=headers
    )
    assert created.status_code == 201, created.text
    institution = created.json()
    assert institution["id"].startswith("ins_")
    assert institution["agency_id"] == agency
    assert institution["kind"] == "training_provider"
    assert institution["cluster_ids"] == [cluster["id"]]
    assert created.headers["ETag"] == '"1"'
    read = await registry.get(f"/v1/institutions/{institution['id']}", headers=headers)
    assert read.status_code == 200 and read.json() == institution

    bank = await create(
        registry,
        "/v1/institutions",
        institution_body(name="Banco Pichincha", kind="financial_institution", subdivision="EC-P", description=None),
        agency,
    )
    assert await ids(registry, "/v1/institutions", kind="training_provider") == [institution["id"]]
    assert await ids(registry, "/v1/institutions", cluster_id=cluster["id"]) == [institution["id"]]
    assert await ids(registry, "/v1/institutions", subdivision="EC-P") == [bank["id"]]
    assert await ids(registry, "/v1/institutions", q="QUALITY CONTROL") == [institution["id"]]
    assert sorted(await ids(registry, "/v1/institutions", country="EC")) == sorted([institution["id"], bank["id"]])
    assert await ids(registry, "/v1/institutions", country="PE") == []

    bad_kind = await registry.post("/v1/institutions", json=institution_body(kind="bank"), headers=headers)
    assert error_fields(bad_kind) == ["kind"]


async def test_institution_references_clusters(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    unknown = await registry.post(
        "/v1/institutions",
        json=institution_body(cluster_ids=[cluster["id"], "clu_missing"]),
        headers=agency_headers(agency),
    )
    assert error_fields(unknown) == ["cluster_ids.1"]
    assert await ids(registry, "/v1/institutions") == []  # nothing written

    institution = await create(registry, "/v1/institutions", institution_body(cluster_ids=[cluster["id"]]), agency)
    blocked = await delete(registry, "/v1/clusters", cluster, agency)
    assert blocked.status_code == 409, blocked.text
    assert blocked.json()["referenced_by"] == [{"entity": "institution", "id": institution["id"]}]


# Brokers


async def test_broker_create_read_and_status_filter(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    created = await registry.post(
        "/v1/brokers", json=broker_body(certified_on="2024-09-01", cluster_ids=[cluster["id"]]), headers=headers
    )
    assert created.status_code == 201, created.text
    certified = created.json()
    assert certified["id"].startswith("brk_")
    assert (certified["trained_on"], certified["certified_on"]) == ("2024-03-15", "2024-09-01")
    assert certified["languages"] == ["es", "en"]
    assert (await registry.get(f"/v1/brokers/{certified['id']}", headers=headers)).json() == certified

    trained = await create(registry, "/v1/brokers", broker_body(name="Jorge Andrade", organisation="CONQUITO"), agency)
    untrained = await create(registry, "/v1/brokers", broker_body(name="Ana Pérez", trained_on=None), agency)

    assert await ids(registry, "/v1/brokers", status="certified") == [certified["id"]]
    assert sorted(await ids(registry, "/v1/brokers", status="trained")) == sorted([certified["id"], trained["id"]])
    assert await ids(registry, "/v1/brokers", cluster_id=cluster["id"]) == [certified["id"]]
    assert await ids(registry, "/v1/brokers", q="conquito") == [trained["id"]]
    assert untrained["id"] in await ids(registry, "/v1/brokers", country="EC")
    bad_status = await registry.get("/v1/brokers", params={"status": "expert"}, headers=ADMIN)
    assert error_fields(bad_status) == ["status"]

    # Certifying a broker later moves it into the certified list (its tags are rewritten).
    patched = await registry.patch(
        f"/v1/brokers/{trained['id']}", json={"certified_on": "2025-01-10"}, headers=headers | {"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    assert sorted(await ids(registry, "/v1/brokers", status="certified")) == sorted([certified["id"], trained["id"]])


async def test_broker_certification_rules(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    before = await registry.post("/v1/brokers", json=broker_body(certified_on="2024-01-01"), headers=headers)
    assert error_fields(before) == ["certified_on"]
    assert "before trained_on" in before.json()["errors"][0]["message"]
    untrained = await registry.post(
        "/v1/brokers", json=broker_body(trained_on=None, certified_on="2024-01-01"), headers=headers
    )
    assert error_fields(untrained) == ["certified_on"]
    assert "requires trained_on" in untrained.json()["errors"][0]["message"]
    same_day = await registry.post(
        "/v1/brokers", json=broker_body(trained_on="2024-01-01", certified_on="2024-01-01"), headers=headers
    )
    assert same_day.status_code == 201, same_day.text
    bad_email = await registry.post("/v1/brokers", json=broker_body(email="not an email"), headers=headers)
    assert error_fields(bad_email) == ["email"]

    # A PATCH that removes the training date of a certified broker leaves it invalid.
    broker = same_day.json()
    patched = await registry.patch(
        f"/v1/brokers/{broker['id']}", json={"trained_on": None}, headers=headers | {"If-Match": '"1"'}
    )
    assert error_fields(patched) == ["certified_on"]
    assert (await registry.get(f"/v1/brokers/{broker['id']}", headers=headers)).json()["version"] == 1

    unknown = await registry.post("/v1/brokers", json=broker_body(cluster_ids=["clu_missing"]), headers=headers)
    assert error_fields(unknown) == ["cluster_ids.0"]


# Networks


async def _vertical_setting(registry: httpx.AsyncClient, agency: str) -> dict[str, Any]:
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    lead = await create(registry, "/v1/firms", firm_body(name="Pinto S.A.", roles=["lead_firm"]), agency)
    suppliers = [await create(registry, "/v1/firms", firm_body(name=f"Taller {n}"), agency) for n in range(3)]
    broker = await create(registry, "/v1/brokers", broker_body(cluster_ids=[cluster["id"]]), agency)
    return {"cluster": cluster, "lead": lead, "suppliers": suppliers, "broker": broker}


async def test_network_create_read_and_filters(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    s = await _vertical_setting(registry, agency)
    lead, (a, b, c) = s["lead"], s["suppliers"]
    vertical_body = network_body(
        name="Pinto supplier development scheme",
        kind="vertical",
        cluster_id=s["cluster"]["id"],
        broker_id=s["broker"]["id"],
        members=[
            {"firm_id": lead["id"], "role": "lead_firm", "joined_on": "2024-04-01"},
            {"firm_id": a["id"], "role": "supplier"},
            {"firm_id": b["id"], "role": "supplier"},
        ],
        joint_actions=[
            {"kind": "supplier_upgrading", "started_on": "2024-04-01", "completed_on": "2024-10-01"},
            {"kind": "quality_improvement"},
        ],
        status="active",
        formed_on="2024-04-01",
    )
    created = await registry.post("/v1/networks", json=vertical_body, headers=headers)
    assert created.status_code == 201, created.text
    vertical = created.json()
    assert vertical["id"].startswith("net_")
    assert vertical["members"][0] == {"firm_id": lead["id"], "role": "lead_firm", "joined_on": "2024-04-01"}
    assert vertical["members"][1] == {"firm_id": a["id"], "role": "supplier", "joined_on": None}
    assert vertical["joint_actions"][0]["kind"] == "supplier_upgrading"
    assert (vertical["status"], vertical["cluster_id"], vertical["broker_id"]) == (
        "active",
        s["cluster"]["id"],
        s["broker"]["id"],
    )
    assert (await registry.get(f"/v1/networks/{vertical['id']}", headers=headers)).json() == vertical

    horizontal = await create(
        registry,
        "/v1/networks",
        network_body(members=[{"firm_id": b["id"], "role": "member"}, {"firm_id": c["id"], "role": "member"}]),
        agency,
    )
    assert horizontal["status"] == "forming"  # the default

    assert await ids(registry, "/v1/networks", kind="vertical") == [vertical["id"]]
    assert await ids(registry, "/v1/networks", status="forming") == [horizontal["id"]]
    assert await ids(registry, "/v1/networks", cluster_id=s["cluster"]["id"]) == [vertical["id"]]
    assert await ids(registry, "/v1/networks", broker_id=s["broker"]["id"]) == [vertical["id"]]
    assert await ids(registry, "/v1/networks", firm_id=a["id"]) == [vertical["id"]]
    assert await ids(registry, "/v1/networks", firm_id=c["id"]) == [horizontal["id"]]
    assert sorted(await ids(registry, "/v1/networks", firm_id=b["id"])) == sorted([vertical["id"], horizontal["id"]])
    assert await ids(registry, "/v1/networks", action="joint_purchase") == [horizontal["id"]]
    assert await ids(registry, "/v1/networks", action="supplier_upgrading") == [vertical["id"]]
    assert await ids(registry, "/v1/networks", q="supplier development") == [vertical["id"]]

    network_changes = [ch for ch in await feed_items(registry) if ch["entity"] == "network"]
    assert [(ch["entity_id"], ch["op"]) for ch in network_changes] == [
        (vertical["id"], "created"),
        (horizontal["id"], "created"),
    ]
    assert network_changes[0]["data"]["members"] == vertical["members"]


async def test_network_member_rules(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    s = await _vertical_setting(registry, agency)
    lead, (a, b, _c) = s["lead"], s["suppliers"]

    async def fields(kind: str, *members: tuple[str, str]) -> list[str]:
        body = network_body(kind=kind, members=[{"firm_id": f, "role": r} for f, r in members])
        return error_fields(await registry.post("/v1/networks", json=body, headers=headers))

    two_leads = await fields("vertical", (lead["id"], "lead_firm"), (a["id"], "supplier"), (b["id"], "lead_firm"))
    assert two_leads == ["members.2.role"]
    assert await fields("vertical", (a["id"], "supplier"), (b["id"], "supplier")) == ["members"]
    assert await fields("vertical", (lead["id"], "lead_firm"), (a["id"], "member")) == ["members.1.role"]
    assert await fields("horizontal", (a["id"], "member"), (b["id"], "supplier")) == ["members.1.role"]
    assert await fields("horizontal", (lead["id"], "lead_firm"), (a["id"], "member")) == ["members.0.role"]
    assert await fields("horizontal", (a["id"], "member"), (b["id"], "member"), (a["id"], "member")) == [
        "members.2.firm_id"
    ]
    bad_role = await fields("horizontal", (a["id"], "partner"))
    assert bad_role == ["members.0.role"]

    backwards = network_body(
        joint_actions=[{"kind": "training", "started_on": "2024-05-01", "completed_on": "2024-04-01"}]
    )
    assert error_fields(await registry.post("/v1/networks", json=backwards, headers=headers)) == ["joint_actions.0"]
    assert await ids(registry, "/v1/networks") == []  # nothing written

    # A PATCH that turns a horizontal network vertical without a lead firm leaves it invalid.
    horizontal = await create(
        registry, "/v1/networks", network_body(members=[{"firm_id": a["id"], "role": "member"}]), agency
    )
    patched = await registry.patch(
        f"/v1/networks/{horizontal['id']}", json={"kind": "vertical"}, headers=headers | {"If-Match": '"1"'}
    )
    assert error_fields(patched) == ["members", "members.0.role"]
    assert (await registry.get(f"/v1/networks/{horizontal['id']}", headers=headers)).json()["kind"] == "horizontal"


async def test_network_references(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    s = await _vertical_setting(registry, agency)
    lead, a = s["lead"], s["suppliers"][0]
    members = [{"firm_id": lead["id"], "role": "lead_firm"}, {"firm_id": a["id"], "role": "supplier"}]

    unknown_firm = network_body(kind="vertical", members=[members[0], {"firm_id": "frm_missing", "role": "supplier"}])
    assert error_fields(await registry.post("/v1/networks", json=unknown_firm, headers=headers)) == [
        "members.1.firm_id"
    ]
    unknown_refs = network_body(kind="vertical", members=members, cluster_id="clu_missing", broker_id="brk_missing")
    assert sorted(error_fields(await registry.post("/v1/networks", json=unknown_refs, headers=headers))) == [
        "broker_id",
        "cluster_id",
    ]

    network = await create(
        registry, "/v1/networks", network_body(kind="vertical", members=members, broker_id=s["broker"]["id"]), agency
    )
    for record, path in ((a, "/v1/firms"), (lead, "/v1/firms"), (s["broker"], "/v1/brokers")):
        blocked = await delete(registry, path, record, agency)
        assert blocked.status_code == 409, blocked.text
        assert blocked.json()["referenced_by"] == [{"entity": "network", "id": network["id"]}]

    # Once the network lets go of a supplier, the supplier can be deleted.
    patched = await registry.patch(
        f"/v1/networks/{network['id']}", json={"members": members[:1]}, headers=headers | {"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    assert await ids(registry, "/v1/networks", firm_id=a["id"]) == []
    assert (await delete(registry, "/v1/firms", a, agency)).status_code == 204

    other = await make_agency(registry, "Other agency")
    foreign = await registry.patch(
        f"/v1/networks/{network['id']}",
        json={"status": "dissolved"},
        headers=agency_headers(other) | {"If-Match": '"2"'},
    )
    assert foreign.status_code == 403


# Activities


async def test_activity_create_read_and_filters(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    programme = await create(registry, "/v1/programmes", programme_body(), agency)
    cluster = await create(registry, "/v1/clusters", cluster_body(programme_id=programme["id"]), agency)
    created = await registry.post(
        "/v1/activities",
        json=activity_body(programme_id=programme["id"], cluster_id=cluster["id"], description="ISO 9001 basics"),
        headers=headers,
    )
    assert created.status_code == 201, created.text
    workshop = created.json()
    assert workshop["id"].startswith("act_")
    assert workshop["participants"] == {
        "entrepreneurs": 25,
        "brokers": 2,
        "policy_makers": 0,
        "private_sector_leaders": 0,
        "academics": 0,
        "other": 0,
    }
    assert (workshop["start_date"], workshop["end_date"], workshop["women_participants"]) == (
        "2024-05-06",
        "2024-05-07",
        11,
    )
    assert (await registry.get(f"/v1/activities/{workshop['id']}", headers=headers)).json() == workshop

    fair = await create(
        registry,
        "/v1/activities",
        activity_body(title="Lima garment fair", kind="trade_fair", country="PE", subdivision=None, end_date=None),
        agency,
    )
    assert fair["participants"]["entrepreneurs"] == 25 and fair["end_date"] is None

    assert await ids(registry, "/v1/activities", kind="workshop") == [workshop["id"]]
    assert await ids(registry, "/v1/activities", programme_id=programme["id"]) == [workshop["id"]]
    assert await ids(registry, "/v1/activities", cluster_id=cluster["id"]) == [workshop["id"]]
    assert await ids(registry, "/v1/activities", country="PE") == [fair["id"]]
    assert await ids(registry, "/v1/activities", q="iso 9001") == [workshop["id"]]
    assert await ids(registry, "/v1/activities", q="fair") == [fair["id"]]


async def test_activity_rules_and_references(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    backwards = await registry.post("/v1/activities", json=activity_body(end_date="2024-05-01"), headers=headers)
    assert error_fields(backwards) == ["end_date"]
    negative = await registry.post("/v1/activities", json=activity_body(participants={"brokers": -1}), headers=headers)
    assert error_fields(negative) == ["participants.brokers"]
    unknown_group = await registry.post(
        "/v1/activities", json=activity_body(participants={"farmers": 3}), headers=headers
    )
    assert error_fields(unknown_group) == ["participants.farmers"]
    too_many_women = await registry.post("/v1/activities", json=activity_body(women_participants=28), headers=headers)
    assert error_fields(too_many_women) == ["women_participants"]  # of 27 participants
    wrong_place = await registry.post(
        "/v1/activities", json=activity_body(country="PE", subdivision="EC-I"), headers=headers
    )
    assert wrong_place.status_code == 422
    unknown = await registry.post(
        "/v1/activities", json=activity_body(programme_id="prg_missing", cluster_id="clu_missing"), headers=headers
    )
    assert sorted(error_fields(unknown)) == ["cluster_id", "programme_id"]
    assert await ids(registry, "/v1/activities") == []  # nothing written

    programme = await create(registry, "/v1/programmes", programme_body(), agency)
    activity = await create(registry, "/v1/activities", activity_body(programme_id=programme["id"]), agency)
    blocked = await delete(registry, "/v1/programmes", programme, agency)
    assert blocked.status_code == 409, blocked.text
    assert blocked.json()["referenced_by"] == [{"entity": "activity", "id": activity["id"]}]
    assert (await delete(registry, "/v1/activities", activity, agency)).status_code == 204
    assert (await delete(registry, "/v1/programmes", programme, agency)).status_code == 204
