"""A small market for requests and scorecards: one agency's cluster with four knitwear
suppliers, two lead firms, and a key for each."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.registry.helpers import broker_body, cluster_body, firm_body
from tests.support import BOOTSTRAP_KEY, Stack

ADMIN = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
VALID = {"valid_from": "2020-01-01", "valid_until": "2099-12-31"}
KNITWEAR = {"constraints": {"isic_codes": ["143"], "required_certifications": ["iso-9001", "oeko-tex-100"]}}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def later(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


class Market:
    """One agency's cluster with four knitwear suppliers (one lacks OEKO-TEX: a development
    candidate), two lead firms, and a key for each supplier."""

    lead_a: dict[str, str]
    lead_b: dict[str, str]

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.client = stack.client
        self.suppliers: dict[str, str] = {}
        self.keys: dict[str, dict[str, str]] = {}

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=headers)
        assert response.status_code == 201, f"{path}: {response.text}"
        return dict(response.json())

    async def setup(self) -> Market:
        agency = await self.post("/v1/agencies", {"name": "Cluster agency", "country": "IN"}, ADMIN)
        self.agency = bearer(await self.stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=agency["id"]))
        cluster = await self.post("/v1/clusters", cluster_body(country="IN", subdivision="IN-TN"), self.agency)
        self.cluster_id = cluster["id"]
        for name in ("a", "b"):
            lead = await self.post(
                "/v1/firms",
                firm_body(name=f"Buyer {name}", roles=["lead_firm"], country="IN", subdivision="IN-TN"),
                self.agency,
            )
            key = await self.stack.issue_key(BOOTSTRAP_KEY, role="lead_firm", firm_id=lead["id"])
            setattr(self, f"lead_{name}", bearer(key))
        oeko = [{"scheme": "iso-9001", **VALID}, {"scheme": "oeko-tex-100", **VALID}]
        for name, certifications, quality in (
            ("anna", oeko, 0.9),
            ("bala", oeko, 0.8),
            ("chitra", oeko, 0.7),
            ("devi", [{"scheme": "iso-9001", **VALID}], 0.95),
        ):
            firm = await self.post(
                "/v1/firms",
                firm_body(
                    name=f"{name.title()} Knits",
                    isic_codes=["1430"],
                    certifications=certifications,
                    quality_score=quality,
                    country="IN",
                    subdivision="IN-TN",
                    cluster_ids=[cluster["id"]],
                ),
                self.agency,
            )
            self.suppliers[name] = firm["id"]
            self.keys[name] = bearer(await self.stack.issue_key(BOOTSTRAP_KEY, role="supplier", firm_id=firm["id"]))
        deadline = time.monotonic() + 10
        while True:  # the catalogue follows the registry's feed: all four, devi a development candidate
            body = KNITWEAR | {"include_development": True}
            listed = await self.client.post("/v1/shortlists", json=body, headers=self.lead_a)
            if listed.status_code == 201 and (listed.json()["eligible_count"], listed.json()["development_count"]) == (
                3,
                1,
            ):
                break
            assert time.monotonic() < deadline, listed.text
            await asyncio.sleep(0.05)
        return self

    async def shortlist(self) -> dict[str, Any]:
        return await self.post("/v1/shortlists", {**KNITWEAR, "include_development": True}, self.lead_a)

    async def request(self, invite: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return await self.post("/v1/requests", request_body(invite, **fields), self.lead_a)

    async def opened(self, invite: dict[str, Any], **fields: Any) -> dict[str, Any]:
        draft = await self.request(invite, **fields)
        response = await self.client.post(
            f"/v1/requests/{draft['id']}/open", headers=self.lead_a | {"If-Match": f'"{draft["version"]}"'}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def linkages(self, shortlist_id: str) -> dict[str, dict[str, Any]]:
        response = await self.client.get("/v1/linkages", params={"shortlist_id": shortlist_id}, headers=self.lead_a)
        assert response.status_code == 200, response.text
        return {item["supplier_id"]: item for item in response.json()["items"]}

    async def broker_key(self, cluster_ids: list[str]) -> dict[str, str]:
        """A key of a new broker of the agency, working in ``cluster_ids``, issued by the agency."""
        broker = await self.post("/v1/brokers", broker_body(country="IN", cluster_ids=cluster_ids), self.agency)
        issued = await self.post(
            "/v1/api-keys", {"name": "broker", "role": "broker", "broker_id": broker["id"]}, self.agency
        )
        return bearer(issued["key"])

    def set_clock(self, moment: datetime) -> None:
        self.stack.apps["matching"].state.clock = lambda: moment


def request_body(invite: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "title": "20,000 cotton sweaters",
        "description": "Crew-neck, 100% cotton, four sizes",
        "quantity": 20000,
        "unit": "pieces",
        "delivery": {"subdivision": "IN-TN", "place": "Chennai port"},
        "needed_by": (date.today() + timedelta(days=60)).isoformat(),
        "respond_by": later(7),
        "target_price": 4.5,
        "currency": "USD",
        "invite": invite,
    } | fields


BID = {"kind": "bid", "unit_price": 4.2, "currency": "USD", "lead_time_days": 45, "capacity_offered": 12000}
