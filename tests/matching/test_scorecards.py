"""Delivery scorecards through the gateway: recorded by buyers, appealed by suppliers,
decided by agencies, and ranked by in shortlists, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from tests.matching.helpers import KNITWEAR, Market
from tests.support import assert_problem

PERFORMANCE_ONLY = {
    "constraints": KNITWEAR["constraints"],
    "criteria": {"weights": {"text": 0, "certifications": 0, "proximity": 0, "capacity": 0, "performance": 1}},
}
ON_TIME = {"kind": "delivery", "quantity": 1000, "accepted_quantity": 950, "due_on": "2026-10-01"}
LATE = {"kind": "delivery", "quantity": 1000, "accepted_quantity": 800, "due_on": "2026-11-01"}
PERIOD = {"kind": "period", "period_start": "2026-07-01", "period_end": "2026-09-30", "quality": 0.7, "on_time": 0.5}


def expected(observations: list[tuple[str, float, float]]) -> tuple[float, float]:
    """The documented aggregate: weights halve every 180 days before the latest observation."""
    days = [date.fromisoformat(d) for d, _, _ in observations]
    latest = max(days)
    weights = [0.5 ** ((latest - d).days / 180) for d in days]
    quality = sum(w * q for w, (_, q, _) in zip(weights, observations, strict=True)) / sum(weights)
    on_time = sum(w * t for w, (_, _, t) in zip(weights, observations, strict=True)) / sum(weights)
    return round(quality, 4), round(on_time, 4)


async def contracted(market: Market, buyer: dict[str, str], supplier_id: str) -> str:
    """A linkage of ``buyer`` with the supplier at 'contracted' (made off-platform)."""
    shortlist = await market.post("/v1/shortlists", KNITWEAR, buyer)
    linkage = await market.post(
        "/v1/linkages", {"shortlist_id": shortlist["id"], "supplier_id": supplier_id, "stage": "contracted"}, buyer
    )
    return str(linkage["id"])


async def performance_of(market: Market, supplier_id: str) -> dict[str, Any]:
    listed = await market.post("/v1/shortlists", PERFORMANCE_ONLY, market.lead_a)
    [item] = [i for i in listed["items"] if i["supplier_id"] == supplier_id]
    [criterion] = [c for c in item["criteria"] if c["criterion"] == "performance"]
    return dict(criterion)


async def eventually(market: Market, supplier_id: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        criterion = await performance_of(market, supplier_id)
        if check(criterion):
            return criterion
        assert time.monotonic() < deadline, criterion
        await asyncio.sleep(0.05)


async def test_scorecards_become_the_performance_matching_ranks_by(market: Market) -> None:
    client, anna = market.client, market.suppliers["anna"]
    declared = await performance_of(market, anna)
    assert (declared["value"], declared["basis"]) == (0.9, "declared")  # quality and on-time 0.9, declared
    by_a = await contracted(market, market.lead_a, anna)
    by_b = await contracted(market, market.lead_b, anna)

    first = await market.post(
        f"/v1/linkages/{by_a}/scorecards", ON_TIME | {"delivered_on": "2026-09-28"}, market.lead_a
    )
    assert (first["quality"], first["on_time"], first["status"], first["counts"]) == (0.95, 1.0, "settled", True)
    second = await market.post(f"/v1/linkages/{by_a}/scorecards", LATE | {"delivered_on": "2026-11-05"}, market.lead_a)
    assert (second["quality"], second["on_time"]) == (0.8, 0.0)

    # Two scorecards are not yet enough to replace what the firm declared; the registry shows them.
    firm = await _observed(market, anna, lambda o: o is not None and o["scorecards"] == 2)
    assert firm["buyers"] == 1 and firm["latest_on"] == "2026-11-05"
    assert (await performance_of(market, anna))["value"] == 0.9

    await market.post(f"/v1/linkages/{by_b}/scorecards", PERIOD, market.lead_b)
    quality, on_time = expected([("2026-09-28", 0.95, 1.0), ("2026-11-05", 0.8, 0.0), ("2026-09-30", 0.7, 0.5)])
    observed = await eventually(market, anna, lambda c: c["value"] != 0.9)
    assert observed["value"] == round((quality + on_time) / 2, 9)
    assert observed["basis"] == "3 scorecards from 2 buyers"
    firm = await _observed(market, anna, lambda o: o is not None and o["scorecards"] == 3)
    assert (firm["quality_score"], firm["on_time_delivery_rate"], firm["buyers"]) == (quality, on_time, 2)

    # The supplier appeals the late delivery once: under appeal it does not count.
    path = f"/v1/scorecards/{second['id']}"
    assert_problem(await client.post(f"{path}/appeal", json={"reason": "x"}, headers=market.lead_a), 403)
    appeal = await client.post(
        f"{path}/appeal", json={"reason": "The buyer moved the due date"}, headers=market.keys["anna"]
    )
    assert appeal.status_code == 200, appeal.text
    assert appeal.json()["status"] == "under_appeal" and appeal.json()["counts"] is False
    again = await client.post(f"{path}/appeal", json={"reason": "again"}, headers=market.keys["anna"])
    assert_problem(again, 409)
    reverted = await eventually(market, anna, lambda c: c["value"] == 0.9)  # two count: declared again
    assert reverted["basis"] == "declared"

    # Only the supplier's agency (or an admin) decides.
    assert_problem(await client.post(f"{path}/decision", json={"outcome": "voided"}, headers=market.lead_a), 403)
    assert_problem(await client.post(f"{path}/decision", json={"outcome": "voided"}, headers=market.keys["anna"]), 403)
    decided = await client.post(
        f"{path}/decision", json={"outcome": "upheld", "note": "due date unchanged"}, headers=market.agency
    )
    assert decided.status_code == 200 and decided.json()["status"] == "upheld", decided.text
    await eventually(market, anna, lambda c: c["value"] == observed["value"])

    # Each party sees its own: the supplier its scorecards, another supplier none, another buyer 404.
    own = await client.get("/v1/scorecards", headers=market.keys["anna"])
    assert {s["id"] for s in own.json()["items"]} >= {first["id"], second["id"]}
    assert (await client.get("/v1/scorecards", headers=market.keys["bala"])).json()["items"] == []
    assert_problem(await client.get(path, headers=market.keys["bala"]), 404)
    assert_problem(await client.get(f"/v1/scorecards/{first['id']}", headers=market.lead_b), 404)
    mine = await client.get("/v1/scorecards", headers=market.lead_b)
    assert [s["kind"] for s in mine.json()["items"]] == ["period"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # rules, not storage: one backend is enough
async def test_bad_scorecards_are_refused(market: Market) -> None:
    client, anna = market.client, market.suppliers["anna"]
    shortlist = await market.post("/v1/shortlists", KNITWEAR, market.lead_a)
    proposed = await market.post("/v1/linkages", {"shortlist_id": shortlist["id"], "supplier_id": anna}, market.lead_a)
    body = ON_TIME | {"delivered_on": "2026-09-28"}
    assert_problem(
        await client.post(f"/v1/linkages/{proposed['id']}/scorecards", json=body, headers=market.lead_a), 409
    )
    linkage = await contracted(market, market.lead_a, market.suppliers["bala"])
    path = f"/v1/linkages/{linkage}/scorecards"
    for bad, field in (
        (ON_TIME | {"delivered_on": "2026-09-28", "accepted_quantity": 1001}, "accepted_quantity"),
        (ON_TIME, "delivered_on"),
        (PERIOD | {"period_end": "2026-06-30"}, "period_end"),
        (PERIOD | {"quality": 1.5}, "quality"),
        (PERIOD | {"quantity": 10}, "quantity"),
    ):
        assert_problem(await client.post(path, json=bad, headers=market.lead_a), 422, field=field)
    # Another buyer cannot score this linkage.
    assert_problem(await client.post(path, json=body, headers=market.lead_b), 404)
    listed = await client.get("/v1/scorecards", headers=market.lead_a)
    assert listed.json()["items"] == []  # nothing half-written


async def _observed(market: Market, firm_id: str, check: Callable[[Any], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        firm = (await market.client.get(f"/v1/firms/{firm_id}", headers=market.agency)).json()
        if check(firm.get("observed_performance")):
            return dict(firm["observed_performance"])
        assert time.monotonic() < deadline, firm.get("observed_performance")
        await asyncio.sleep(0.05)
