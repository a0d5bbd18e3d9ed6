"""Tenant isolation, end to end through the gateway, for every route of the API.

``CASES`` maps every operation of the merged OpenAPI document to a check run with
another tenant's key. ``test_every_route_has_a_case`` fails when a route is added
without one, so isolation is decided, and tested, for each new route.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.registry.helpers import (
    activity_body,
    broker_body,
    cluster_body,
    duplicates_checked,
    firm_body,
    firm_result_body,
    institution_body,
    network_body,
    programme_body,
)
from tests.support import BOOTSTRAP_KEY, Stack

ADMIN = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Tenants:
    """Agency A owns one record of every kind and a lead firm of A has matching records;
    agency B and lead firm B try to reach them."""

    agency_a: dict[str, str]
    agency_b: dict[str, str]
    agency_a_id: str
    agency_b_id: str
    lead_a: dict[str, str]
    lead_b: dict[str, str]
    supplier_a: dict[str, str]  # a supplier key agency A issued for its firm

    def __init__(self, stack: Stack) -> None:
        self.client = stack.client
        self.stack = stack
        self.records: dict[str, str] = {}

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=headers)
        assert response.status_code == 201, f"{path}: {response.text}"
        return dict(response.json())

    async def setup(self) -> Tenants:
        for name in ("a", "b"):
            agency = await self.post("/v1/agencies", {"name": f"Agency {name}", "country": "EC"}, ADMIN)
            key = await self.stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=agency["id"])
            setattr(self, f"agency_{name}", bearer(key))
            setattr(self, f"agency_{name}_id", agency["id"])
        a = self.agency_a
        self.records["/v1/agencies"] = self.agency_a_id
        self.records["/v1/programmes"] = (await self.post("/v1/programmes", programme_body(), a))["id"]
        self.records["/v1/clusters"] = (await self.post("/v1/clusters", cluster_body(), a))["id"]
        supplier = await self.post("/v1/firms", firm_body(), a)
        self.records["/v1/firms"] = supplier["id"]
        self.records["/v1/institutions"] = (await self.post("/v1/institutions", institution_body(), a))["id"]
        self.records["/v1/brokers"] = (await self.post("/v1/brokers", broker_body(), a))["id"]
        second = await self.post("/v1/firms", firm_body(name="Second SME"), a)
        members = [{"firm_id": supplier["id"], "role": "member"}, {"firm_id": second["id"], "role": "member"}]
        self.records["/v1/networks"] = (await self.post("/v1/networks", network_body(members=members), a))["id"]
        self.records["/v1/activities"] = (await self.post("/v1/activities", activity_body(), a))["id"]
        result = await self.post("/v1/firm-results", firm_result_body(firm_id=supplier["id"]), a)
        self.records["/v1/firm-results"] = result["id"]
        for name in ("a", "b"):
            lead = await self.post("/v1/firms", firm_body(name=f"Buyer {name}", roles=["lead_firm"]), a)
            key = await self.stack.issue_key(BOOTSTRAP_KEY, role="lead_firm", firm_id=lead["id"])
            setattr(self, f"lead_{name}", bearer(key))
        standards = await self.post(
            "/v1/buyer-standards", {"name": "A's", "constraints": {"countries": ["EC"]}}, self.lead_a
        )
        self.records["/v1/buyer-standards"] = standards["id"]
        shortlist = await self._shortlist()
        self.records["/v1/shortlists"] = shortlist["id"]
        linkage = await self.post(
            "/v1/linkages",
            {"shortlist_id": shortlist["id"], "supplier_id": shortlist["items"][0]["supplier_id"]},
            self.lead_a,
        )
        self.records["/v1/linkages"] = linkage["id"]
        await self._request(shortlist)
        supplier_key = await self.post(
            "/v1/api-keys", {"name": "A's supplier", "role": "supplier", "firm_id": supplier["id"]}, a
        )
        self.records["/v1/api-keys"], self.supplier_a = supplier_key["id"], bearer(supplier_key["key"])
        await self._imports_and_duplicates()
        await self._webhook_endpoint()
        await self._results_framework()
        return self

    async def _results_framework(self) -> None:
        """Agency A's programme gets a framework indicator, once reporting has read the programme."""
        path = f"/v1/results/{self.records['/v1/programmes']}/indicators"
        for _ in range(200):
            response = await self.client.post(path, json=RESULT_INDICATOR, headers=self.agency_a)
            if response.status_code == 201:
                self.records["result_indicator"] = response.json()["id"]
                return
            assert response.status_code == 404, response.text
            import asyncio

            await asyncio.sleep(0.05)
        raise AssertionError("reporting never read agency A's programme")

    async def _webhook_endpoint(self) -> None:
        """Lead firm A's webhook endpoint (nothing listens: its deliveries fail, and are logged) and a test delivery."""
        endpoint = await self.post(
            "/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/hooks", "event_types": ["linkage.*"]}, self.lead_a
        )
        self.records["/v1/webhook-endpoints"] = endpoint["id"]
        test = await self.client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=self.lead_a)
        assert test.status_code == 202, test.text
        self.records["webhook_delivery"] = test.json()["id"]

    async def _request(self, shortlist: dict[str, Any]) -> None:
        """An open request of lead firm A to its shortlist's first supplier, with a bid and a message."""
        self.records["supplier"] = supplier_id = shortlist["items"][0]["supplier_id"]
        draft = await self.post(
            "/v1/requests",
            {
                "title": "Sweaters",
                "quantity": 100,
                "unit": "pieces",
                "delivery": {"country": "EC"},
                "needed_by": "2099-01-01",
                "respond_by": "2098-01-01T00:00:00Z",
                "invite": {"shortlist_id": shortlist["id"], "supplier_ids": [supplier_id]},
            },
            self.lead_a,
        )
        self.records["/v1/requests"] = draft["id"]
        opened = await self.client.post(f"/v1/requests/{draft['id']}/open", headers=self.lead_a | {"If-Match": '"1"'})
        assert opened.status_code == 200, opened.text
        await self.post(f"/v1/requests/{draft['id']}/answers", {**A_BID, "supplier_id": supplier_id}, self.agency_a)
        await self.post(f"/v1/requests/{draft['id']}/messages", {"supplier_id": supplier_id, "body": "?"}, self.lead_a)
        # Awarded, the shortlist's linkage is contracted, and its first delivery scored.
        closed = await self.client.post(
            f"/v1/requests/{draft['id']}/close", headers=self.lead_a | {"If-Match": opened.headers["ETag"]}
        )
        assert closed.status_code == 200, closed.text
        awarded = await self.client.post(
            f"/v1/requests/{draft['id']}/awards",
            json={"awards": [{"supplier_id": supplier_id, "quantity": 100}]},
            headers=self.lead_a | {"If-Match": closed.headers["ETag"]},
        )
        assert awarded.status_code == 200, awarded.text
        scorecard = await self.post(f"/v1/linkages/{self.records['/v1/linkages']}/scorecards", A_DELIVERY, self.lead_a)
        self.records["/v1/scorecards"] = scorecard["id"]

    async def _imports_and_duplicates(self) -> None:
        csv = "name,roles,size_class,isic_codes,country\nImportadora Andina,supplier,small,1410,EC\n"
        job = await self.client.post("/v1/imports", content=csv, headers=self.agency_a | {"Content-Type": "text/csv"})
        assert job.status_code == 202, job.text
        self.records["/v1/imports"] = job.json()["id"]
        for _ in range(200):
            status = (await self.client.get(f"/v1/imports/{job.json()['id']}", headers=self.agency_a)).json()
            if status["status"] in ("completed", "failed"):
                break
            import asyncio

            await asyncio.sleep(0.05)
        pairs = []
        for name in ("Confecciones Imbabura", "Hilanderia del Norte"):
            ruc = {"scheme": "RUC", "value": "1790012345001" if "Conf" in name else "1790098765001"}
            for _ in range(2):
                await self.post("/v1/firms", firm_body(name=name, national_ids=[ruc]), self.agency_a)
            await duplicates_checked(self.client, self.agency_a)
            listed = (await self.client.get("/v1/duplicates", params={"status": "open"}, headers=self.agency_a)).json()
            pairs = [p["id"] for p in listed["items"]]
        assert len(pairs) >= 2, "the detector flags registrations with the same national id"
        merged = await self.client.post(f"/v1/duplicates/{pairs[0]}/merge", json={}, headers=self.agency_a)
        assert merged.status_code in (200, 201), merged.text
        self.records["/v1/duplicates/merges"] = merged.json()["id"]
        self.records["/v1/duplicates"] = pairs[1]

    async def _shortlist(self) -> dict[str, Any]:
        for _ in range(100):
            response = await self.client.post(
                "/v1/shortlists", json={"constraints": {"countries": ["EC"]}}, headers=self.lead_a
            )
            if response.status_code == 201 and response.json()["items"]:
                return dict(response.json())
            import asyncio

            await asyncio.sleep(0.05)
        raise AssertionError("the catalogue never showed agency A's suppliers")

    def path(self, template: str) -> str:
        """``template`` with agency A's (or lead firm A's) record in every placeholder."""
        values = {
            "record_id": self.records[template.split("/{")[0]] if "{record_id}" in template else "",
            "key_id": self.records["/v1/api-keys"],
            "standards_id": self.records["/v1/buyer-standards"],
            "shortlist_id": self.records["/v1/shortlists"],
            "linkage_id": self.records["/v1/linkages"],
            "request_id": self.records["/v1/requests"],
            "supplier_id": self.records["supplier"],
            "scorecard_id": self.records["/v1/scorecards"],
            "job_id": self.records["/v1/imports"],
            "candidate_id": self.records["/v1/duplicates"],
            "merge_id": self.records["/v1/duplicates/merges"],
            "endpoint_id": self.records["/v1/webhook-endpoints"],
            "delivery_id": self.records["webhook_delivery"],
            "programme_id": self.records["/v1/programmes"],
            "indicator_id": self.records["result_indicator"],
            "file_type": "csv",
            "table": "indicators",
            "chart": "funnel",
            "fmt": "svg",
        }
        path = template.format(**values)
        assert "{" not in path, f"no value for a placeholder of {template}"
        return path


