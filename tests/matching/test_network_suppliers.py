"""A network (a consortium of the market's suppliers) as the supplier side of the loop,
through the gateway: linkages, invitations answered by a member or the agency, awards
naming the members' parts, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.matching.helpers import BID, Market, request_body
from tests.matching.test_consortia_api import VOLUME, eventually, network, shortlist
from tests.support import assert_problem

NETWORK_BID = {**BID, "capacity_offered": 20000}


async def listed_network(market: Market, *names: str, **fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A network of ``names`` and a stored shortlist listing it (ranked, or as a development candidate)."""
    group = await network(market, *names)

    async def listed() -> bool:
        found = await shortlist(market, include_development=True, **fields)
        consortia = found["consortia"]
        return any(i["network_id"] == group["id"] for i in consortia["items"] + consortia["development"])

    await eventually(listed)
    return group, await shortlist(market, include_development=True, **fields)


async def test_a_linkage_with_a_network_records_its_members(market: Market) -> None:
    s = market.suppliers
    group, found = await listed_network(market, "anna", "bala", "devi")
    linkage = await market.post(
        "/v1/linkages", {"shortlist_id": found["id"], "supplier_id": group["id"]}, market.lead_a
    )
    assert (linkage["supplier_kind"], linkage["stage"], linkage["gap"]) == ("network", "proposed", None)
    assert {m["name"] for m in linkage["members"]} == {"Anna Knits", "Bala Knits"}
    assert {m["quantity"] for m in linkage["members"]} == {None}
    assert {m["firm_id"]: m["share"] for m in linkage["members"]} == {s["anna"]: 0.5, s["bala"]: 0.5}
    again = await market.client.post(
        "/v1/linkages", json={"shortlist_id": found["id"], "supplier_id": group["id"]}, headers=market.lead_a
    )
    assert_problem(again, 409)
    listed = await market.client.get("/v1/linkages", params={"supplier_kind": "network"}, headers=market.lead_a)
    assert [i["id"] for i in listed.json()["items"]] == [linkage["id"]]
    # Firms' linkages say so too.
    firms = await market.client.get("/v1/linkages", params={"supplier_kind": "firm"}, headers=market.lead_a)
    assert linkage["id"] not in [i["id"] for i in firms.json()["items"]]
    # Another buyer's key: as if it did not exist.
    assert_problem(await market.client.get(f"/v1/linkages/{linkage['id']}", headers=market.lead_b), 404)

    # A development consortium keeps its gap and the member it names.
    volume = {"min_monthly_capacity": 30000, "capacity_unit": "pieces"}
    short = await shortlist(market, constraints=volume, include_development=True)
    [candidate] = short["consortia"]["development"]  # the same network: devi lacks one certificate
    developing = await market.post(
        "/v1/linkages", {"shortlist_id": short["id"], "supplier_id": candidate["network_id"]}, market.lead_a
    )
    assert developing["gap"] == {
        "kind": "certification",
        "scheme": "oeko-tex-100",
        "required_monthly_capacity": None,
        "available_monthly_capacity": None,
    }
    assert developing["gap_member_id"] == s["devi"] and linkage["gap_member_id"] is None
    assert {m["firm_id"] for m in developing["members"]} == {s["anna"], s["bala"], s["devi"]}

    # A network the shortlist does not list is refused, by field.
    other = await network(market, "bala", "chitra")
    refused = await market.client.post(
        "/v1/linkages", json={"shortlist_id": found["id"], "supplier_id": other["id"]}, headers=market.lead_a
    )
    assert_problem(refused, 422, field="supplier_id")


async def close(market: Market, rfq: dict[str, Any]) -> dict[str, str]:
    read = await market.client.get(f"/v1/requests/{rfq['id']}", headers=market.lead_a)
    closed = await market.client.post(
        f"/v1/requests/{rfq['id']}/close", headers=market.lead_a | {"If-Match": read.headers["ETag"]}
    )
    assert closed.status_code == 200, closed.text
    return {"If-Match": closed.headers["ETag"]}


