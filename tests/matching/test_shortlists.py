"""Shortlists through the gateway, over a catalogue that follows the registry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.settings import GatewaySettings
from services.matching.settings import MatchingSettings
from services.matching.shortlists.schemas import ShortlistPublic
from services.registry.settings import RegistrySettings
from tests.registry.helpers import cluster_body, firm_body
from tests.support import BOOTSTRAP_KEY, Stack, assert_problem

ADMIN = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
TODAY_VALID = {"valid_from": "2020-01-01", "valid_until": "2099-12-31"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class World:
    """An agency with a cluster and suppliers, and a lead firm with its own key."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.client = stack.client
        self.suppliers: dict[str, dict[str, Any]] = {}

    async def setup(self) -> World:
        agency = await self.client.post("/v1/agencies", json={"name": "MSME body", "country": "IN"}, headers=ADMIN)
        self.agency_id = agency.json()["id"]
        self.agency = bearer(await self.stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=self.agency_id))
        self.cluster = (
            await self.client.post(
                "/v1/clusters",
                headers=self.agency,
                json=cluster_body(
                    name="Tiruppur knitwear",
                    country="IN",
                    subdivision="IN-TN",
                    latitude=11.108,
                    longitude=77.341,
                    sector_isic="1430",
                ),
            )
        ).json()
        lead = await self.client.post(
            "/v1/firms",
            headers=self.agency,
            json=firm_body(
                name="Big Apparel Exports",
                roles=["lead_firm"],
                size_class="large",
                country="IN",
                subdivision="IN-TN",
                latitude=13.08,
                longitude=80.27,
                certifications=[],
            ),
        )
        assert lead.status_code == 201, lead.text
        self.lead_firm_id = lead.json()["id"]
        self.lead = bearer(await self.stack.issue_key(BOOTSTRAP_KEY, role="lead_firm", firm_id=self.lead_firm_id))
        specs = {
            "knit_iso": dict(
                name="Sri Murugan Knits",
                isic_codes=["1430"],
                hs_codes=["6110"],
                capabilities="cotton knitted sweaters and cardigans, flat knitting machines",
                certifications=[{"scheme": "iso-9001", **TODAY_VALID}, {"scheme": "oeko-tex-100", **TODAY_VALID}],
                monthly_capacity=20000,
                quality_score=0.9,
                on_time_delivery_rate=0.95,
                latitude=11.11,
                longitude=77.34,
            ),
            "knit_no_oeko": dict(
                name="Kongu Knitwear",
                isic_codes=["1430"],
                hs_codes=["6110"],
                capabilities="knitted sweaters and hosiery",
                certifications=[{"scheme": "iso-9001", **TODAY_VALID}],
                monthly_capacity=15000,
                quality_score=0.7,
                on_time_delivery_rate=0.8,
                latitude=11.2,
                longitude=77.3,
            ),
            "knit_small": dict(
                name="Little Loom Garments",
                isic_codes=["1430"],
                hs_codes=["6110"],
                capabilities="knitted baby wear",
                certifications=[{"scheme": "iso-9001", **TODAY_VALID}, {"scheme": "oeko-tex-100", **TODAY_VALID}],
                monthly_capacity=9000,
                quality_score=0.6,
                on_time_delivery_rate=0.6,
                latitude=11.0,
                longitude=77.0,
            ),
            "expired": dict(
                name="Old Cert Fabrics",
                isic_codes=["1430"],
                hs_codes=["6110"],
                capabilities="knitted sweaters",
                certifications=[
                    {"scheme": "iso-9001", "valid_from": "2015-01-01", "valid_until": "2018-01-01"},
                    {"scheme": "oeko-tex-100", **TODAY_VALID},
                ],
                monthly_capacity=30000,
                latitude=11.1,
                longitude=77.3,
            ),
            "dairy": dict(
                name="Nilgiris Dairy",
                isic_codes=["1050"],
                hs_codes=["0401"],
                capabilities="milk and cheese",
                certifications=[{"scheme": "haccp", **TODAY_VALID}],
                monthly_capacity=50000,
                capacity_unit="kg",
                latitude=11.4,
                longitude=76.7,
            ),
        }
        for key, spec in specs.items():
            body = firm_body(
                **(
                    {
                        "country": "IN",
                        "subdivision": "IN-TN",
                        "cluster_ids": [self.cluster["id"]],
                        "size_class": "small",
                        "capacity_unit": "pieces",
                    }
                    | spec
                )
            )
            response = await self.client.post("/v1/firms", headers=self.agency, json=body)
            assert response.status_code == 201, response.text
            self.suppliers[key] = response.json()
        return self

    async def shortlist(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.post("/v1/shortlists", json=body, headers=headers or self.lead)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def wait_for(self, body: dict[str, Any], predicate: Any, seconds: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            response = await self.client.post("/v1/shortlists", json=body, headers=self.lead)
            if response.status_code == 201 and predicate(response.json()):
                return dict(response.json())
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached in {seconds} s: {response.status_code} {response.text[:500]}")
            await asyncio.sleep(0.05)


KNITWEAR = {
    "constraints": {
        "isic_codes": ["143"],
        "required_certifications": ["iso-9001", "oeko-tex-100"],
        "min_monthly_capacity": 10000,
        "capacity_unit": "pieces",
        "subdivisions": ["IN-TN"],
    },
    "criteria": {"description": "cotton knitted sweaters"},
}


@pytest.fixture
async def world(platform: Stack) -> World:
    world = await World(platform).setup()
    await world.wait_for({"constraints": {"countries": ["IN"]}}, lambda r: r["eligible_count"] == 5)
    return world


async def test_exact_explained_shortlist(world: World) -> None:
    result = await world.shortlist({**KNITWEAR, "include_development": True})
    assert result["eligible_count"] == 1
    [top] = result["items"]
    assert top["supplier_id"] == world.suppliers["knit_iso"]["id"] and top["rank"] == 1
    assert top["name"] == "Sri Murugan Knits"
    criteria = {c["criterion"]: c for c in top["criteria"]}
    assert set(criteria) == {"text", "capacity", "performance"}  # no point, no preferred schemes
    assert sum(c["weight"] for c in criteria.values()) == pytest.approx(1.0)
    assert sum(c["contribution"] for c in criteria.values()) == pytest.approx(top["score"], abs=1e-9)
    assert criteria["capacity"]["value"] == 1.0  # 20000 >= 10000
    assert criteria["performance"]["value"] == pytest.approx(0.925)
    assert 0 < criteria["text"]["value"] <= 1
    assert result["catalogue_version"] and result["took_ms"] >= 0

    development = {d["supplier_id"]: d for d in result["development"]}
    assert result["development_count"] == 3
    no_oeko = development[world.suppliers["knit_no_oeko"]["id"]]
    assert no_oeko["gap"] == {
        "kind": "certification",
        "scheme": "oeko-tex-100",
        "required_monthly_capacity": None,
        "available_monthly_capacity": None,
    }
    small = development[world.suppliers["knit_small"]["id"]]
    assert small["gap"]["kind"] == "capacity" and small["gap"]["available_monthly_capacity"] == 9000
    expired = development[world.suppliers["expired"]["id"]]
    assert expired["gap"] == {
        "kind": "certification",
        "scheme": "iso-9001",
        "required_monthly_capacity": None,
        "available_monthly_capacity": None,
    }
    scores = [d["score"] for d in result["development"]]
    assert scores == sorted(scores, reverse=True)


async def test_each_listed_supplier_carries_its_card(world: World) -> None:
    constraints = dict(KNITWEAR["constraints"])  # type: ignore[call-overload]  # a dict of JSON values
    body = {
        "constraints": constraints | {"near": {"latitude": 11.108, "longitude": 77.341}},
        "criteria": {"description": "Cotton SWEATERS, knitted by hand", "preferred_certifications": ["sa8000"]},
        "include_development": True,
    }
    result = await world.shortlist(body)
    [top] = result["items"]
    assert top["card"] == {
        "distance_km": pytest.approx(0.248, abs=0.001),  # (11.108, 77.341) to (11.11, 77.34)
        "certificates": [
            {"scheme": "iso-9001", "valid_until": "2099-12-31"},
            {"scheme": "oeko-tex-100", "valid_until": "2099-12-31"},
        ],  # sa8000 is preferred but not held
        "matched_words": ["Cotton", "SWEATERS", "knitted"],  # as the description writes them; "hand" is not held
        "monthly_capacity": 20000.0,
        "capacity_unit": "pieces",
    }
    small = next(d for d in result["development"] if d["supplier_id"] == world.suppliers["knit_small"]["id"])
    assert small["card"]["matched_words"] == ["knitted"] and small["card"]["monthly_capacity"] == 9000.0
    stored = await world.client.get(f"/v1/shortlists/{result['id']}", headers=world.lead)
    assert stored.json()["items"][0]["card"] == top["card"]
    without_point = await world.shortlist(KNITWEAR)
    assert without_point["items"][0]["card"]["distance_km"] is None


async def test_a_past_shortlist_reads_back_as_the_bytes_first_returned(world: World) -> None:
    body = {"constraints": {"countries": ["IN"]}, "criteria": {"description": "knitted cotton"}}
    answered = await world.client.post("/v1/shortlists", json=body, headers=world.lead)
    assert answered.status_code == 201
    past = await world.client.get(f"/v1/shortlists/{answered.json()['id']}", headers=world.lead)
    assert past.status_code == 200 and past.headers["content-type"] == "application/json"
    assert past.content == answered.content
    ShortlistPublic.model_validate_json(past.content)  # and it is the documented schema


async def test_ranking_follows_the_weights(world: World) -> None:
    body = {
        "constraints": {"isic_codes": ["14"]},
        "criteria": {"weights": {"text": 0, "certifications": 0, "proximity": 0, "capacity": 0, "performance": 1}},
    }
    result = await world.shortlist(body)
    names = [i["name"] for i in result["items"]]
    assert names == ["Sri Murugan Knits", "Old Cert Fabrics", "Kongu Knitwear", "Little Loom Garments"]
    assert [i["score"] for i in result["items"]] == [0.925, 0.85, 0.75, 0.6]
    near = await world.shortlist(
        {
            "constraints": {"isic_codes": ["14"], "near": {"latitude": 11.0, "longitude": 77.0}, "max_distance_km": 60},
            "criteria": {"weights": {"proximity": 1, "performance": 0, "text": 0}},
        }
    )
    assert near["items"][0]["name"] == "Little Loom Garments"  # at the point itself
    assert near["items"][0]["criteria"][0] == {
        "criterion": "proximity",
        "value": 1.0,
        "weight": 1.0,
        "contribution": 1.0,
        "basis": None,
    }


async def test_a_minimum_capacity_of_zero_sets_no_capacity_target(world: World) -> None:
    """Any known capacity in the unit passes; with no target to fit, capacity is not a criterion."""
    result = await world.shortlist({"constraints": {"min_monthly_capacity": 0, "capacity_unit": "pieces"}})
    assert result["eligible_count"] >= 1
    for item in result["items"]:
        assert "capacity" not in {c["criterion"] for c in item["criteria"]}


async def test_nothing_matches_is_an_empty_list(world: World) -> None:
    result = await world.shortlist({"constraints": {"countries": ["EC"]}})
    assert result["eligible_count"] == 0 and result["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"constraints": {"isic_codes": ["9999"]}}, "constraints.isic_codes.0"),
        ({"constraints": {"hs_codes": ["123456"]}}, "constraints.hs_codes.0"),
        ({"constraints": {"min_monthly_capacity": -5, "capacity_unit": "pieces"}}, "constraints.min_monthly_capacity"),
        ({"constraints": {"max_distance_km": 50}}, "constraints"),
        (
            {
                "criteria": {
                    "weights": {"text": 0, "certifications": 0, "proximity": 0, "capacity": 0, "performance": 0}
                }
            },
            "criteria.weights",
        ),
        ({"criteria": {"weights": {"text": -1}}}, "criteria.weights.text"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"constraints": {"required_certifications": ["iso-99999"]}}, "constraints.required_certifications.0"),
        ({"constraints": {"countries": ["XX"]}}, "constraints.countries.0"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_requests_name_the_field(world: World, body: dict[str, Any], field: str) -> None:
    response = await world.client.post("/v1/shortlists", json=body, headers=world.lead)
    assert_problem(response, 422, field=field)


async def test_inline_standards_obey_the_rules_of_saved_ones(world: World) -> None:
    body = {"criteria": {"desired_monthly_capacity": 2.2e-16}}  # no capacity_unit: was a 500 (found by make fuzz)
    response = await world.client.post("/v1/shortlists", json=body, headers=world.lead)
    assert response.status_code == 422, response.text
    assert "capacity_unit" in response.json()["detail"] + str(response.json()["errors"])


# Matching long-polls the registry's feed for this long: a change that reaches shortlists in
# less time was delivered by the long-poll returning on the commit, not by the next poll.
LONG_POLL_SECONDS = 30.0


@pytest.fixture
async def long_polling_world(
    registry_settings: RegistrySettings, gateway_settings: GatewaySettings, matching_settings: MatchingSettings
) -> AsyncIterator[World]:
    """The world, with matching's follower long-polling for the longest wait the feed allows."""
    settings = matching_settings.model_copy(update={"feed_wait_seconds": LONG_POLL_SECONDS})
    async with Stack.start(registry_settings, gateway_settings, matching_settings=settings) as stack:
        world = await World(stack).setup()
        await world.wait_for({"constraints": {"countries": ["IN"]}}, lambda r: r["eligible_count"] == 5)
        yield world


async def test_registry_changes_reach_shortlists_without_waiting_for_the_next_poll(
    long_polling_world: World,
) -> None:
    world = long_polling_world
    within = LONG_POLL_SECONDS / 2  # generous for a loaded machine, yet less than one poll's wait
    body = {"constraints": {"isic_codes": ["1050"]}}
    assert (await world.shortlist(body))["eligible_count"] == 1
    firm = await world.client.post(
        "/v1/firms",
        headers=world.agency,
        json=firm_body(
            name="Coimbatore Creamery",
            isic_codes=["1050"],
            hs_codes=["0401"],
            country="IN",
            subdivision="IN-TN",
            certifications=[],
            capabilities="ghee and paneer",
            capacity_unit="kg",
        ),
    )
    created = await world.wait_for(body, lambda r: r["eligible_count"] == 2, seconds=within)
    version_after_create = created["catalogue_version"]

    dairy = world.suppliers["dairy"]
    patched = await world.client.patch(
        f"/v1/firms/{dairy['id']}", headers=world.agency | {"If-Match": '"1"'}, json={"isic_codes": ["1061"]}
    )
    assert patched.status_code == 200
    moved = await world.wait_for(body, lambda r: r["eligible_count"] == 1, seconds=within)
    assert [i["supplier_id"] for i in moved["items"]] == [firm.json()["id"]]
    assert moved["catalogue_version"] != version_after_create

    deleted = await world.client.delete(f"/v1/firms/{firm.json()['id']}", headers=world.agency | {"If-Match": '"1"'})
    assert deleted.status_code == 204
    await world.wait_for(body, lambda r: r["eligible_count"] == 0, seconds=within)


async def test_saved_standards_versions_and_past_shortlists(world: World) -> None:
    saved = await world.client.post("/v1/buyer-standards", headers=world.lead, json={"name": "Knitwear", **KNITWEAR})
    assert saved.status_code == 201, saved.text
    standards_id = saved.json()["id"]
    first = await world.shortlist({"standards_id": standards_id})
    assert first["standards_version"] == 1 and first["eligible_count"] == 1

    changed = await world.client.patch(
        f"/v1/buyer-standards/{standards_id}",
        headers=world.lead | {"If-Match": '"1"'},
        json={"constraints": {"required_certifications": ["iso-9001"]}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    second = await world.shortlist({"standards_id": standards_id})
    assert second["standards_version"] == 2 and second["eligible_count"] == 2
    replay = await world.shortlist({"standards_id": standards_id, "standards_version": 1})
    assert replay["eligible_count"] == 1

    past = await world.client.get(f"/v1/shortlists/{first['id']}", headers=world.lead)
    assert past.status_code == 200
    assert past.json()["items"] == first["items"] and past.json()["catalogue_version"] == first["catalogue_version"]
    v1 = await world.client.get(f"/v1/buyer-standards/{standards_id}", params={"version": 1}, headers=world.lead)
    assert v1.json()["standards"]["constraints"]["required_certifications"] == ["iso-9001", "oeko-tex-100"]

    stale = await world.client.patch(
        f"/v1/buyer-standards/{standards_id}", headers=world.lead | {"If-Match": '"1"'}, json={"name": "x"}
    )
    assert stale.status_code == 412


async def test_linkages_and_tenant_isolation(world: World) -> None:
    shortlist = await world.shortlist({**KNITWEAR, "include_development": True})
    supplier = shortlist["development"][0]["supplier_id"]
    created = await world.client.post(
        "/v1/linkages",
        headers=world.lead,
        json={
            "shortlist_id": shortlist["id"],
            "supplier_id": supplier,
            "development_actions": [{"action": "OEKO-TEX gap audit", "scheme": "oeko-tex-100", "due_on": "2027-03-31"}],
        },
    )
    assert created.status_code == 201, created.text
    linkage = created.json()
    assert linkage["stage"] == "proposed" and linkage["gap"] is not None
    moved = await world.client.patch(
        f"/v1/linkages/{linkage['id']}",
        headers=world.lead | {"If-Match": '"1"'},
        json={"stage": "contracted", "note": "first order placed"},
    )
    assert moved.status_code == 200 and [e["stage"] for e in moved.json()["history"]] == ["proposed", "contracted"]
    backwards = await world.client.patch(
        f"/v1/linkages/{linkage['id']}", headers=world.lead | {"If-Match": '"2"'}, json={"stage": "contacted"}
    )
    assert backwards.status_code == 409
    not_listed = await world.client.post(
        "/v1/linkages",
        headers=world.lead,
        json={"shortlist_id": shortlist["id"], "supplier_id": world.suppliers["dairy"]["id"]},
    )
    assert not_listed.status_code == 422

    other_firm = await world.client.post(
        "/v1/firms",
        headers=world.agency,
        json=firm_body(name="Other Buyer", roles=["lead_firm"], country="IN", subdivision="IN-TN", certifications=[]),
    )
    other = bearer(await world.stack.issue_key(BOOTSTRAP_KEY, role="lead_firm", firm_id=other_firm.json()["id"]))
    assert (await world.client.get(f"/v1/shortlists/{shortlist['id']}", headers=other)).status_code == 404
    assert (await world.client.get(f"/v1/linkages/{linkage['id']}", headers=other)).status_code == 404
    assert (await world.client.get("/v1/linkages", headers=other)).json()["items"] == []
    hijack = await world.client.post(
        "/v1/linkages", headers=other, json={"shortlist_id": shortlist["id"], "supplier_id": supplier}
    )
    assert hijack.status_code == 404
    viewer = bearer(await world.stack.issue_key(BOOTSTRAP_KEY, role="viewer"))
    assert (await world.client.get(f"/v1/shortlists/{shortlist['id']}", headers=viewer)).status_code == 200
    assert (await world.client.post("/v1/shortlists", json={}, headers=viewer)).status_code == 403


async def test_a_stage_cannot_be_dated_in_the_future(world: World) -> None:
    shortlist = await world.shortlist(KNITWEAR)
    supplier = shortlist["items"][0]["supplier_id"]
    body = {"shortlist_id": shortlist["id"], "supplier_id": supplier}
    latest = (datetime.now(UTC) + timedelta(hours=14)).date()  # today on the latest clock, UTC+14
    ahead = latest + timedelta(days=2)  # after today in every time zone, even past midnight there
    future = await world.client.post("/v1/linkages", headers=world.lead, json=body | {"on": ahead.isoformat()})
    problem = assert_problem(future, 422)
    assert problem["errors"][0]["field"] == "on" and problem["errors"][0]["code"] == "in_future"
    # Today somewhere east of UTC (by UTC, possibly tomorrow) is accepted: users date by their calendar.
    created = await world.client.post("/v1/linkages", headers=world.lead, json=body | {"on": latest.isoformat()})
    assert created.status_code == 201, created.text
    linkage = created.json()
    moved = await world.client.patch(
        f"/v1/linkages/{linkage['id']}",
        headers=world.lead | {"If-Match": '"1"'},
        json={"stage": "contacted", "on": ahead.isoformat()},
    )
    assert assert_problem(moved, 422)["errors"][0]["code"] == "in_future"
    unchanged = await world.client.get(f"/v1/linkages/{linkage['id']}", headers=world.lead)
    assert unchanged.json()["stage"] == "proposed" and unchanged.headers["ETag"] == '"1"'


async def test_idempotent_shortlist_requests(world: World) -> None:
    headers = world.lead | {"Idempotency-Key": "sl-1"}
    first = await world.client.post("/v1/shortlists", json=KNITWEAR, headers=headers)
    again = await world.client.post("/v1/shortlists", json=KNITWEAR, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    listed = (await world.client.get("/v1/shortlists", headers=world.lead)).json()["items"]
    assert [s["id"] for s in listed].count(first.json()["id"]) == 1


async def test_sector_codes_in_other_systems_match_as_their_isic_codes(world: World) -> None:
    """NACE 14.39 is ISIC 1430 (knitwear); NAICS 311511 (fluid milk) is ISIC 1050 and 1079, both counted."""
    for constraints, isic in (
        ({"code_system": "nace2", "source_codes": ["14.39"]}, ["1430"]),
        ({"code_system": "naics2017", "source_codes": ["311511"]}, ["1050", "1079"]),
    ):
        converted = await world.shortlist({"constraints": constraints})
        direct = await world.shortlist({"constraints": {"isic_codes": isic}})
        assert converted["eligible_count"] == direct["eligible_count"] > 0
        assert [i["supplier_id"] for i in converted["items"]] == [i["supplier_id"] for i in direct["items"]]
    saved = await world.client.post(
        "/v1/buyer-standards",
        headers=world.lead,
        json={"name": "Milk", "constraints": {"code_system": "naics2017", "source_codes": ["311511"]}},
    )
    assert saved.status_code == 201, saved.text
    constraints = saved.json()["standards"]["constraints"]
    assert (constraints["code_system"], constraints["source_codes"], constraints["isic_codes"]) == (
        "naics2017",
        ["311511"],
        ["1050", "1079"],
    )
    unknown = await world.client.post(
        "/v1/shortlists",
        json={"constraints": {"code_system": "nace2", "source_codes": ["99.99"]}},
        headers=world.lead,
    )
    assert_problem(unknown, 422, field="constraints.source_codes.0")


async def test_buyer_standards_sort_and_count_like_every_list(world: World) -> None:
    """Matching's lists take the shared sort and count (services/common/pagination.py)."""
    for name in ("Pine", "Apple", "Mango", "Kiwi"):
        saved = await world.client.post("/v1/buyer-standards", headers=world.lead, json={"name": name, **KNITWEAR})
        assert saved.status_code == 201, saved.text
    walked: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"sort": "-name", "limit": 1, "count": "true"} | ({"cursor": cursor} if cursor else {})
        page = await world.client.get("/v1/buyer-standards", params=params, headers=world.lead)
        assert page.status_code == 200, page.text
        assert page.json()["total"] == 4
        walked += [s["name"] for s in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert walked == ["Pine", "Mango", "Kiwi", "Apple"]
    refused = await world.client.get("/v1/buyer-standards", params={"sort": "owner"}, headers=world.lead)
    assert_problem(refused, 422, field="sort")


async def test_inclusion_filters_and_criterion_prefer_attested_suppliers(world: World) -> None:
    """A lead firm with a supplier-diversity policy: Kongu Knitwear is attested women-owned and
    women-led, Little Loom youth-led; the others record nothing."""
    claim = {"value": True, "attested_by": "agency", "attested_on": "2026-10-01"}
    for key, claims in (
        ("knit_no_oeko", {"women_owned": claim, "women_led": claim}),
        ("knit_small", {"youth_led": claim}),
    ):
        firm = world.suppliers[key]
        patched = await world.client.patch(
            f"/v1/firms/{firm['id']}", json=claims, headers=world.agency | {"If-Match": f'"{firm["version"]}"'}
        )
        assert patched.status_code == 200, patched.text
    knitwear: dict[str, Any] = {"constraints": {"isic_codes": ["143"]}, "criteria": {"description": "knitted sweaters"}}
    women = await world.wait_for(
        {"constraints": {"isic_codes": ["143"], "require_women_owned": True}}, lambda r: r["eligible_count"] == 1
    )
    assert [i["supplier_id"] for i in women["items"]] == [world.suppliers["knit_no_oeko"]["id"]]
    both = await world.shortlist(
        {"constraints": {"isic_codes": ["143"], "require_women_led": True, "require_youth_led": True}}
    )
    assert both["eligible_count"] == 0  # every required class at once
    youth = await world.wait_for(  # the second claim reaches matching on its own feed page
        {"constraints": {"isic_codes": ["143"], "require_youth_led": True}}, lambda r: r["eligible_count"] == 1
    )
    assert [i["supplier_id"] for i in youth["items"]] == [world.suppliers["knit_small"]["id"]]

    plain = await world.shortlist(knitwear)  # weight 0 by default: not a criterion at all
    assert all("inclusion" not in {c["criterion"] for c in i["criteria"]} for i in plain["items"])
    preferring = await world.shortlist(
        {**knitwear, "criteria": {**knitwear["criteria"], "weights": {"inclusion": 1.0}}}
    )
    assert preferring["eligible_count"] == plain["eligible_count"] == 4
    values = {}
    for item in preferring["items"]:
        criteria = {c["criterion"]: c for c in item["criteria"]}
        inclusion = criteria["inclusion"]
        assert inclusion["contribution"] == pytest.approx(inclusion["weight"] * inclusion["value"], abs=1e-9)
        assert sum(c["contribution"] for c in criteria.values()) == pytest.approx(item["score"], abs=1e-9)
        values[item["supplier_id"]] = inclusion["value"]
    attested = {world.suppliers[k]["id"] for k in ("knit_no_oeko", "knit_small")}
    assert values == {sid: 1.0 if sid in attested else 0.0 for sid in values}
    # Heavily weighted, the attested suppliers lead the list.
    assert {i["supplier_id"] for i in preferring["items"][:2]} == attested

    saved = await world.client.post(
        "/v1/buyer-standards",
        headers=world.lead,
        json={"name": "Diverse knitwear", "constraints": {"isic_codes": ["143"], "require_women_led": True}},
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["standards"]["constraints"]["require_women_led"] is True
    assert saved.json()["standards"]["criteria"]["weights"]["inclusion"] == 0.0
    from_saved = await world.shortlist({"standards_id": saved.json()["id"]})
    assert [i["supplier_id"] for i in from_saved["items"]] == [world.suppliers["knit_no_oeko"]["id"]]
    bad = await world.client.post(
        "/v1/shortlists", json={"constraints": {"require_women_owned": "yes"}}, headers=world.lead
    )
    assert_problem(bad, 422, field="constraints.require_women_owned")


async def test_a_shortlist_is_rendered_once_and_stored_as_answered(world: World) -> None:
    """The response's bytes are the documented JSON of the shortlist; the stored shortlist
    and its change-feed row are cut from the same bytes, so each says exactly the same."""
    from sqlalchemy import select

    from services.matching.shortlists.schemas import ShortlistPublic
    from services.matching.tables import OUTBOX

    for headers in (world.lead, world.lead | {"Idempotency-Key": "rendered-once"}):
        response = await world.client.post("/v1/shortlists", json=KNITWEAR, headers=headers)
        assert response.status_code == 201, response.text
        answered = response.json()
        assert answered["items"], "a shortlist with suppliers, so the bytes say something"
        # What rendering the documented model gives, byte for byte.
        assert response.content == ShortlistPublic.model_validate(answered).model_dump_json().encode()
        past = await world.client.get(f"/v1/shortlists/{answered['id']}", headers=world.lead)
        assert past.json() == answered
        matching = world.stack.apps["matching"]
        async with matching.state.sessionmaker() as session:
            data = (
                await session.execute(select(OUTBOX.c.data).where(OUTBOX.c.entity_id == answered["id"]))
            ).scalar_one()
        assert data == answered | {"owner": data["owner"], "firm_id": world.lead_firm_id}