Check = Callable[[Tenants, str, str], Awaitable[None]]


async def open_read(t: Tenants, method: str, template: str) -> None:
    """The registry is the shared catalogue: any key may read it."""
    response = await t.client.request(method, t.path(template), headers=t.agency_b)
    assert response.status_code == 200, response.text


VALID_PATCH = {
    "/v1/firms": {"capabilities": "taken over"},
    "/v1/activities": {"title": "taken over"},
    "/v1/firm-results": {"sales": 1.0},
}
VALID_BODY = {
    "/v1/programmes": programme_body,
    "/v1/clusters": cluster_body,
    "/v1/firms": firm_body,
    "/v1/institutions": institution_body,
    "/v1/brokers": broker_body,
    "/v1/networks": network_body,
    "/v1/activities": activity_body,
    "/v1/firm-results": firm_result_body,
}


async def owner_write_only(t: Tenants, method: str, template: str) -> None:
    """Another agency may not change or delete the record (and it stays as it was)."""
    path = t.path(template)
    before = (await t.client.get(path, headers=t.agency_a)).json()
    body = VALID_PATCH.get(template.split("/{")[0], {"name": "taken over"}) if method == "PATCH" else None
    response = await t.client.request(method, path, headers=t.agency_b | {"If-Match": '"1"'}, json=body)
    assert response.status_code == 403, response.text
    assert (await t.client.get(path, headers=t.agency_a)).json() == before


async def creates_for_itself_only(t: Tenants, method: str, template: str) -> None:
    """An agency cannot create a record owned by another agency."""
    body = VALID_BODY[template]() | {"agency_id": t.agency_a_id}
    response = await t.client.post(template, json=body, headers=t.agency_b)
    assert response.status_code == 403, response.text


ADMIN_BODIES = {
    "/v1/agencies": {"name": "Mine", "country": "EC"},
    "/v1/certification-schemes": {"code": "mine", "name": "Mine", "category": "quality"},
}


async def admin_only(t: Tenants, method: str, template: str) -> None:
    body = ADMIN_BODIES.get(template) if method == "POST" else None
    response = await t.client.request(method, t.path(template), headers=t.agency_b, json=body)
    assert response.status_code == 403, response.text