async def test_a_network_is_invited_answers_by_a_member_and_is_awarded_by_shares(market: Market) -> None:
    client, s = market.client, market.suppliers
    group, found = await listed_network(market, "anna", "bala", "devi")
    rfq = await market.opened({"shortlist_id": found["id"], "supplier_ids": [group["id"]]})
    [invited] = rfq["invitations"]
    assert (invited["supplier_id"], invited["supplier_kind"], invited["name"]) == (
        group["id"],
        "network",
        group["name"],
    )
    assert {m["firm_id"]: m["share"] for m in invited["members"]} == {s["anna"]: 0.5, s["bala"]: 0.5}
    assert (await market.linkages(found["id"]))[group["id"]]["stage"] == "contacted"

    # Each counted member's own key sees the invitation; devi (not counted) and chitra do not.
    for name in ("anna", "bala"):
        inbox = (await client.get("/v1/invitations", headers=market.keys[name])).json()["items"]
        assert [r["id"] for r in inbox] == [rfq["id"]]
    for name in ("devi", "chitra"):
        assert (await client.get("/v1/invitations", headers=market.keys[name])).json()["items"] == []
        assert_problem(await client.get(f"/v1/requests/{rfq['id']}", headers=market.keys[name]), 404)
        answer = {**NETWORK_BID, "supplier_id": group["id"]}
        assert_problem(
            await client.post(f"/v1/requests/{rfq['id']}/answers", json=answer, headers=market.keys[name]), 404
        )
    # So does a broker of the agency working in the network's cluster; the other buyer does not.
    broker = await market.broker_key([market.cluster_id])
    assert rfq["id"] in [r["id"] for r in (await client.get("/v1/invitations", headers=broker)).json()["items"]]
    assert_problem(await client.get(f"/v1/requests/{rfq['id']}", headers=market.lead_b), 404)

    # A member answers for the network (it names it), and the answer says which member.
    answered = await client.post(
        f"/v1/requests/{rfq['id']}/answers",
        json={**NETWORK_BID, "supplier_id": group["id"]},
        headers=market.keys["bala"],
    )
    assert answered.status_code == 201, answered.text
    assert (answered.json()["member_id"], answered.json()["on_behalf"]) == (s["bala"], False)
    # The agency revises it on the network's behalf.
    path = f"/v1/requests/{rfq['id']}/answers/{group['id']}"
    revised = await client.put(
        path, json={**NETWORK_BID, "unit_price": 4.0}, headers=market.agency | {"If-Match": answered.headers["ETag"]}
    )
    assert revised.status_code == 200, revised.text
    assert (revised.json()["member_id"], revised.json()["on_behalf"], revised.json()["version"]) == (None, True, 2)
    seen = await client.get(path, headers=market.keys["anna"])
    assert seen.status_code == 200 and seen.json()["unit_price"] == 4.0
    assert (await market.linkages(found["id"]))[group["id"]]["stage"] == "qualified"

    etag = await close(market, rfq)
    awards_path = f"/v1/requests/{rfq['id']}/awards"
    for members, field in (
        ([{"firm_id": s["devi"], "quantity": 20000}], "awards.0.members.0.firm_id"),  # not counted: no member
        ([{"firm_id": s["anna"], "quantity": 15000}, {"firm_id": s["bala"], "quantity": 4000}], "awards.0.members"),
        (
            [{"firm_id": s["anna"], "quantity": 10000}, {"firm_id": s["anna"], "quantity": 10000}],
            "awards.0.members.1.firm_id",
        ),
        (
            [{"firm_id": s["anna"], "quantity": -1}, {"firm_id": s["bala"], "quantity": 20001}],
            "awards.0.members.0.quantity",
        ),
    ):
        award = {"supplier_id": group["id"], "quantity": 20000, "members": members}
        refused = await client.post(awards_path, json={"awards": [award]}, headers=market.lead_a | etag)
        assert_problem(refused, 422, field=field)
    explicit = [{"firm_id": s["anna"], "quantity": 15000}, {"firm_id": s["bala"], "quantity": 5000}]
    awarded = await client.post(
        awards_path,
        json={"awards": [{"supplier_id": group["id"], "quantity": 20000, "members": explicit}]},
        headers=market.lead_a | etag,
    )
    assert awarded.status_code == 200, awarded.text
    [invitation] = awarded.json()["invitations"]
    expected = [
        {"firm_id": s["anna"], "name": "Anna Knits", "share": 0.75, "quantity": 15000},
        {"firm_id": s["bala"], "name": "Bala Knits", "share": 0.25, "quantity": 5000},
    ]
    assert (invitation["status"], invitation["awarded_quantity"], invitation["awarded_members"]) == (
        "awarded",
        20000,
        expected,
    )
    linkage = (await market.linkages(found["id"]))[group["id"]]
    assert (linkage["stage"], linkage["supplier_kind"], linkage["members"]) == ("contracted", "network", expected)
    # A member sees the award of its network.
    own = (await client.get(f"/v1/requests/{rfq['id']}", headers=market.keys["anna"])).json()
    assert own["invitations"][0]["awarded_members"] == expected


async def test_top_of_a_consortium_shortlist_invites_its_consortia_awarded_by_listed_shares(market: Market) -> None:
    client, s = market.client, market.suppliers
    group, _ = await listed_network(market, "anna", "bala", "chitra")
    standards = {"constraints": {"isic_codes": ["143"], **VOLUME}, "include_consortia": True}
    rfq = await market.opened({"shortlist": standards, "top": 5})
    # No firm reaches 20,000 pieces alone: the network is the only invitation.
    assert [(i["supplier_id"], i["supplier_kind"]) for i in rfq["invitations"]] == [(group["id"], "network")]
    for_network = {**NETWORK_BID, "supplier_id": group["id"]}
    answered = await client.post(f"/v1/requests/{rfq['id']}/answers", json=for_network, headers=market.agency)
    assert answered.status_code == 201, answered.text
    assert (answered.json()["on_behalf"], answered.json()["member_id"]) == (True, None)
    etag = await close(market, rfq)
    # Without members, each gets the share its shortlist listed.
    awarded = await client.post(
        f"/v1/requests/{rfq['id']}/awards",
        json={"awards": [{"supplier_id": group["id"], "quantity": 18000}]},
        headers=market.lead_a | etag,
    )
    assert awarded.status_code == 200, awarded.text
    [invitation] = awarded.json()["invitations"]
    parts = {m["firm_id"]: (round(m["share"], 6), round(m["quantity"], 3)) for m in invitation["awarded_members"]}
    assert parts == {name: (round(1 / 3, 6), 6000.0) for name in (s["anna"], s["bala"], s["chitra"])}
    linkage = (await market.linkages(rfq["shortlist_id"]))[group["id"]]
    assert linkage["stage"] == "contracted" and linkage["members"] == invitation["awarded_members"]


