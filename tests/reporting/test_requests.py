"""Request, delivery and linkage-funnel indicators from a month of requests for quotation.

The shared request market of ``tests/matching/helpers.py`` (four suppliers, one a
development candidate) runs through March 2026 on matching's clock: three requests
opened (one awarded to the development candidate, one left open past its deadline,
one cancelled), a draft never opened, answers (one by the agency on the supplier's
behalf) and scorecards (one under appeal). Each expected figure is worked out here
from the documents the matching API returns, following the definitions.
"""

from __future__ import annotations

import statistics
from datetime import date, datetime
from typing import Any

from services.reporting.indicators.definitions import DEFINITIONS, REQUESTS
from tests.matching.helpers import ADMIN, BID, Market, request_body
from tests.reporting.dataset import caught_up
from tests.support import Stack

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
NO_BID = {"kind": "no_bid", "no_bid_reason": "capacity"}
STAGES = ("proposed", "contacted", "qualified", "contracted", "active")
KEYS = tuple(d.key for d in DEFINITIONS if d.section == REQUESTS)  # the indicators of this scenario


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


class Month:
    """The scenario: each step on its own day of matching's clock."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.client = market.client
        self.requests: list[str] = []

    async def call(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> dict[str, Any]:
        response = await self.client.request(method, path, json=body, headers=headers)
        assert response.status_code in (200, 201), f"{path}: {response.text}"
        return dict(response.json())

    async def request(self, on: datetime, invite: dict[str, Any], respond_by: str, *, open_it: bool = True) -> str:
        self.market.set_clock(on)
        body = request_body(invite, respond_by=respond_by, needed_by="2026-06-30")
        draft = await self.call("POST", "/v1/requests", self.market.lead_a, body)
        if open_it:
            await self.act(on, f"/v1/requests/{draft['id']}/open", draft["version"])
        self.requests.append(draft["id"])
        return str(draft["id"])

    async def act(self, on: datetime, path: str, version: int, body: Any = None) -> dict[str, Any]:
        self.market.set_clock(on)
        return await self.call("POST", path, self.market.lead_a | {"If-Match": f'"{version}"'}, body)

    async def answer(self, on: datetime, request_id: str, answer: dict[str, Any], headers: dict[str, str]) -> None:
        self.market.set_clock(on)
        await self.call("POST", f"/v1/requests/{request_id}/answers", headers, answer)

    async def version(self, request_id: str) -> int:
        return int((await self.call("GET", f"/v1/requests/{request_id}", self.market.lead_a))["version"])

    async def play(self) -> None:
        s, keys, agency = self.market.suppliers, self.market.keys, self.market.agency
        first, second = await self.market.shortlist(), await self.market.shortlist()
        self.shortlists = [first["id"], second["id"]]
        everyone = {"shortlist_id": first["id"], "supplier_ids": [s["anna"], s["bala"], s["chitra"], s["devi"]]}
        awarded = await self.request(at("2026-03-02"), everyone, "2026-03-09T12:00:00Z")
        await self.answer(at("2026-03-03"), awarded, BID, keys["anna"])
        on_behalf = BID | {"supplier_id": s["devi"], "capacity_offered": 8000}
        await self.answer(at("2026-03-04"), awarded, on_behalf, agency)  # the agency for the micro firm
        await self.answer(at("2026-03-05"), awarded, NO_BID, keys["bala"])
        await self.act(at("2026-03-06"), f"/v1/requests/{awarded}/close", await self.version(awarded))
        award = {"awards": [{"supplier_id": s["devi"], "quantity": 8000}]}
        await self.act(at("2026-03-09"), f"/v1/requests/{awarded}/awards", await self.version(awarded), award)

        # Left open past its deadline: the feed still shows it open, reporting takes the deadline.
        two = {"shortlist_id": second["id"], "supplier_ids": [s["anna"], s["chitra"]]}
        await self.request(at("2026-03-16"), two, "2026-03-20T12:00:00Z")
        await self.answer(at("2026-03-17", 10), self.requests[-1], BID, keys["anna"])
        await self.request(at("2026-03-16"), two, "2026-03-20T12:00:00Z", open_it=False)  # a draft: not issued
        cancelled = await self.request(
            at("2026-03-23"), {"shortlist_id": second["id"], "supplier_ids": [s["bala"]]}, "2026-03-27T12:00:00Z"
        )
        reason = {"reason": "budget withdrawn"}
        await self.act(at("2026-03-24"), f"/v1/requests/{cancelled}/cancel", await self.version(cancelled), reason)

        # Scorecards of the awarded supplier: two count, one is under appeal.
        self.market.set_clock(at("2026-03-31", 18))
        [linkage] = [k for k in (await self.market.linkages(first["id"])).values() if k["supplier_id"] == s["devi"]]
        scorecards = f"/v1/linkages/{linkage['id']}/scorecards"
        on_time = {"kind": "delivery", "quantity": 1000, "accepted_quantity": 900}
        await self.call(
            "POST", scorecards, self.market.lead_a, on_time | {"due_on": "2026-03-25", "delivered_on": "2026-03-24"}
        )
        late = {"kind": "delivery", "quantity": 1000, "accepted_quantity": 500}
        appealed = await self.call(
            "POST", scorecards, self.market.lead_a, late | {"due_on": "2026-03-20", "delivered_on": "2026-03-26"}
        )
        period = {"kind": "period", "period_start": "2026-03-01", "period_end": "2026-03-31"}
        await self.call("POST", scorecards, self.market.lead_a, period | {"quality": 0.7, "on_time": 0.5})
        appeal = {"reason": "the due date was moved to 30 March"}
        await self.call("POST", f"/v1/scorecards/{appealed['id']}/appeal", keys["devi"], appeal)


def in_march(moment: str | None) -> bool:
    return moment is not None and "2026-03-01" <= moment[:10] <= "2026-03-31"


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def expected_figures(month: Month) -> dict[str, Any]:
    """The indicators for March, from the requests, linkages and scorecards as matching shows them."""
    docs = [await month.call("GET", f"/v1/requests/{r}", month.market.lead_a) for r in month.requests]

    def first(doc: dict[str, Any], status: str) -> str | None:
        return next((str(e["at"]) for e in doc["history"] if e["status"] == status), None)

    def day_of(doc: dict[str, Any], status: str) -> date:
        return date.fromisoformat(str(first(doc, status))[:10])

    def answers_closed(doc: dict[str, Any]) -> str | None:
        if doc["status"] in ("draft", "cancelled"):
            return None
        closes = [str(e["at"]) for e in doc["history"] if e["status"] == "closed"]
        return closes[-1] if closes else str(doc["respond_by"])

    issued = [d for d in docs if in_march(first(d, "open"))]
    invitations = [i for d in issued for i in d["invitations"]]
    closed = [i for d in docs if in_march(answers_closed(d)) for i in d["invitations"]]
    bids = [
        i["answer"]
        for d in docs
        for i in d["invitations"]
        if i["answer"] and i["answer"]["kind"] == "bid" and in_march(i["answer"]["submitted_at"])
    ]
    awarded = [d for d in docs if d["status"] == "awarded" and in_march(first(d, "awarded"))]
    days = [(day_of(d, "awarded") - day_of(d, "open")).days for d in awarded]
    scorecards = (await month.call("GET", "/v1/scorecards", month.market.lead_a))["items"]
    counted = [c for c in scorecards if c["counts"] and in_march(c["observed_on"])]
    development = sum(1 for d in awarded for i in d["invitations"] if i["development"] and i["status"] == "awarded")
    return {
        "requests_issued": (len(issued), None),
        "invitations_sent": (
            len(invitations),
            {
                "ranked": sum(1 for i in invitations if not i["development"]),
                "development": sum(1 for i in invitations if i["development"]),
            },
        ),
        "response_rate": (share(sum(1 for i in closed if i["answer"]), len(closed)), None),
        "bids_received": (
            len(bids),
            {
                "supplier": sum(1 for b in bids if not b["on_behalf"]),
                "on_behalf": sum(1 for b in bids if b["on_behalf"]),
            },
        ),
        "requests_awarded": (len(awarded), None),
        "median_days_to_award": (statistics.median(days) if days else None, None),
        "development_candidates_awarded": (development, None),
        "scorecards_counted": (len(counted), None),
        "delivery_quality": (round(statistics.mean(c["quality"] for c in counted), 4), None),
        "delivery_on_time": (round(statistics.mean(c["on_time"] for c in counted), 4), None),
    }


async def funnel_of(month: Month) -> dict[str, int]:
    """The March cohort of linkages, from matching's own linkage histories."""
    funnel = dict.fromkeys((*STAGES, "dropped"), 0)
    for shortlist in month.shortlists:
        for linkage in (await month.market.linkages(shortlist)).values():
            history = [e for e in linkage["history"] if e["on"] <= "2026-03-31"]
            if not in_march(history[0]["on"]):
                continue
            furthest = max(STAGES.index(e["stage"]) for e in history if e["stage"] in STAGES)
            for stage in STAGES[: furthest + 1]:
                funnel[stage] += 1
            funnel["dropped"] += any(e["stage"] == "dropped" for e in history)
    return funnel


