"""Webhooks on the whole platform, through the gateway: events made from the registry's and
matching's real feeds reach the endpoints of the keys that may read them, and no other."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.events.settings import EventsSettings
from tests.events.receiver import Receiver
from tests.registry.helpers import firm_body
from tests.support import BOOTSTRAP_KEY, Stack

ADMIN = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}


@pytest.fixture
def events_settings(events_settings: EventsSettings) -> EventsSettings:
    return events_settings.model_copy(update={"webhook_poll_seconds": 0.05})


async def _post(stack: Stack, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await stack.client.post(path, json=body, headers=headers)
    assert response.status_code == 201, f"{path}: {response.text}"
    return dict(response.json())


async def test_a_buyer_receives_its_own_matching_events_only(whole_platform: Stack) -> None:
    stack = whole_platform
    agency = await _post(stack, "/v1/agencies", {"name": "Agency", "country": "EC"}, ADMIN)
    agency_key = {
        "Authorization": f"Bearer {await stack.issue_key(BOOTSTRAP_KEY, role='agency', agency_id=agency['id'])}"
    }
    await _post(stack, "/v1/firms", firm_body(), agency_key)
    buyers: dict[str, dict[str, str]] = {}
    for name in ("a", "b"):
        lead = await _post(stack, "/v1/firms", firm_body(name=f"Buyer {name}", roles=["lead_firm"]), agency_key)
        key = await stack.issue_key(BOOTSTRAP_KEY, role="lead_firm", firm_id=lead["id"])
        buyers[name] = {"Authorization": f"Bearer {key}"}
    receivers = {"a": Receiver(), "b": Receiver()}
    secrets = {}
    for name, receiver in receivers.items():
        await receiver.start()
        body = {"url": receiver.url, "event_types": ["shortlist.*", "linkage.*"], "description": f"buyer {name}"}
        secrets[name] = (await _post(stack, "/v1/webhook-endpoints", body, buyers[name]))["secret"]
    try:
        shortlist: dict[str, Any] = {}
        for _ in range(200):  # until the catalogue has the supplier
            response = await stack.client.post(
                "/v1/shortlists", json={"constraints": {"countries": ["EC"]}}, headers=buyers["a"]
            )
            if response.status_code == 201 and response.json()["items"]:
                shortlist = response.json()
                break
            await asyncio.sleep(0.05)
        supplier_id = shortlist["items"][0]["supplier_id"]
        linkage = await _post(
            stack, "/v1/linkages", {"shortlist_id": shortlist["id"], "supplier_id": supplier_id}, buyers["a"]
        )
        received = await receivers["a"].wait_for(2, seconds=30)
        by_type = {r.payload["type"]: r for r in received}
        assert by_type["linkage.created"].payload["data"]["id"] == linkage["id"]
        assert all(r.verifies_with(secrets["a"]) for r in received)
        listed = await stack.client.get("/v1/events", params={"types": "linkage.created"}, headers=buyers["a"])
        assert by_type["linkage.created"].webhook_id in [e["id"] for e in listed.json()["items"]]
        await asyncio.sleep(0.3)
        assert receivers["b"].received == []  # B's key reads none of A's shortlists and linkages
    finally:
        for receiver in receivers.values():
            await receiver.stop()