async def issues_keys_for_itself_only(t: Tenants, method: str, template: str) -> None:
    """An agency issues no admin or agency keys, and none for another agency or its firms and brokers."""
    before = (await t.client.get(template, headers=t.agency_a)).json()["items"]
    for body, status in (
        ({"role": "admin"}, 403),
        ({"role": "agency", "agency_id": t.agency_a_id}, 403),
        ({"role": "viewer", "agency_id": t.agency_a_id}, 403),
        ({"role": "supplier", "firm_id": t.records["/v1/firms"]}, 422),
        ({"role": "broker", "broker_id": t.records["/v1/brokers"]}, 422),
    ):
        response = await t.client.post(template, json={"name": "mine", **body}, headers=t.agency_b)
        assert response.status_code == status, f"{body}: {response.text}"
    assert (await t.client.get(template, headers=t.agency_a)).json()["items"] == before


async def own_keys_only(t: Tenants, method: str, template: str) -> None:
    """An agency lists its own agency's keys; naming another agency is refused."""
    response = await t.client.get(template, headers=t.agency_b)
    assert response.status_code == 200, response.text
    assert {key["agency_id"] for key in response.json()["items"]} == {t.agency_b_id}
    refused = await t.client.get(template, params={"agency_id": t.agency_a_id}, headers=t.agency_b)
    assert refused.status_code == 403, refused.text


async def others_keys_hidden(t: Tenants, method: str, template: str) -> None:
    """Another agency's key does not exist for this agency (404), read, rotated or revoked."""
    key = f"/v1/api-keys/{t.records['/v1/api-keys']}"
    before = (await t.client.get(key, headers=t.agency_a)).json()
    response = await t.client.request(method, t.path(template), headers=t.agency_b)
    assert response.status_code == 404, response.text
    assert (await t.client.get(key, headers=t.agency_a)).json() == before
    assert (await t.client.get(f"/v1/firms/{t.records['/v1/firms']}", headers=t.supplier_a)).status_code == 200


async def private_to_owner(t: Tenants, method: str, template: str) -> None:
    """Matching records are private: another buyer gets 404, as if they did not exist."""
    path = t.path(template)
    body = ({"notes": "x"} if "linkages" in template else {"name": "x"}) if method == "PATCH" else None
    response = await t.client.request(method, path, headers=t.lead_b | {"If-Match": '"1"'}, json=body)
    assert response.status_code == 404, response.text


async def alert_private_to_owner(t: Tenants, method: str, template: str) -> None:
    """Another buyer neither reads nor changes a buyer's alert on its standards (404), and it stays as it was."""
    path = t.path(template)
    own = await t.client.put(path, json={"min_score": 0.5}, headers=t.lead_a)
    assert own.status_code == 200, own.text
    response = await t.client.request(method, path, headers=t.lead_b, json={"top_n": 3} if method == "PUT" else None)
    assert response.status_code == 404, response.text
    assert (await t.client.get(path, headers=t.lead_a)).json() == own.json()


async def own_list_only(t: Tenants, method: str, template: str) -> None:
    response = await t.client.get(template, headers=t.lead_b)
    assert response.status_code == 200 and response.json()["items"] == [], response.text


async def own_shortlists_from_own_standards(t: Tenants, method: str, template: str) -> None:
    response = await t.client.post(template, json={"standards_id": t.records["/v1/buyer-standards"]}, headers=t.lead_b)
    assert response.status_code == 404, response.text


async def linkages_on_own_shortlists(t: Tenants, method: str, template: str) -> None:
    response = await t.client.post(
        template,
        headers=t.lead_b,
        json={"shortlist_id": t.records["/v1/shortlists"], "supplier_id": t.records["/v1/firms"]},
    )
    assert response.status_code == 404, response.text


A_DELIVERY = {
    "kind": "delivery",
    "quantity": 100,
    "accepted_quantity": 90,
    "due_on": "2026-10-01",
    "delivered_on": "2026-10-02",
}
SCORECARD_BODIES = {
    "/v1/linkages/{linkage_id}/scorecards": A_DELIVERY,
    "/v1/scorecards/{scorecard_id}/appeal": {"reason": "mine now?"},
    "/v1/scorecards/{scorecard_id}/decision": {"outcome": "voided"},
}


async def scorecard_private(t: Tenants, method: str, template: str) -> None:
    """Neither another buyer nor another agency (deciding for its own suppliers) reaches a
    scorecard: 404, and it stays as it was."""
    before = (await t.client.get(t.path("/v1/scorecards/{scorecard_id}"), headers=t.lead_a)).json()
    for headers in (t.lead_b, t.agency_b):
        response = await t.client.request(
            method, t.path(template), headers=headers, json=SCORECARD_BODIES.get(template)
        )
        assert response.status_code == 404, response.text
    assert (await t.client.get(t.path("/v1/scorecards/{scorecard_id}"), headers=t.lead_a)).json() == before


async def no_scorecards_of_others(t: Tenants, method: str, template: str) -> None:
    for headers in (t.lead_b, t.agency_b):
        response = await t.client.get(template, headers=headers)
        assert response.status_code == 200 and response.json()["items"] == [], response.text


A_BID = {"kind": "bid", "unit_price": 3.5, "currency": "USD", "lead_time_days": 30}
REQUEST_BODIES: dict[tuple[str, str], Callable[[Tenants], dict[str, Any]]] = {
    ("PATCH", ""): lambda t: {"title": "taken over"},
    ("POST", "/extend"): lambda t: {"respond_by": "2098-06-01T00:00:00Z"},
    ("POST", "/cancel"): lambda t: {"reason": "taken over"},
    ("POST", "/awards"): lambda t: {"awards": [{"supplier_id": t.records["supplier"], "quantity": 1}]},
    ("POST", "/answers"): lambda t: A_BID | {"supplier_id": t.records["supplier"]},
    ("PUT", "/answers/{supplier_id}"): lambda t: A_BID,
    ("POST", "/messages"): lambda t: {"supplier_id": t.records["supplier"], "body": "mine now?"},
}