async def indicators(stack: Stack, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await stack.client.get("/v1/indicators", params=MARCH | params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()["indicators"]
    return {key: (body[key]["value"], body[key]["breakdown"]) for key in body}


async def test_request_and_delivery_indicators(whole_platform: Stack) -> None:
    market = await Market(whole_platform).setup()
    month = Month(market)
    await month.play()
    other = await whole_platform.client.post("/v1/agencies", json={"name": "Elsewhere", "country": "EC"}, headers=ADMIN)
    await caught_up(whole_platform)
    want = await expected_figures(month)
    # The same, stated by hand: a reader's check of the worked-out figures.
    assert want["requests_issued"][0] == 3 and want["invitations_sent"][1] == {"ranked": 6, "development": 1}
    assert want["response_rate"][0] == 0.6667  # 3 of 4 answered, then 1 of 2 by the deadline
    assert want["bids_received"][1] == {"supplier": 2, "on_behalf": 1}
    assert want["median_days_to_award"][0] == 7 and want["development_candidates_awarded"][0] == 1
    assert (want["scorecards_counted"][0], want["delivery_quality"][0], want["delivery_on_time"][0]) == (2, 0.8, 0.75)

    everything = await indicators(whole_platform, ADMIN)
    assert {k: everything[k] for k in KEYS} == want
    funnel = await funnel_of(month)
    assert funnel == {"proposed": 7, "contacted": 7, "qualified": 3, "contracted": 1, "active": 0, "dropped": 4}
    assert everything["linkage_funnel"] == (7, funnel)  # the stages requests moved, as linkages published them

    # Scopes: the supplier's cluster, the buyer's agency (its own key too), and what is outside them.
    clusters = (await whole_platform.client.get("/v1/clusters", headers=market.agency)).json()["items"]
    [cluster] = clusters
    assert {
        k: v for k, v in (await indicators(whole_platform, ADMIN, cluster_id=cluster["id"])).items() if k in KEYS
    } == want
    assert {k: v for k, v in (await indicators(whole_platform, market.agency)).items() if k in KEYS} == want
    elsewhere = await indicators(whole_platform, ADMIN, agency_id=other.json()["id"])
    assert all(elsewhere[k][0] in (0, None) for k in KEYS), elsewhere
    assert all(
        v[0] in (0, None) for k, v in (await indicators(whole_platform, ADMIN, country="EC")).items() if k in KEYS
    )
    april = await indicators(whole_platform, ADMIN, **{"from": "2026-04-01", "to": "2026-04-30"})
    assert all(april[k][0] in (0, None) for k in KEYS), april

    # The dashboard's section and the CSV export carry them.
    page = await whole_platform.client.get("/dashboard", params=MARCH, headers=ADMIN)
    assert page.status_code == 200 and "Requests and delivery" in page.text
    assert 'data-indicator="requests_issued" data-value="3"' in page.text
    assert 'data-key-figure="response_rate" data-value="0.6667"' in page.text
    csv = await whole_platform.client.get("/v1/exports/indicators.csv", params=MARCH, headers=ADMIN)
    assert "bids_received,Bids received,bids,on_behalf,1,2026-03-01,2026-03-31" in csv.text
