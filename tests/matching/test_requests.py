"""Requests for quotation through the gateway: invite, answer, clarify, close, award,
and the linkages that follow, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.matching.helpers import BID, KNITWEAR, Market, later, request_body
from tests.registry.helpers import cluster_body
from tests.support import assert_problem


async def test_the_loop_from_invitation_to_award(market: Market) -> None:
    client, s = market.client, market.suppliers
    shortlist = await market.shortlist()
    invite = {"shortlist_id": shortlist["id"], "supplier_ids": [s["anna"], s["bala"], s["chitra"], s["devi"]]}
    draft = await market.request(invite)
    assert draft["status"] == "draft" and draft["buyer_firm_id"]
    ranked = {i["supplier_id"]: i for i in draft["invitations"]}
    assert ranked[s["devi"]]["development"] and ranked[s["devi"]]["gap"]["scheme"] == "oeko-tex-100"
    assert ranked[s["anna"]]["rank"] == 1 and ranked[s["anna"]]["criteria"]

    # A draft is the buyer's alone.
    assert (await client.get(f"/v1/requests/{draft['id']}", headers=market.keys["anna"])).status_code == 404
    assert (await client.get("/v1/invitations", headers=market.keys["anna"])).json()["items"] == []
    assert await market.linkages(shortlist["id"]) == {}

    opened = await market.opened(invite)
    rfq = opened["id"]
    assert opened["status"] == "open"
    assert {k["stage"] for k in (await market.linkages(shortlist["id"])).values()} == {"contacted"}

    # A supplier sees its own invitation only, with its gap when it is a development candidate.
    inbox = (await client.get("/v1/invitations", headers=market.keys["devi"])).json()["items"]
    [seen] = [i for i in inbox if i["id"] == rfq]
    assert [i["supplier_id"] for i in seen["invitations"]] == [s["devi"]]
    assert seen["invitations"][0]["gap"]["scheme"] == "oeko-tex-100"

    anna = await client.post(f"/v1/requests/{rfq}/answers", json=BID, headers=market.keys["anna"])
    assert anna.status_code == 201, anna.text
    assert anna.json()["on_behalf"] is False and anna.json()["version"] == 1
    again = await client.post(f"/v1/requests/{rfq}/answers", json=BID, headers=market.keys["anna"])
    assert_problem(again, 409)

    # The agency answers for a micro firm with no one online; the supplier sees who did.
    for_bala = await client.post(
        f"/v1/requests/{rfq}/answers",
        json={**BID, "unit_price": 4.4, "supplier_id": s["bala"], "capacity_offered": 8000},
        headers=market.agency,
    )
    assert for_bala.status_code == 201, for_bala.text
    own = await client.get(f"/v1/requests/{rfq}/answers/{s['bala']}", headers=market.keys["bala"])
    assert own.status_code == 200 and own.json()["on_behalf"] is True
    assert own.json()["submitted_by_role"] == "agency"

    # So may a broker working in the supplier's cluster; one working elsewhere may not.
    no_bid = {"kind": "no_bid", "no_bid_reason": "capacity", "supplier_id": s["chitra"]}
    elsewhere = await market.post("/v1/clusters", cluster_body(country="IN", subdivision="IN-KA"), market.agency)
    outsider = await market.broker_key([elsewhere["id"]])
    assert_problem(await client.post(f"/v1/requests/{rfq}/answers", json=no_bid, headers=outsider), 404)
    assert (await client.get("/v1/invitations", headers=outsider)).json()["items"] == []
    broker = await market.broker_key([market.cluster_id])
    assert rfq in [r["id"] for r in (await client.get("/v1/invitations", headers=broker)).json()["items"]]
    chitra = await client.post(f"/v1/requests/{rfq}/answers", json=no_bid, headers=broker)
    assert chitra.status_code == 201, chitra.text
    assert (chitra.json()["on_behalf"], chitra.json()["submitted_by_role"]) == (True, "broker")

    # Revisable until the deadline, with the answer's ETag.
    path = f"/v1/requests/{rfq}/answers/{s['anna']}"
    body = {k: v for k, v in BID.items()} | {"unit_price": 4.1}
    assert_problem(await client.put(path, json=body, headers=market.keys["anna"]), 428)
    revised = await client.put(path, json=body, headers=market.keys["anna"] | {"If-Match": anna.headers["ETag"]})
    assert revised.status_code == 200 and revised.json()["unit_price"] == 4.1 and revised.json()["version"] == 2
    stale = await client.put(path, json=body, headers=market.keys["anna"] | {"If-Match": anna.headers["ETag"]})
    assert_problem(stale, 412)

    # Suppliers never see one another.
    assert (await client.get(path, headers=market.keys["bala"])).status_code == 404
    seen_by_bala = (await client.get(f"/v1/requests/{rfq}", headers=market.keys["bala"])).json()
    assert [i["supplier_id"] for i in seen_by_bala["invitations"]] == [s["bala"]]

    # A clarification thread per supplier.
    question = {"supplier_id": s["anna"], "body": "Can you do a 5 kg/m2 knit?"}
    assert (await client.post(f"/v1/requests/{rfq}/messages", json=question, headers=market.lead_a)).status_code == 201
    reply = await client.post(f"/v1/requests/{rfq}/messages", json={"body": "Yes."}, headers=market.keys["anna"])
    assert reply.status_code == 201, reply.text
    thread = await client.get(f"/v1/requests/{rfq}/messages", params={"supplier_id": s["anna"]}, headers=market.lead_a)
    assert [(m["side"], m["body"]) for m in thread.json()["items"]] == [
        ("buyer", question["body"]),
        ("supplier", "Yes."),
    ]
    others = await client.get(f"/v1/requests/{rfq}/messages", headers=market.keys["bala"])
    assert others.status_code == 200 and others.json()["items"] == []

    # Linkages followed: bids are qualified.
    stages = {k: v["stage"] for k, v in (await market.linkages(shortlist["id"])).items()}
    assert stages == {s["anna"]: "qualified", s["bala"]: "qualified", s["chitra"]: "contacted", s["devi"]: "contacted"}

    # The buyer compares side by side, then closes early and awards.
    compared = (await client.get(f"/v1/requests/{rfq}", headers=market.lead_a)).json()
    answers = {i["supplier_id"]: i for i in compared["invitations"]}
    assert answers[s["anna"]]["answer"]["unit_price"] == 4.1 and answers[s["anna"]]["score"] > 0
    assert answers[s["devi"]]["status"] == "invited" and answers[s["devi"]]["answer"] is None
    etag = {"If-Match": f'"{compared["version"]}"'}
    early = await client.post(f"/v1/requests/{rfq}/awards", json={"awards": []}, headers=market.lead_a | etag)
    assert_problem(early, 422)
    not_closed = await client.post(
        f"/v1/requests/{rfq}/awards",
        json={"awards": [{"supplier_id": s["anna"], "quantity": 1}]},
        headers=market.lead_a | etag,
    )
    assert_problem(not_closed, 409)
    closed = await client.post(f"/v1/requests/{rfq}/close", headers=market.lead_a | etag)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    late = await client.post(f"/v1/requests/{rfq}/answers", json=BID, headers=market.keys["devi"])
    assert_problem(late, 409)
    etag = {"If-Match": closed.headers["ETag"]}

    for awards, field in (
        ([{"supplier_id": s["chitra"], "quantity": 100}], "awards.0.supplier_id"),  # did not bid
        ([{"supplier_id": market.suppliers["devi"], "quantity": 100}], "awards.0.supplier_id"),  # no answer
        (
            [{"supplier_id": s["anna"], "quantity": 12000}, {"supplier_id": s["bala"], "quantity": 8001}],
            "awards.1.quantity",
        ),
        ([{"supplier_id": "firm_nobody", "quantity": 1}], "awards.0.supplier_id"),
    ):
        refused = await client.post(f"/v1/requests/{rfq}/awards", json={"awards": awards}, headers=market.lead_a | etag)
        assert_problem(refused, 422, field=field)
    awarded = await client.post(
        f"/v1/requests/{rfq}/awards",
        json={"awards": [{"supplier_id": s["anna"], "quantity": 12000}, {"supplier_id": s["bala"], "quantity": 8000}]},
        headers=market.lead_a | etag,
    )
    assert awarded.status_code == 200, awarded.text
    statuses = {i["supplier_id"]: (i["status"], i["awarded_quantity"]) for i in awarded.json()["invitations"]}
    assert statuses == {
        s["anna"]: ("awarded", 12000),
        s["bala"]: ("awarded", 8000),
        s["chitra"]: ("no_bid", None),
        s["devi"]: ("no_answer", None),
    }
    linkages = await market.linkages(shortlist["id"])
    assert {k: v["stage"] for k, v in linkages.items()} == {
        s["anna"]: "contracted",
        s["bala"]: "contracted",
        s["chitra"]: "dropped",
        s["devi"]: "dropped",
    }
    assert [e["stage"] for e in linkages[s["anna"]]["history"]] == ["proposed", "contacted", "qualified", "contracted"]
    assert linkages[s["chitra"]]["history"][-1]["note"] == f"no bid to request {rfq}"
    assert linkages[s["devi"]]["history"][-1]["note"] == f"no answer by the deadline to request {rfq}"


async def test_the_deadline_closes_answers(market: Market) -> None:
    client, s = market.client, market.suppliers
    opened = await market.opened({"shortlist": {"constraints": KNITWEAR["constraints"]}, "top": 2})
    rfq = opened["id"]
    assert [i["supplier_id"] for i in opened["invitations"]] == [s["anna"], s["bala"]]
    bid = await client.post(f"/v1/requests/{rfq}/answers", json=BID, headers=market.keys["anna"])
    assert bid.status_code == 201

    market.set_clock(datetime.now(UTC) + timedelta(days=8))  # past respond_by
    seen = (await client.get(f"/v1/requests/{rfq}", headers=market.lead_a)).json()
    assert seen["status"] == "closed"
    assert_problem(await client.post(f"/v1/requests/{rfq}/answers", json=BID, headers=market.keys["bala"]), 409)
    revise = await client.put(
        f"/v1/requests/{rfq}/answers/{s['anna']}", json=BID, headers=market.keys["anna"] | {"If-Match": '"1"'}
    )
    assert_problem(revise, 409)
    listed = await client.get("/v1/requests", params={"status": "closed"}, headers=market.lead_a)
    assert rfq in [r["id"] for r in listed.json()["items"]]

    # The sweeper records the close without waiting for the buyer: no answer is final.
    assert await market.stack.apps["matching"].state.deadlines.sweep() == 1
    assert await market.stack.apps["matching"].state.deadlines.sweep() == 0
    seen = (await client.get(f"/v1/requests/{rfq}", headers=market.lead_a)).json()
    assert seen["history"][-1]["by"] == "deadline"
    assert {i["supplier_id"]: i["status"] for i in seen["invitations"]} == {s["anna"]: "bid", s["bala"]: "no_answer"}
    stages = {k: v["stage"] for k, v in (await market.linkages(opened["shortlist_id"])).items()}
    assert stages == {s["anna"]: "qualified", s["bala"]: "dropped"}

    awarded = await client.post(
        f"/v1/requests/{rfq}/awards",
        json={"awards": [{"supplier_id": s["anna"], "quantity": 5000}]},
        headers=market.lead_a | {"If-Match": f'"{seen["version"]}"'},
    )
    assert awarded.status_code == 200, awarded.text
    history = [e["status"] for e in awarded.json()["history"]]
    assert history == ["draft", "open", "closed", "awarded"]
    stages = {k: v["stage"] for k, v in (await market.linkages(opened["shortlist_id"])).items()}
    assert stages == {s["anna"]: "contracted", s["bala"]: "dropped"}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # rules, not storage: one backend is enough
async def test_drafts_change_open_requests_extend_or_cancel(market: Market) -> None:
    client, s = market.client, market.suppliers
    shortlist = await market.shortlist()
    draft = await market.request({"shortlist_id": shortlist["id"], "supplier_ids": [s["anna"]]})
    path = f"/v1/requests/{draft['id']}"
    assert_problem(await client.patch(path, json={"quantity": 100}, headers=market.lead_a), 428)
    changed = await client.patch(
        path,
        json={"quantity": 100, "invite": {"shortlist_id": shortlist["id"], "supplier_ids": [s["anna"], s["bala"]]}},
        headers=market.lead_a | {"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["quantity"] == 100 and len(changed.json()["invitations"]) == 2
    inconsistent = await client.patch(path, json={"target_price": None}, headers=market.lead_a | {"If-Match": '"2"'})
    assert_problem(inconsistent, 422, field="target_price")

    opened = await client.post(f"{path}/open", headers=market.lead_a | {"If-Match": '"2"'})
    assert opened.status_code == 200
    etag = {"If-Match": opened.headers["ETag"]}
    assert_problem(await client.patch(path, json={"quantity": 5}, headers=market.lead_a | etag), 409)
    assert_problem(await client.post(f"{path}/open", headers=market.lead_a | etag), 409)
    sooner = await client.post(f"{path}/extend", json={"respond_by": later(1)}, headers=market.lead_a | etag)
    assert_problem(sooner, 422, field="respond_by")
    extended = await client.post(f"{path}/extend", json={"respond_by": later(10)}, headers=market.lead_a | etag)
    assert extended.status_code == 200, extended.text
    assert extended.json()["history"][-1]["note"].startswith("deadline moved from")

    cancelled = await client.post(
        f"{path}/cancel",
        json={"reason": "design changed"},
        headers=market.lead_a | {"If-Match": extended.headers["ETag"]},
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert {i["status"] for i in cancelled.json()["invitations"]} == {"cancelled"}
    stages = {k: (v["stage"], v["history"][-1]["note"]) for k, v in (await market.linkages(shortlist["id"])).items()}
    assert stages[s["anna"]] == ("dropped", f"request {draft['id']} cancelled: design changed")
    answer = await client.post(f"{path}/answers", json=BID, headers=market.keys["anna"])
    assert_problem(answer, 409)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # rules, not storage: one backend is enough
async def test_requests_stay_with_their_parties(market: Market) -> None:
    client, s = market.client, market.suppliers
    shortlist = await market.shortlist()
    opened = await market.opened({"shortlist_id": shortlist["id"], "supplier_ids": [s["anna"]]})
    path = f"/v1/requests/{opened['id']}"
    etag = {"If-Match": f'"{opened["version"]}"'}
    # Another lead firm, and a supplier not invited, learn nothing.
    for headers in (market.lead_b, market.keys["bala"]):
        assert_problem(await client.get(path, headers=headers), 404)
        assert_problem(await client.get(f"{path}/messages", params={"supplier_id": s["anna"]}, headers=headers), 404)
    assert_problem(await client.post(f"{path}/answers", json=BID, headers=market.keys["bala"]), 404)
    assert_problem(
        await client.post(f"{path}/answers", json={**BID, "supplier_id": s["anna"]}, headers=market.keys["bala"]), 404
    )
    assert_problem(await client.post(f"{path}/close", headers=market.lead_b | etag), 404)
    # The invited supplier cannot act as the buyer.
    assert_problem(await client.post(f"{path}/close", headers=market.keys["anna"] | etag), 403)
    invite = {"shortlist_id": shortlist["id"], "supplier_ids": [s["anna"]]}
    assert_problem(await client.post("/v1/requests", json=request_body(invite), headers=market.keys["anna"]), 403)
    # A lead firm cannot invite from another's shortlist.
    theirs = await market.post("/v1/shortlists", KNITWEAR, market.lead_b)
    response = await client.post(
        "/v1/requests",
        json=request_body({"shortlist_id": theirs["id"], "supplier_ids": [s["anna"]]}),
        headers=market.lead_a,
    )
    assert_problem(response, 422, field="invite.shortlist_id")


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"respond_by": "2030-01-01T00:00:00"}, "respond_by"),  # no time zone
    ({"target_price": 4.0, "currency": None}, "currency"),
    ({"currency": "XYZ"}, "currency"),
    ({"quantity": 0}, "quantity"),
    ({"delivery": {}}, "delivery.point"),
    ({"delivery": {"country": "IN", "subdivision": "EC-P"}}, "delivery.subdivision"),
    ({"needed_by": date.today().isoformat()}, "needed_by"),  # before respond_by
]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # rules, not storage: one backend is enough
async def test_bad_requests_are_refused(market: Market) -> None:
    shortlist = await market.shortlist()
    invite = {"shortlist_id": shortlist["id"], "supplier_ids": [market.suppliers["anna"]]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"invite": invite | {"supplier_ids": ["firm_nobody"]}}, "invite.supplier_ids.0"),
        ({"invite": invite | {"supplier_ids": [market.suppliers["anna"]] * 2}}, "invite.supplier_ids.1"),
        ({"invite": {"shortlist": {"constraints": {"countries": ["EC"]}}, "top": 3}}, "invite.shortlist"),
    ]
    for fields, field in BAD_REQUESTS + cases:
        response = await market.client.post("/v1/requests", json=request_body(invite) | fields, headers=market.lead_a)
        problem = assert_problem(response, 422)
        assert any(e["field"].startswith(field) for e in problem["errors"]), (fields, problem)
    listed = await market.client.get("/v1/requests", headers=market.lead_a)
    assert listed.json()["items"] == []  # nothing half-written


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # rules, not storage: one backend is enough
async def test_bad_answers_are_refused(market: Market) -> None:
    s = market.suppliers
    shortlist = await market.shortlist()
    opened = await market.opened({"shortlist_id": shortlist["id"], "supplier_ids": [s["anna"], s["bala"]]})
    path = f"/v1/requests/{opened['id']}/answers"
    for body, field in (
        ({"kind": "bid"}, "unit_price"),
        ({**BID, "currency": "EUR"}, "currency"),
        ({**BID, "capacity_offered": 20001}, "capacity_offered"),
        ({"kind": "no_bid"}, "no_bid_reason"),
        ({"kind": "no_bid", "no_bid_reason": "bored"}, "no_bid_reason"),
        ({**BID, "no_bid_reason": "price"}, "no_bid_reason"),
    ):
        problem = assert_problem(await market.client.post(path, json=body, headers=market.keys["anna"]), 422)
        assert any(e["field"].startswith(field) for e in problem["errors"]), (body, problem)
    # An agency answering must say for whom.
    assert_problem(await market.client.post(path, json=BID, headers=market.agency), 422, field="supplier_id")
    seen = (await market.client.get(f"/v1/requests/{opened['id']}", headers=market.lead_a)).json()
    assert {i["status"] for i in seen["invitations"]} == {"invited"}  # nothing half-written