async def request_private(t: Tenants, method: str, template: str) -> None:
    """Another buyer reaches nothing of a request (404, as if it did not exist), and it stays as it was."""
    before = (await t.client.get(t.path("/v1/requests/{request_id}"), headers=t.lead_a)).json()
    tail = template.removeprefix("/v1/requests/{request_id}")
    body = REQUEST_BODIES.get((method, tail), lambda t: None)(t)
    response = await t.client.request(
        method,
        t.path(template),
        params={"supplier_id": t.records["supplier"]} if tail == "/messages" and method == "GET" else None,
        headers=t.lead_b | {"If-Match": '"*"'},
        json=body,
    )
    assert response.status_code == 404, response.text
    assert (await t.client.get(t.path("/v1/requests/{request_id}"), headers=t.lead_a)).json() == before


async def invitations_of_own_suppliers(t: Tenants, method: str, template: str) -> None:
    """Another agency (which may answer for its own suppliers) does not see A's supplier's invitation."""
    response = await t.client.get(template, headers=t.agency_b)
    assert response.status_code == 200 and response.json()["items"] == [], response.text
    own = await t.client.get(template, headers=t.agency_a)
    assert t.records["/v1/requests"] in [r["id"] for r in own.json()["items"]], own.text


async def requests_on_own_shortlists(t: Tenants, method: str, template: str) -> None:
    body = {
        "title": "Sweaters",
        "quantity": 1,
        "unit": "pieces",
        "delivery": {"country": "EC"},
        "needed_by": "2099-01-01",
        "respond_by": "2098-01-01T00:00:00Z",
        "invite": {"shortlist_id": t.records["/v1/shortlists"], "supplier_ids": [t.records["supplier"]]},
    }
    response = await t.client.post(template, json=body, headers=t.lead_b)
    assert response.status_code == 422 and "invite.shortlist_id" in response.text, response.text


async def not_tenant_owned(t: Tenants, method: str, template: str) -> None:
    """Records of the caller's own, or public facts: nothing of another tenant is reachable this way."""


async def own_figures_only(t: Tenants, method: str, template: str) -> None:
    """An agency reads its own programme figures; naming another agency is refused."""
    path = t.path(template)
    own = await t.client.get(path, headers=t.agency_b)
    assert own.status_code == 200, own.text
    response = await t.client.get(path, params={"agency_id": t.agency_a_id}, headers=t.agency_b)
    assert response.status_code == 403, response.text


RESULT_INDICATOR = {
    "indicator": "people_reached",
    "level": "output",
    "statement": "People trained",
    "baseline": {"value": 0, "date": "2024-01-01"},
    "targets": [{"label": "2030", "to": "2030-12-31", "value": 100}],
    "means_of_verification": "Attendance lists",
}


async def results_hidden_from_others(t: Tenants, method: str, template: str) -> None:
    """Another agency neither reads nor writes a programme's results framework: 404, as if the
    programme did not exist, and the framework stays as it was."""
    results = t.path("/v1/results/{programme_id}")
    before = (await t.client.get(results, headers=t.agency_a)).json()["indicators"]
    body = {"POST": RESULT_INDICATOR | {"indicator": "women_reached"}, "PATCH": {"statement": "taken over"}}
    response = await t.client.request(
        method, t.path(template), headers=t.agency_b | {"If-Match": '"1"'}, json=body.get(method)
    )
    assert response.status_code == 404, response.text
    assert (await t.client.get(results, headers=t.agency_a)).json()["indicators"] == before


async def not_in_others_lists(t: Tenants, method: str, template: str) -> None:
    """Another agency's list does not show this agency's jobs, pairs or merges."""
    response = await t.client.get(template, headers=t.agency_b)
    assert response.status_code == 200, response.text
    assert t.records[template] not in {item["id"] for item in response.json()["items"]}


async def hidden_from_others(t: Tenants, method: str, template: str) -> None:
    """Another agency's job, pair or merge does not exist for this key (404), read or acted on."""
    response = await t.client.request(
        method, t.path(template), headers=t.agency_b, json={} if method == "POST" else None
    )
    assert response.status_code == 404, response.text


async def own_agency_only(t: Tenants, method: str, template: str) -> None:
    """Naming another agency (an import for it, its duplicate policy) is refused."""
    if method == "POST":
        response = await t.client.post(
            template,
            params={"agency_id": t.agency_a_id},
            content="name\nX\n",
            headers=t.agency_b | {"Content-Type": "text/csv"},
        )
    else:
        response = await t.client.request(
            method,
            template,
            params={"agency_id": t.agency_a_id},
            headers=t.agency_b,
            json={"auto_merge_same_national_id": True} if method == "PUT" else None,
        )
    assert response.status_code == 403, response.text


async def _all_events(t: Tenants, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every event ``headers``' key reads, all pages."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        response = await t.client.get("/v1/events", params=params, headers=headers)
        assert response.status_code == 200, response.text
        events += response.json()["items"]
        if len(response.json()["items"]) < 200:
            return events
        params["after"] = response.json()["next_cursor"]


async def _events_of_a(t: Tenants) -> list[dict[str, Any]]:
    """Lead firm A's events, once the events service has caught up with its scorecard."""
    import asyncio

    for _ in range(200):
        events = await _all_events(t, t.lead_a)
        if any(e["type"] == "scorecard.created" for e in events):
            return events
        await asyncio.sleep(0.05)
    raise AssertionError("lead firm A's scorecard never became an event")


PRIVATE_RECORDS = ("/v1/shortlists", "/v1/linkages", "/v1/requests", "/v1/scorecards")


async def own_events_only(t: Tenants, method: str, template: str) -> None:
    """Another buyer or agency reads none of A's matching events (merges, ids of public
    firms, every key reads), and a cursor issued to A is refused to them with a 400 naming
    ``after``."""
    own = await _events_of_a(t)
    private = {t.records[path] for path in PRIVATE_RECORDS}
    assert private <= {e["data"].get("id") for e in own}
    for headers in (t.lead_b, t.agency_b, t.supplier_a):
        seen = await _all_events(t, headers)
        assert not private & {e["data"].get("id") for e in seen}
        merges = [e for e in seen if e["type"] == "firm.merged"]
        assert [e["data"]["merge_id"] for e in merges] == [t.records["/v1/duplicates/merges"]]
    cursor = (await t.client.get(template, params={"limit": 1}, headers=t.lead_a)).json()["next_cursor"]
    for headers in (t.lead_b, t.agency_b):
        refused = await t.client.get(template, params={"after": cursor}, headers=headers)
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "after", refused.text


async def cursor_of_own_tenant(t: Tenants, method: str, template: str) -> None:
    """The cursor at the end of the log is the caller's own: another tenant cannot read on with it."""
    cursor = (await t.client.get(template, headers=t.lead_b)).json()["next_cursor"]
    refused = await t.client.get("/v1/events", params={"after": cursor}, headers=t.lead_a)
    assert refused.status_code == 400, refused.text
    assert (await t.client.get("/v1/events", params={"after": cursor}, headers=t.lead_b)).status_code == 200


WEBHOOK_BODIES = {
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): {"url": "http://127.0.0.1:9/mine-now"},
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): {"grace_seconds": 0},
}