async def test_members_on_a_firm_award_are_refused(market: Market) -> None:
    client, s = market.client, market.suppliers
    found = await market.shortlist()
    rfq = await market.opened({"shortlist_id": found["id"], "supplier_ids": [s["anna"]]})
    answered = await client.post(f"/v1/requests/{rfq['id']}/answers", json=BID, headers=market.keys["anna"])
    assert answered.status_code == 201, answered.text
    assert answered.json()["member_id"] is None
    etag = await close(market, rfq)
    award = {"supplier_id": s["anna"], "quantity": 100, "members": [{"firm_id": s["anna"], "quantity": 100}]}
    refused = await client.post(
        f"/v1/requests/{rfq['id']}/awards", json={"awards": [award]}, headers=market.lead_a | etag
    )
    assert_problem(refused, 422, field="awards.0.members")
    # Nothing was written: the request is still closed, its linkage qualified.
    assert (await client.get(f"/v1/requests/{rfq['id']}", headers=market.lead_a)).json()["status"] == "closed"
    assert (await market.linkages(found["id"]))[s["anna"]]["stage"] == "qualified"


async def test_invitations_follow_the_draft_and_the_registry(market: Market) -> None:
    client, s = market.client, market.suppliers
    group, found = await listed_network(market, "anna", "bala")
    draft = await market.request({"shortlist_id": found["id"], "supplier_ids": [group["id"]]})
    # The draft now invites devi instead: the network's members no longer act on it.
    plain = await market.shortlist()
    changed = await client.patch(
        f"/v1/requests/{draft['id']}",
        json={"invite": {"shortlist_id": plain["id"], "supplier_ids": [s["devi"]]}},
        headers=market.lead_a | {"If-Match": f'"{draft["version"]}"'},
    )
    assert changed.status_code == 200, changed.text
    opened = await client.post(
        f"/v1/requests/{draft['id']}/open", headers=market.lead_a | {"If-Match": changed.headers["ETag"]}
    )
    assert opened.status_code == 200, opened.text
    assert (await client.get("/v1/invitations", headers=market.keys["anna"])).json()["items"] == []
    assert [r["id"] for r in (await client.get("/v1/invitations", headers=market.keys["devi"])).json()["items"]] == [
        draft["id"]
    ]
    # A network gone dormant since its shortlist is no longer invited, by field.
    network = await client.get(f"/v1/networks/{group['id']}", headers=market.agency)
    dormant = await client.patch(
        f"/v1/networks/{group['id']}",
        json={"status": "dormant"},
        headers=market.agency | {"If-Match": network.headers["ETag"]},
    )
    assert dormant.status_code == 200, dormant.text
    invite = {"shortlist_id": found["id"], "supplier_ids": [group["id"]]}
    refused = await client.post("/v1/requests", json=request_body(invite), headers=market.lead_a)
    assert_problem(refused, 422, field="invite.supplier_ids.0")


async def test_a_network_linkage_is_scored_for_the_network_agency(market: Market) -> None:
    """A delivery of a contracted network is scored against the network; the network's
    agency reads it and may appeal it on its behalf; another buyer sees nothing."""
    group, found = await listed_network(market, "anna", "bala")
    linkage = await market.post(
        "/v1/linkages", {"shortlist_id": found["id"], "supplier_id": group["id"], "stage": "contracted"}, market.lead_a
    )
    delivery = {"kind": "delivery", "quantity": 1000, "accepted_quantity": 950, "due_on": "2026-10-01"}
    scored = await market.post(
        f"/v1/linkages/{linkage['id']}/scorecards", delivery | {"delivered_on": "2026-09-28"}, market.lead_a
    )
    assert scored["supplier_id"] == group["id"]
    listed = await market.client.get("/v1/scorecards", headers=market.agency)
    assert scored["id"] in [c["id"] for c in listed.json()["items"]]
    appealed = await market.client.post(
        f"/v1/scorecards/{scored['id']}/appeal", json={"reason": "the goods were accepted"}, headers=market.agency
    )
    assert appealed.status_code == 200, appealed.text
    assert_problem(await market.client.get(f"/v1/scorecards/{scored['id']}", headers=market.lead_b), 404)
