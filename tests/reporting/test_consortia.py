"""Consortium indicators from a day of the market through the gateway: shortlists that list
networks, linkages with a network as the supplier (one proposed by hand, one contracted by
a request's award to one member), and the SMEs those reach; expected figures worked out
from the documents the matching API returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.matching.helpers import ADMIN, BID, KNITWEAR, Market
from tests.matching.test_consortia_api import VOLUME
from tests.matching.test_network_suppliers import close, listed_network
from tests.reporting.dataset import caught_up
from tests.support import Stack

KEYS = ("consortium_shortlists_issued", "network_linkages_by_stage", "smes_reached_through_consortia")


async def figures(stack: Stack, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    response = await stack.client.get("/v1/indicators", params={"from": today, "to": today} | params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()["indicators"]
    return {key: (body[key]["value"], body[key]["breakdown"]) for key in body}


async def all_shortlists(market: Market) -> list[dict[str, Any]]:
    response = await market.client.get("/v1/shortlists", params={"limit": 200}, headers=market.lead_a)
    assert response.status_code == 200 and response.json()["next_cursor"] is None, response.text
    return list(response.json()["items"])


async def test_consortium_indicators(whole_platform: Stack) -> None:
    market = await Market(whole_platform).setup()
    client, s = market.client, market.suppliers
    first, found = await listed_network(market, "anna", "bala", "devi")
    second, found = await listed_network(market, "bala", "chitra")
    assert {i["network_id"] for i in found["consortia"]["items"]} == {first["id"], second["id"]}
    # Not consortium shortlists: none asked, or none listed.
    await market.shortlist()
    await market.post(
        "/v1/shortlists",
        {
            "constraints": KNITWEAR["constraints"] | {**VOLUME, "min_monthly_capacity": 900000},
            "include_consortia": True,
        },
        market.lead_a,
    )
    # A firm's linkage, and a network's proposed by hand.
    await market.post("/v1/linkages", {"shortlist_id": found["id"], "supplier_id": first["id"]}, market.lead_a)
    plain = await market.shortlist()
    await market.post("/v1/linkages", {"shortlist_id": plain["id"], "supplier_id": s["anna"]}, market.lead_a)
    # The second network is invited, answers through bala, and chitra is awarded it all.
    rfq = await market.opened({"shortlist_id": found["id"], "supplier_ids": [second["id"]]})
    answer = {**BID, "capacity_offered": 20000, "supplier_id": second["id"]}
    answered = await client.post(f"/v1/requests/{rfq['id']}/answers", json=answer, headers=market.keys["bala"])
    assert answered.status_code == 201, answered.text
    etag = await close(market, rfq)
    award = {"supplier_id": second["id"], "quantity": 20000, "members": [{"firm_id": s["chitra"], "quantity": 20000}]}
    awarded = await client.post(
        f"/v1/requests/{rfq['id']}/awards", json={"awards": [award]}, headers=market.lead_a | etag
    )
    assert awarded.status_code == 200, awarded.text
    other = await client.post("/v1/agencies", json={"name": "Elsewhere", "country": "EC"}, headers=ADMIN)
    await caught_up(whole_platform)

    # Worked out from matching's own documents.
    listing = [
        sl
        for sl in await all_shortlists(market)
        if sl["consortia"] and (sl["consortia"]["items"] or sl["consortia"]["development"])
    ]
    linkages = (await client.get("/v1/linkages", params={"supplier_kind": "network"}, headers=market.lead_a)).json()
    stages = {stage: 0 for stage in ("proposed", "contacted", "qualified", "contracted", "active", "dropped")}
    reached: set[str] = set()
    for linkage in linkages["items"]:
        stages[linkage["stage"]] += 1
        if linkage["stage"] != "dropped":
            reached |= {m["firm_id"] for m in linkage["members"]}
    want = {
        "consortium_shortlists_issued": (len(listing), None),
        "network_linkages_by_stage": (len(linkages["items"]), stages),
        "smes_reached_through_consortia": (len(reached), None),
    }
    # The same, stated by hand: the polling shortlists of listed_network count too.
    assert len(listing) >= 2 and stages["proposed"] == 1
    assert (want["network_linkages_by_stage"][0], stages["contracted"]) == (2, 1)
    assert reached == {s["anna"], s["bala"], s["chitra"]}  # the first's counted members, the second's awarded

    everything = await figures(whole_platform, ADMIN)
    assert {k: everything[k] for k in KEYS} == want
    # linkages_by_stage counts the networks' linkages too: the firm's, and the two.
    assert everything["linkages_by_stage"][0] == 3

    # Scopes: the networks' cluster and agency hold everything; another agency and country nothing.
    in_cluster = await figures(whole_platform, ADMIN, cluster_id=market.cluster_id)
    assert {k: in_cluster[k] for k in KEYS} == want
    assert in_cluster["linkages_by_stage"][0] == 3  # a network in the cluster puts its linkage in it
    # and its invitation: the request inviting only the network is issued in the cluster.
    assert everything["requests_issued"][0] == 1 and in_cluster["requests_issued"] == everything["requests_issued"]
    assert {k: v for k, v in (await figures(whole_platform, market.agency)).items() if k in KEYS} == want
    for scope in ({"agency_id": other.json()["id"]}, {"country": "EC"}):
        outside = await figures(whole_platform, ADMIN, **scope)
        assert all(outside[k][0] == 0 for k in KEYS), (scope, outside)
    before = await figures(whole_platform, ADMIN, **{"from": "2020-01-01", "to": "2020-12-31"})
    assert all(before[k][0] == 0 for k in KEYS), before