async def webhook_endpoint_private(t: Tenants, method: str, template: str) -> None:
    """Another buyer or agency reaches nothing of a webhook endpoint or its deliveries (404,
    as if it did not exist), and it stays as it was."""
    endpoint = t.path("/v1/webhook-endpoints/{endpoint_id}")
    before = (await t.client.get(endpoint, headers=t.lead_a)).json()
    for headers in (t.lead_b, t.agency_b):
        body = WEBHOOK_BODIES.get((method, template))
        response = await t.client.request(method, t.path(template), headers=headers | {"If-Match": '"*"'}, json=body)
        assert response.status_code == 404, response.text
    assert (await t.client.get(endpoint, headers=t.lead_a)).json() == before


async def own_endpoints_only(t: Tenants, method: str, template: str) -> None:
    for headers in (t.lead_b, t.agency_b):
        response = await t.client.get(template, headers=headers)
        assert response.status_code == 200 and response.json()["items"] == [], response.text


async def endpoints_for_itself(t: Tenants, method: str, template: str) -> None:
    """An endpoint another buyer creates is its own: lead firm A does not see it."""
    created = await t.post(template, {"url": "http://127.0.0.1:9/b", "event_types": ["*"]}, t.lead_b)
    own = (await t.client.get(template, headers=t.lead_a)).json()["items"]
    assert created["id"] not in [e["id"] for e in own]
    deleted = await t.client.delete(f"{template}/{created['id']}", headers=t.lead_b)
    assert deleted.status_code == 204, deleted.text


async def firm_results_hidden(t: Tenants, method: str, template: str) -> None:
    """A firm's figures are private to its agency: another agency, a buyer and a supplier key
    of the same agency get 404 (as if they did not exist), and the record stays as it was."""
    path = t.path(template)
    before = (await t.client.get(path, headers=t.agency_a)).json()
    body = VALID_PATCH["/v1/firm-results"] if method == "PATCH" else None
    # Buyer and supplier keys hold no registry:write: the gateway refuses their writes first.
    for headers, status in (
        (t.agency_b, 404),
        (t.lead_b, 404 if method == "GET" else 403),
        (t.supplier_a, 404 if method == "GET" else 403),
    ):
        response = await t.client.request(method, path, headers=headers | {"If-Match": '"1"'}, json=body)
        assert response.status_code == status, response.text
    assert (await t.client.get(path, headers=t.agency_a)).json() == before


async def firm_results_not_listed(t: Tenants, method: str, template: str) -> None:
    for headers in (t.agency_b, t.lead_b, t.supplier_a):
        response = await t.client.get(template, headers=headers)
        assert response.status_code == 200 and response.json()["items"] == [], response.text
    own = (await t.client.get(template, headers=t.agency_a)).json()["items"]
    assert [r["id"] for r in own] == [t.records[template]]


async def firm_results_for_own_firms(t: Tenants, method: str, template: str) -> None:
    """Another agency enters no figures for A's firm (422, as for a firm that does not exist)
    nor in A's name (403)."""
    body = firm_result_body(firm_id=t.records["/v1/firms"], period="2024")
    response = await t.client.post(template, json=body, headers=t.agency_b)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "firm_id", response.text
    response = await t.client.post(template, json=body | {"agency_id": t.agency_a_id}, headers=t.agency_b)
    assert response.status_code == 403, response.text


REGISTRY = [
    "/v1/programmes",
    "/v1/clusters",
    "/v1/firms",
    "/v1/institutions",
    "/v1/brokers",
    "/v1/networks",
    "/v1/activities",
]
CASES: dict[tuple[str, str], Check] = {}
for collection in REGISTRY:
    CASES[("post", collection)] = creates_for_itself_only
    CASES[("get", collection)] = open_read
    CASES[("get", collection + "/{record_id}")] = open_read
    CASES[("patch", collection + "/{record_id}")] = owner_write_only
    CASES[("delete", collection + "/{record_id}")] = owner_write_only
