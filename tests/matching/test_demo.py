"""The demo's requests, answers, awards and scorecards, written through the gateway on
top of a small registry demo, once, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx

from gateway.settings import GatewaySettings
from services.common.db import create_engine, create_sessionmaker
from services.matching.demo import DEMO_TITLES, SCENARIOS, Gateway, Scenario, load_demo
from services.matching.requests.schemas import AnswerCreate, RequestCreate
from services.matching.scorecards.performance import MIN_SCORECARDS
from services.matching.scorecards.schemas import ScorecardCreate
from services.matching.settings import MatchingSettings
from services.registry import demo as registry_demo
from services.registry.settings import RegistrySettings
from tests.support import BOOTSTRAP_KEY, Stack

ADMIN = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
SCALE = 0.1  # as tests/registry/test_demo.py: a few dozen firms a cluster
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CLUSTER = {"id": "cls_demo", "subdivision": "IN-TN"}
BUYER = {"id": "frm_buyer", "name": "Buyer"}


async def listed(client: Any, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        paging = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=params | paging, headers=ADMIN)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def test_scenarios_make_valid_writes_from_a_seed() -> None:
    """What each scenario sends passes the API's models, and the same seed draws the same bids."""
    async with httpx.AsyncClient() as client:
        api = Gateway(client, BOOTSTRAP_KEY)
        for spec in SCENARIOS:
            scenario = Scenario(api, spec, CLUSTER, BUYER, seed=1966, now=NOW)
            standards: dict[str, Any] = {
                "constraints": {"isic_codes": spec["standards"]["isic"]},
                "criteria": {"description": spec["standards"]["description"]},
            }
            RequestCreate.model_validate(scenario.request_body({"shortlist": standards, "top": 5}))
            awards = spec.get("awards", {})
            assert sum(awards.values()) <= 1
            bids = [scenario.bid(share) for share in (*awards.values(), 0.5)]
            for bid in bids:
                AnswerCreate.model_validate(bid)
            again = Scenario(api, spec, CLUSTER, BUYER, seed=1966, now=NOW)
            assert [again.bid(share) for share in (*awards.values(), 0.5)] == bids
            other = Scenario(api, spec, CLUSTER, BUYER, seed=7, now=NOW)
            assert [other.bid(share) for share in (*awards.values(), 0.5)] != bids
            for part, cards in spec.get("scorecards", {}).items():
                assert part in awards
                for card in cards:
                    body = ScorecardCreate.model_validate(scenario.scorecard(card, spec["quantity"] * awards[part]))
                    assert body.observed_on < NOW.date()
        assert len(DEMO_TITLES) == len(SCENARIOS)
        assert {s["outcome"] for s in SCENARIOS} == {"draft", "open", "closed", "awarded", "cancelled"}


async def test_demo_linkages_load_once(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings, matching_settings: MatchingSettings
) -> None:
    engine = create_engine(registry_settings.effective_database_url)
    try:  # as `make run`: the registry's demo first, then the services
        await registry_demo.load_demo(create_sessionmaker(engine), scale=SCALE, batch_size=200)
    finally:
        await engine.dispose()
    async with Stack.start(registry_settings, gateway_settings, matching_settings=matching_settings) as stack:
        client = stack.client
        report = await load_demo(client, BOOTSTRAP_KEY, ready_timeout=30)
        assert report.loaded, report.reason
        assert report.counts["requests"] == len(DEMO_TITLES)

        requests = await listed(client, "/v1/requests")
        assert {r["title"] for r in requests} == DEMO_TITLES
        statuses = Counter(r["status"] for r in requests)
        assert set(statuses) == {"draft", "open", "closed", "awarded", "cancelled"}, statuses
        invitations = [i for r in requests for i in r["invitations"]]
        answers = [i["answer"] for i in invitations if i["answer"] is not None]
        assert {a["kind"] for a in answers} == {"bid", "no_bid"}
        [on_behalf] = [i for i in invitations if i["answer"] and i["answer"]["on_behalf"]]
        assert on_behalf["answer"]["submitted_by_role"] == "agency"
        firm = (await client.get(f"/v1/firms/{on_behalf['supplier_id']}", headers=ADMIN)).json()
        assert firm["size_class"] == "micro"
        awarded = [i for i in invitations if i["status"] == "awarded"]
        assert len(awarded) >= 3 and any(i["development"] for i in awarded)
        assert all(i["awarded_quantity"] for i in awarded)
        rfq = next(r for r in requests if r["status"] == "awarded" and r["title"].startswith("40,000"))
        bidder = min(rfq["invitations"], key=lambda i: i["rank"])
        thread = await listed(client, f"/v1/requests/{rfq['id']}/messages", supplier_id=bidder["supplier_id"])
        assert [m["side"] for m in thread] == ["buyer", "supplier"]

        # Awards made linkages 'contracted' (one 'active', with deliveries scored); suppliers
        # pursued outside the requests stand at every other stage, dated in the past.
        linkages = await listed(client, "/v1/linkages")
        stages = Counter(k["stage"] for k in linkages)
        assert stages["contracted"] >= 2 and stages["active"] == 1
        assert set(stages) == {"proposed", "contacted", "qualified", "contracted", "active", "dropped"}, stages
        assert report.counts["linkages pursued"] >= 4
        today = datetime.now(UTC).date().isoformat()
        pursued = [k for k in linkages if k["stage"] == "qualified" and k["history"][-1]["on"] < today]
        assert pursued and [e["stage"] for e in pursued[0]["history"]] == ["proposed", "contacted", "qualified"]
        days = [e["on"] for e in pursued[0]["history"]]
        assert days == sorted(days) and len(set(days)) == 3  # days passed between the stages
        scorecards = await listed(client, "/v1/scorecards")
        assert len(scorecards) == report.counts["scorecards"] >= 8
        [appealed] = [s for s in scorecards if s["appeal"]]
        assert appealed["status"] == "voided" and appealed["decision"]["outcome"] == "voided"
        counting = Counter(s["supplier_id"] for s in scorecards if s["counts"])
        supplier, n = counting.most_common(1)[0]
        assert n >= MIN_SCORECARDS

        # The registry records the observed performance on the firm, through matching's feed.
        deadline = time.monotonic() + 10
        while True:
            firm = (await client.get(f"/v1/firms/{supplier}", headers=ADMIN)).json()
            observed = firm.get("observed_performance")
            if observed and observed["scorecards"] == n:
                break
            assert time.monotonic() < deadline, observed
            await asyncio.sleep(0.05)

        # Loading again adds nothing.
        keys = await listed(client, "/v1/api-keys")
        again = await load_demo(client, BOOTSTRAP_KEY, ready_timeout=30)
        assert not again.loaded and again.counts == Counter()
        assert len(await listed(client, "/v1/requests")) == len(requests)
        assert len(await listed(client, "/v1/scorecards")) == len(scorecards)
        assert len(await listed(client, "/v1/api-keys")) == len(keys)
