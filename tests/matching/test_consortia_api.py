"""Consortia through the gateway: a horizontal network of the market's suppliers answers
a volume none of them reaches alone, and follows the registry's changes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from services.matching.shortlists.schemas import ShortlistPublic
from tests.matching.helpers import KNITWEAR, Market
from tests.registry.helpers import network_body

# Each market supplier declares 12,000 pieces a month; anna, bala and chitra hold both
# required schemes, devi lacks OEKO-TEX.
VOLUME = {"min_monthly_capacity": 20000, "capacity_unit": "pieces"}


async def network(market: Market, *names: str, status: str = "active") -> dict[str, Any]:
    members = [{"firm_id": market.suppliers[name], "role": "member"} for name in names]
    return await market.post(
        "/v1/networks", network_body(members=members, status=status, cluster_id=market.cluster_id), market.agency
    )


async def shortlist(market: Market, **fields: Any) -> dict[str, Any]:
    constraints = KNITWEAR["constraints"] | fields.pop("constraints", VOLUME)
    body = {"constraints": constraints, "include_consortia": True} | fields
    return await market.post("/v1/shortlists", body, market.lead_a)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 1.0) -> float:
    """How long ``check`` took to hold (it must within ``seconds``: the catalogue follows the feed)."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, "not visible in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_network_answers_a_volume_no_member_reaches_alone(market: Market) -> None:
    group = await network(market, "anna", "bala", "devi")

    async def listed() -> bool:
        return bool((await shortlist(market))["consortia"]["items"])

    await eventually(listed)
    result = await shortlist(market)
    assert result["items"] == []  # 12,000 each: no single firm reaches 20,000
    consortia = result["consortia"]
    assert consortia["eligible_count"] == 1
    [item] = consortia["items"]
    assert (item["network_id"], item["rank"], item["monthly_capacity"]) == (group["id"], 1, 24000)
    # devi lacks a required certificate: it does not count.
    counted = {m["firm_id"]: m for m in item["members"]}
    assert set(counted) == {market.suppliers["anna"], market.suppliers["bala"]}
    assert {m["share"] for m in counted.values()} == {0.5}
    # The score is explained like a single firm's, and the members' contributions add up
    # to the share-weighted criteria.
    criteria = {c["criterion"]: c for c in item["criteria"]}
    assert round(sum(c["contribution"] for c in criteria.values()), 9) == item["score"]
    assert criteria["performance"]["value"] == round((0.85 + 0.9) / 2, 9)  # anna (0.9, 0.9), bala (0.8, 0.9)
    mean_part = sum(c["contribution"] for name, c in criteria.items() if name in ("text", "performance"))
    assert abs(sum(m["contribution"] for m in item["members"]) - mean_part) < 1e-8
    # Without include_consortia nothing changes for single-firm shortlists.
    plain = await market.post("/v1/shortlists", {"constraints": KNITWEAR["constraints"] | VOLUME}, market.lead_a)
    assert plain["consortia"] is None and plain["items"] == []


async def test_a_network_short_of_one_certificate_is_a_development_candidate(market: Market) -> None:
    group = await network(market, "anna", "bala", "devi")
    volume = {"min_monthly_capacity": 30000, "capacity_unit": "pieces"}

    async def candidate() -> bool:
        found = await shortlist(market, constraints=volume, include_development=True)
        return bool(found["consortia"]["development"])

    await eventually(candidate)
    result = await shortlist(market, constraints=volume, include_development=True)
    assert result["consortia"]["items"] == [] and result["consortia"]["development_count"] == 1
    [item] = result["consortia"]["development"]
    assert item["network_id"] == group["id"]
    assert item["gap"] == {
        "kind": "certification",
        "scheme": "oeko-tex-100",
        "member_id": market.suppliers["devi"],
        "required_monthly_capacity": None,
        "available_monthly_capacity": None,
    }
    assert item["monthly_capacity"] == 36000  # counted with devi
    # Rendered as plain data, the document is what its model renders, byte for byte.
    body = {"constraints": KNITWEAR["constraints"] | volume, "include_consortia": True, "include_development": True}
    raw = await market.client.post("/v1/shortlists", json=body, headers=market.lead_a)
    assert raw.content == ShortlistPublic.model_validate_json(raw.content).model_dump_json().encode()
    # Short by more than the margin without devi: no capacity candidate either.
    assert (await shortlist(market, constraints={**volume, "min_monthly_capacity": 40000}, include_development=True))[
        "consortia"
    ]["development"] == []


async def test_membership_and_status_changes_reach_consortia_within_a_second(market: Market) -> None:
    group = await network(market, "anna", "bala", "chitra")
    path = f"/v1/networks/{group['id']}"

    async def members() -> set[str]:
        items = (await shortlist(market))["consortia"]["items"]
        return {m["firm_id"] for item in items for m in item["members"]}

    async def holds(expected: set[str]) -> bool:
        return await members() == expected

    await eventually(lambda: holds({market.suppliers[n] for n in ("anna", "bala", "chitra")}))
    version = group["version"]
    remaining = [{"firm_id": market.suppliers[n], "role": "member"} for n in ("anna", "bala")]
    response = await market.client.patch(
        path, json={"members": remaining}, headers=market.agency | {"If-Match": f'"{version}"'}
    )
    assert response.status_code == 200, response.text
    await eventually(lambda: holds({market.suppliers["anna"], market.suppliers["bala"]}))
    response = await market.client.patch(
        path, json={"status": "dormant"}, headers=market.agency | {"If-Match": f'"{version + 1}"'}
    )
    assert response.status_code == 200, response.text
    await eventually(lambda: holds(set()))


async def test_saved_standards_carry_include_consortia(market: Market) -> None:
    await network(market, "anna", "bala")
    standards = await market.post(
        "/v1/buyer-standards",
        {"name": "Volume knitwear", "constraints": KNITWEAR["constraints"] | VOLUME, "include_consortia": True},
        market.lead_a,
    )
    assert standards["standards"]["include_consortia"] is True

    async def listed() -> bool:
        found = await market.post("/v1/shortlists", {"standards_id": standards["id"]}, market.lead_a)
        return found["consortia"] is not None and bool(found["consortia"]["items"])

    await eventually(listed)
    # The request may turn it off, and a new version of the standards too.
    off = await market.post(
        "/v1/shortlists", {"standards_id": standards["id"], "include_consortia": False}, market.lead_a
    )
    assert off["consortia"] is None
    changed = await market.client.patch(
        f"/v1/buyer-standards/{standards['id']}",
        json={"include_consortia": False},
        headers=market.lead_a | {"If-Match": f'"{standards["version"]}"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["standards"]["include_consortia"] is False
    again = await market.post("/v1/shortlists", {"standards_id": standards["id"]}, market.lead_a)
    assert again["consortia"] is None


async def test_bad_consortium_options_are_422(market: Market) -> None:
    for body, field in (
        ({"include_consortia": "yes"}, "include_consortia"),
        ({"include_consortia": True, "consortium_limit": 0}, "consortium_limit"),
        ({"include_consortia": True, "consortium_limit": 101}, "consortium_limit"),
    ):
        response = await market.client.post("/v1/shortlists", json=KNITWEAR | body, headers=market.lead_a)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == [field]