CASES |= {
    ("post", "/v1/firm-results"): firm_results_for_own_firms,
    ("get", "/v1/firm-results"): firm_results_not_listed,
    ("get", "/v1/firm-results/{record_id}"): firm_results_hidden,
    ("patch", "/v1/firm-results/{record_id}"): firm_results_hidden,
    ("delete", "/v1/firm-results/{record_id}"): firm_results_hidden,
    ("post", "/v1/agencies"): admin_only,
    ("get", "/v1/agencies"): open_read,
    ("get", "/v1/agencies/{record_id}"): open_read,
    ("patch", "/v1/agencies/{record_id}"): owner_write_only,
    ("delete", "/v1/agencies/{record_id}"): owner_write_only,
    ("get", "/v1/certification-schemes"): open_read,
    ("post", "/v1/certification-schemes"): admin_only,
    ("get", "/v1/codes/isic"): open_read,
    ("get", "/v1/codes/hs"): open_read,
    ("post", "/v1/api-keys"): issues_keys_for_itself_only,
    ("get", "/v1/api-keys"): own_keys_only,
    ("get", "/v1/api-keys/{key_id}"): others_keys_hidden,
    ("post", "/v1/api-keys/{key_id}/rotate"): others_keys_hidden,
    ("delete", "/v1/api-keys/{key_id}"): others_keys_hidden,
    ("post", "/v1/buyer-standards"): not_tenant_owned,
    ("get", "/v1/buyer-standards"): own_list_only,
    ("get", "/v1/buyer-standards/{standards_id}"): private_to_owner,
    ("patch", "/v1/buyer-standards/{standards_id}"): private_to_owner,
    ("put", "/v1/buyer-standards/{standards_id}/alert"): alert_private_to_owner,
    ("get", "/v1/buyer-standards/{standards_id}/alert"): alert_private_to_owner,
    ("delete", "/v1/buyer-standards/{standards_id}/alert"): alert_private_to_owner,
    ("post", "/v1/shortlists"): own_shortlists_from_own_standards,
    ("get", "/v1/shortlists"): own_list_only,
    ("get", "/v1/shortlists/{shortlist_id}"): private_to_owner,
    ("post", "/v1/linkages"): linkages_on_own_shortlists,
    ("get", "/v1/linkages"): own_list_only,
    ("get", "/v1/linkages/{linkage_id}"): private_to_owner,
    ("patch", "/v1/linkages/{linkage_id}"): private_to_owner,
    ("post", "/v1/requests"): requests_on_own_shortlists,
    ("get", "/v1/requests"): own_list_only,
    ("get", "/v1/invitations"): invitations_of_own_suppliers,
    ("get", "/v1/requests/{request_id}"): request_private,
    ("patch", "/v1/requests/{request_id}"): request_private,
    ("post", "/v1/requests/{request_id}/open"): request_private,
    ("post", "/v1/requests/{request_id}/extend"): request_private,
    ("post", "/v1/requests/{request_id}/close"): request_private,
    ("post", "/v1/requests/{request_id}/cancel"): request_private,
    ("post", "/v1/requests/{request_id}/awards"): request_private,
    ("post", "/v1/requests/{request_id}/answers"): request_private,
    ("get", "/v1/requests/{request_id}/answers/{supplier_id}"): request_private,
    ("put", "/v1/requests/{request_id}/answers/{supplier_id}"): request_private,
    ("get", "/v1/requests/{request_id}/messages"): request_private,
    ("post", "/v1/requests/{request_id}/messages"): request_private,
    ("post", "/v1/linkages/{linkage_id}/scorecards"): scorecard_private,
    ("get", "/v1/scorecards"): no_scorecards_of_others,
    ("get", "/v1/scorecards/{scorecard_id}"): scorecard_private,
    ("post", "/v1/scorecards/{scorecard_id}/appeal"): scorecard_private,
    ("post", "/v1/scorecards/{scorecard_id}/decision"): scorecard_private,
    ("post", "/v1/imports"): own_agency_only,
    ("get", "/v1/imports"): not_in_others_lists,
    ("get", "/v1/imports/template.csv"): not_tenant_owned,
    ("get", "/v1/imports/template.xlsx"): not_tenant_owned,
    ("get", "/v1/imports/{job_id}"): hidden_from_others,
    ("get", "/v1/imports/{job_id}/errors.csv"): hidden_from_others,
    ("get", "/v1/duplicates"): not_in_others_lists,
    ("get", "/v1/duplicates/check"): not_tenant_owned,
    ("get", "/v1/duplicates/{candidate_id}"): hidden_from_others,
    ("post", "/v1/duplicates/{candidate_id}/merge"): hidden_from_others,
    ("post", "/v1/duplicates/{candidate_id}/distinct"): hidden_from_others,
    ("get", "/v1/duplicates/merges"): not_in_others_lists,
    ("get", "/v1/duplicates/merges/{merge_id}"): hidden_from_others,
    ("post", "/v1/duplicates/merges/{merge_id}/undo"): hidden_from_others,
    ("get", "/v1/duplicates/policy"): own_agency_only,
    ("put", "/v1/duplicates/policy"): own_agency_only,
    ("get", "/dashboard"): own_figures_only,
    ("get", "/v1/indicators"): own_figures_only,
    ("get", "/v1/indicators/series"): own_figures_only,
    ("get", "/v1/indicators/clusters"): own_figures_only,
    ("get", "/v1/exports/{table}.csv"): own_figures_only,
    ("get", "/v1/charts/{chart}.{fmt}"): own_figures_only,
    ("get", "/v1/indicators/definitions"): not_tenant_owned,
    ("post", "/v1/results/{programme_id}/indicators"): results_hidden_from_others,
    ("patch", "/v1/results/{programme_id}/indicators/{indicator_id}"): results_hidden_from_others,
    ("delete", "/v1/results/{programme_id}/indicators/{indicator_id}"): results_hidden_from_others,
    ("get", "/v1/results/{programme_id}"): results_hidden_from_others,
    ("get", "/v1/results/{programme_id}/logframe.{file_type}"): results_hidden_from_others,
    ("get", "/v1/results/{programme_id}/iati.xml"): results_hidden_from_others,
    ("get", "/dashboard/results/{programme_id}"): results_hidden_from_others,
    ("get", "/v1/indicators/freshness"): not_tenant_owned,
    ("get", "/v1/events"): own_events_only,
    ("get", "/v1/events/cursor"): cursor_of_own_tenant,
    ("get", "/v1/event-types"): not_tenant_owned,
    ("post", "/v1/webhook-endpoints"): endpoints_for_itself,
    ("get", "/v1/webhook-endpoints"): own_endpoints_only,
    **{
        (method, f"/v1/webhook-endpoints/{{endpoint_id}}{tail}"): webhook_endpoint_private
        for method, tail in (
            ("get", ""),
            ("patch", ""),
            ("delete", ""),
            ("post", "/disable"),
            ("post", "/enable"),
            ("post", "/rotate-secret"),
            ("post", "/test"),
            ("get", "/deliveries"),
            ("get", "/deliveries/{delivery_id}"),
            ("post", "/deliveries/{delivery_id}/replay"),
        )
    },
}


@pytest.fixture
async def tenants(whole_platform: Stack) -> Tenants:
    return await Tenants(whole_platform).setup()


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_every_route_has_a_case(whole_platform: Stack) -> None:
    document = (await whole_platform.client.get("/openapi.json")).json()
    assert "x-unavailable-services" not in document["info"], "every service's routes must be in the document"
    missing = operations(document) - set(CASES)
    assert not missing, f"routes without a tenancy case: {sorted(missing)}"


async def test_tenant_isolation_matrix(tenants: Tenants) -> None:
    document = (await tenants.client.get("/openapi.json")).json()
    failures = []
    covered = sorted(operations(document) & set(CASES))  # the others fail test_every_route_has_a_case
    assert len(covered) >= 40
    for method, template in covered:
        try:
            await CASES[(method, template)](tenants, method.upper(), template)
        except AssertionError as exc:
            failures.append(f"{method.upper()} {template}: {exc}")
    assert not failures, "\n".join(failures)
    await _agency_viewers_read_their_agency_only(tenants)


async def _agency_viewers_read_their_agency_only(t: Tenants) -> None:
    """A viewer key an agency issues (M&E staff) reads that agency's matching records and
    figures; a platform viewer (issued by an admin) reads every agency's."""
    viewers = {}
    for name, agency in (("a", t.agency_a), ("b", t.agency_b)):
        issued = await t.post("/v1/api-keys", {"name": f"{name} M&E", "role": "viewer"}, agency)
        viewers[name] = bearer(issued["key"])
    for path in ("/v1/shortlists", "/v1/linkages", "/v1/requests", "/v1/buyer-standards", "/v1/scorecards"):
        own = (await t.client.get(path, headers=viewers["a"])).json()["items"]
        assert t.records[path] in [r["id"] for r in own], path
        assert (await t.client.get(path, headers=viewers["b"])).json()["items"] == [], path
        record = f"{path}/{t.records[path]}"
        assert (await t.client.get(record, headers=viewers["b"])).status_code == 404, path
    figures = await t.client.get("/v1/indicators", params={"agency_id": t.agency_a_id}, headers=viewers["b"])
    assert figures.status_code == 403, figures.text


# --- References: an agency's records name only its own records ------------------------
#
# Every field by which a registry record names another record, and the collection it
# names. ``test_every_reference_has_a_case`` fails when a schema gains an id field
# without a case here, so each new reference is decided, and tested, too.
REFERENCES: dict[tuple[str, str], str] = {
    ("/v1/clusters", "programme_id"): "/v1/programmes",
    ("/v1/firms", "cluster_ids"): "/v1/clusters",
    ("/v1/institutions", "cluster_ids"): "/v1/clusters",
    ("/v1/brokers", "cluster_ids"): "/v1/clusters",
    ("/v1/networks", "members"): "/v1/firms",
    ("/v1/networks", "cluster_id"): "/v1/clusters",
    ("/v1/networks", "broker_id"): "/v1/brokers",
    ("/v1/activities", "programme_id"): "/v1/programmes",
    ("/v1/activities", "cluster_id"): "/v1/clusters",
    ("/v1/firm-results", "firm_id"): "/v1/firms",
}
NOT_REFERENCES = {("/v1/firms", "national_ids")}  # registration numbers, not records


def id_fields(model: type[Any]) -> set[str]:
    """Top-level fields of a create schema that hold a record id, directly or in their items."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})

    def names(node: Any) -> set[str]:
        """Property names anywhere under ``node``, through ``$ref``s."""
        if isinstance(node, list):
            return set().union(*(names(n) for n in node))
        if not isinstance(node, dict):
            return set()
        found = set(node.get("properties", {}))
        if "$ref" in node:
            found |= names(definitions[node["$ref"].rsplit("/", 1)[-1]])
        return found.union(*(names(v) for v in node.values()))

    return {
        field
        for field, sub in schema["properties"].items()
        if field != "agency_id" and any(n.endswith(("_id", "_ids")) for n in {field} | names(sub))
    }


def test_every_reference_has_a_case() -> None:
    from services.registry.resources import RESOURCES

    declared = {(spec.path, field) for spec in RESOURCES for field in id_fields(spec.create)} - NOT_REFERENCES
    assert declared == set(REFERENCES)


class TwoAgencies:
    """Agencies A and B, each with a programme, cluster, two firms and a broker of its own."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.client = stack.client
        self.keys: dict[str, dict[str, str]] = {}
        self.ids: dict[str, str] = {}
        self.records: dict[str, dict[str, str]] = {}

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=headers)
        assert response.status_code == 201, f"{path}: {response.text}"
        return dict(response.json())

    async def setup(self) -> TwoAgencies:
        for name in ("a", "b"):
            agency = await self.post("/v1/agencies", {"name": f"Agency {name}", "country": "EC"}, ADMIN)
            key = await self.stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=agency["id"])
            self.keys[name], self.ids[name] = bearer(key), agency["id"]
            own = self.records[name] = {}
            for path, body in (
                ("/v1/programmes", programme_body()),
                ("/v1/clusters", cluster_body()),
                ("/v1/firms", firm_body()),
                ("/v1/firms#second", firm_body(name="Second SME")),
                ("/v1/brokers", broker_body()),
            ):
                own[path] = (await self.post(path.split("#")[0], body, self.keys[name]))["id"]
        return self

    def referencing(self, collection: str, field: str, owner: str, target_id: str) -> tuple[dict[str, Any], str]:
        """A valid body of ``collection`` whose ``field`` names ``target_id`` (besides ``owner``'s
        own record in list fields), and the field the problem names."""
        own = self.records[owner]
        if field == "members":
            members = [{"firm_id": own["/v1/firms#second"], "role": "member"}, {"firm_id": target_id, "role": "member"}]
            return {"members": members}, "members.1.firm_id"
        if field.endswith("_ids"):
            return {field: [own["/v1/clusters"], target_id]}, f"{field}.1"
        return {field: target_id}, field


def unknown_like(record_id: str) -> str:
    """An id of the same kind and length that names no record."""
    prefix, _, rest = record_id.partition("_")
    return f"{prefix}_{'0' * len(rest)}"


def problem(response: Any, *, unknown: str = "", named: str = "") -> dict[str, Any]:
    """The problem body without its request id; ``unknown`` replaced by ``named`` if given."""
    body = json.loads(response.text.replace(unknown, named) if unknown else response.text)
    body.pop("request_id", None)
    return dict(body)


async def test_references_name_own_records_only(stack: Stack) -> None:
    """B naming A's record in any reference field, on create or update, gets exactly the 422
    of naming a record that does not exist; B's own records and an admin's writes pass."""
    t = await TwoAgencies(stack).setup()
    failures = []
    for (collection, field), target in REFERENCES.items():
        case = f"{collection} {field}"
        foreign = t.records["a"][target]
        unknown = unknown_like(foreign)
        refs_foreign, error_field = t.referencing(collection, field, "b", foreign)
        refs_unknown, _ = t.referencing(collection, field, "b", unknown)
        refs_own, _ = t.referencing(collection, field, "b", t.records["b"][target])
        body = VALID_BODY[collection]()
        try:
            to_foreign = await t.client.post(collection, json=body | refs_foreign, headers=t.keys["b"])
            to_unknown = await t.client.post(collection, json=body | refs_unknown, headers=t.keys["b"])
            assert to_foreign.status_code == 422, f"create: {to_foreign.text}"
            assert problem(to_foreign) == problem(to_unknown, unknown=unknown, named=foreign)
            assert [e["field"] for e in to_foreign.json()["errors"]] == [error_field]

            own = await t.post(collection, body | refs_own, t.keys["b"])  # own records: allowed
            path, if_match = f"{collection}/{own['id']}", {"If-Match": f'"{own["version"]}"'}
            patch_foreign = await t.client.patch(path, json=refs_foreign, headers=t.keys["b"] | if_match)
            patch_unknown = await t.client.patch(path, json=refs_unknown, headers=t.keys["b"] | if_match)
            assert patch_foreign.status_code == 422, f"update: {patch_foreign.text}"
            assert problem(patch_foreign) == problem(patch_unknown, unknown=unknown, named=foreign)
            assert (await t.client.get(path, headers=t.keys["b"])).json() == own

            by_admin = await t.post(collection, body | refs_foreign | {"agency_id": t.ids["b"]}, ADMIN)
            assert by_admin["agency_id"] == t.ids["b"], "an admin's record keeps the owner it names"
            # B may still edit that record: the references it holds are kept as the admin made them.
            edit = VALID_PATCH.get(collection, {"name": "renamed"})
            kept = await t.client.patch(
                f"{collection}/{by_admin['id']}", json=edit, headers=t.keys["b"] | {"If-Match": '"1"'}
            )
            assert kept.status_code == 200, f"B edits the admin's record: {kept.text}"
        except AssertionError as exc:
            failures.append(f"{case}: {exc}")
    assert not failures, "\n".join(failures)


async def test_agency_deletes_its_firm_no_other_agency_could_attach(stack: Stack) -> None:
    """A's firm cannot be made a member of B's network, so nothing of B keeps A from deleting it."""
    t = await TwoAgencies(stack).setup()
    firm = t.records["a"]["/v1/firms"]
    members = [{"firm_id": t.records["b"]["/v1/firms"], "role": "member"}, {"firm_id": firm, "role": "member"}]
    attach = await t.client.post("/v1/networks", json=network_body(members=members), headers=t.keys["b"])
    assert attach.status_code == 422, attach.text
    deleted = await t.client.delete(f"/v1/firms/{firm}", headers=t.keys["a"] | {"If-Match": '"1"'})
    assert deleted.status_code == 204, deleted.text


async def test_a_network_invitation_stays_with_its_parties(platform: Stack) -> None:
    """A network invited to a request: its counted members' keys, its agency and its cluster's
    brokers act for it; another agency, its broker and supplier keys, and another buyer get
    404 on the request, its answers, threads and the network's linkage, as for a firm."""
    from tests.matching.helpers import BID, Market
    from tests.matching.test_network_suppliers import listed_network

    market = await Market(platform).setup()
    group, found = await listed_network(market, "anna", "bala")
    rfq = await market.opened({"shortlist_id": found["id"], "supplier_ids": [group["id"]]})
    linkage = (await market.linkages(found["id"]))[group["id"]]
    agency = await market.post("/v1/agencies", {"name": "Agency B", "country": "IN"}, ADMIN)
    agency_b = bearer(await market.stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=agency["id"]))
    cluster_b = await market.post("/v1/clusters", cluster_body(country="IN", subdivision="IN-TN"), agency_b)
    firm_b = await market.post(
        "/v1/firms", firm_body(country="IN", subdivision="IN-TN", cluster_ids=[cluster_b["id"]]), agency_b
    )
    supplier_b = bearer(await market.stack.issue_key(BOOTSTRAP_KEY, role="supplier", firm_id=firm_b["id"]))
    broker = await market.post("/v1/brokers", broker_body(country="IN", cluster_ids=[cluster_b["id"]]), agency_b)
    issued = await market.post(
        "/v1/api-keys", {"name": "broker", "role": "broker", "broker_id": broker["id"]}, agency_b
    )
    outsiders = {
        "agency B": agency_b,
        "B's broker": bearer(issued["key"]),
        "B's supplier": supplier_b,
        "lead firm B": market.lead_b,
    }
    path = f"/v1/requests/{rfq['id']}"
    answer = {**BID, "supplier_id": group["id"]}
    for name, key in outsiders.items():
        for method, target, body in (
            ("GET", path, None),
            ("POST", f"{path}/answers", answer),
            ("GET", f"{path}/answers/{group['id']}", None),
            ("GET", f"{path}/messages?supplier_id={group['id']}", None),
            ("POST", f"{path}/messages", {"supplier_id": group["id"], "body": "?"}),
            ("GET", f"/v1/linkages/{linkage['id']}", None),
        ):
            response = await market.client.request(method, target, headers=key, json=body)
            assert response.status_code == 404, f"{name} {method} {target}: {response.text}"
        inbox = await market.client.get("/v1/invitations", headers=key)
        assert rfq["id"] not in [r["id"] for r in inbox.json().get("items", [])], name
    # The parties see it.
    for key in (market.keys["anna"], market.keys["bala"], market.agency):
        inbox = await market.client.get("/v1/invitations", headers=key)
        assert rfq["id"] in [r["id"] for r in inbox.json()["items"]]
