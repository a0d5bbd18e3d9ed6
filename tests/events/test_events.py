"""The events service through the gateway: the registry's and matching's changes become
events, in order, each read by the keys that may read its record, behind a cursor that
survives restarts. One platform per backend serves the whole module (it takes seconds
to build); tests that write only add records of their own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select

from services.common.jsontext import json_text
from services.common.principal import Principal, Role
from services.events.app import MIGRATIONS
from services.events.app import create_app as create_events
from services.events.catalogue import BY_NAME
from services.events.tables import EVENTS
from services.events.visibility import can_read, readable_events
from tests.registry.helpers import cluster_body, duplicates_checked, firm_body
from tests.reporting.dataset import last_seq
from tests.support import (
    ADMIN,
    BOOTSTRAP_KEY,
    LIFESPAN_TIMEOUTS,
    Backend,
    Stack,
    assert_problem,
    events_settings_for,
    gateway_settings_for,
    matching_settings_for,
    registry_settings_for,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("events")]
ADMIN_KEY = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
BID = {"kind": "bid", "unit_price": 3.5, "currency": "USD", "lead_time_days": 30}
DELIVERY = {
    "kind": "delivery",
    "quantity": 100,
    "accepted_quantity": 90,
    "due_on": "2026-10-01",
    "delivered_on": "2026-10-02",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class World:
    """Agency A's firms (one updated, one deleted, two merged), a lead firm of A with a
    shortlist, a linkage moved on, an awarded request and a scorecard; agency B and a
    lead firm of B; keys for each, a viewer of A and a supplier of A."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.client = stack.client
        self.ids: dict[str, str] = {}
        self.keys: dict[str, dict[str, str]] = {}

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str], status: int = 201) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=headers)
        assert response.status_code == status, f"{path}: {response.text}"
        return dict(response.json())

    async def patch(self, path: str, body: dict[str, Any], headers: dict[str, str], version: int) -> dict[str, Any]:
        response = await self.client.patch(path, json=body, headers=headers | {"If-Match": f'"{version}"'})
        assert response.status_code == 200, f"{path}: {response.text}"
        return dict(response.json())

    async def act(self, path: str, body: dict[str, Any] | None, etag: str) -> str:
        """A request's action by its buyer, lead firm A; the request's new ETag."""
        done = await self.client.post(path, json=body, headers=self.keys["lead_a"] | {"If-Match": etag})
        assert done.status_code == 200, done.text
        return done.headers["ETag"]

    async def build(self) -> World:
        for name in ("a", "b"):
            agency = await self.post("/v1/agencies", {"name": f"Agency {name}", "country": "EC"}, ADMIN_KEY)
            self.ids[f"agency_{name}"] = agency["id"]
            self.keys[f"agency_{name}"] = bearer(
                await self.stack.issue_key(BOOTSTRAP_KEY, role="agency", agency_id=agency["id"])
            )
        a = self.keys["agency_a"]
        self.ids["cluster"] = (await self.post("/v1/clusters", cluster_body(), a))["id"]
        supplier = await self.post("/v1/firms", firm_body(name="Anna Knits"), a)
        self.ids["supplier"] = supplier["id"]
        await self.patch(f"/v1/firms/{supplier['id']}", {"capabilities": "Knitting and dyeing"}, a, 1)
        gone = await self.post("/v1/firms", firm_body(name="Closed SME"), a)
        self.ids["deleted"] = gone["id"]
        deleted = await self.client.delete(f"/v1/firms/{gone['id']}", headers=a | {"If-Match": '"1"'})
        assert deleted.status_code == 204, deleted.text
        ruc = [{"scheme": "RUC", "value": "1790012345001"}]
        twins = [(await self.post("/v1/firms", firm_body(name="Confecciones Imbabura", national_ids=ruc), a))["id"]]
        twins.append((await self.post("/v1/firms", firm_body(name="Confecciones Imbabura", national_ids=ruc), a))["id"])
        await duplicates_checked(self.client, a)
        pairs = (await self.client.get("/v1/duplicates", params={"status": "open"}, headers=a)).json()["items"]
        merge = await self.post(f"/v1/duplicates/{pairs[0]['id']}/merge", {}, a, status=200)
        self.ids |= {"merge": merge["id"], "survivor": merge["survivor_id"], "merged": merge["merged_id"]}
        assert {merge["survivor_id"], merge["merged_id"]} == set(twins)
        for name in ("a", "b"):
            body = firm_body(name=f"Buyer {name}", roles=["lead_firm"])
            lead = await self.post("/v1/firms", body, self.keys[f"agency_{name}"])
            self.ids[f"lead_{name}"] = lead["id"]
            self.keys[f"lead_{name}"] = bearer(
                await self.stack.issue_key(BOOTSTRAP_KEY, role="lead_firm", firm_id=lead["id"])
            )
        viewer = await self.post("/v1/api-keys", {"name": "A's M&E", "role": "viewer"}, a)
        self.keys["viewer_a"] = bearer(viewer["key"])
        issued = await self.post("/v1/api-keys", {"name": "Anna", "role": "supplier", "firm_id": supplier["id"]}, a)
        self.keys["supplier"] = bearer(issued["key"])
        await self._linkage_and_request()
        return self

    async def _linkage_and_request(self) -> None:
        lead = self.keys["lead_a"]
        deadline = time.monotonic() + 15
        while True:  # the catalogue follows the registry's feed
            response = await self.client.post(
                "/v1/shortlists", json={"constraints": {"countries": ["EC"]}}, headers=lead
            )
            listed = {item["supplier_id"] for item in response.json().get("items", [])}
            if response.status_code == 201 and self.ids["supplier"] in listed:
                break
            assert time.monotonic() < deadline, response.text
            await asyncio.sleep(0.05)
        shortlist = response.json()
        self.ids["shortlist"] = shortlist["id"]
        linkage = await self.post(
            "/v1/linkages", {"shortlist_id": shortlist["id"], "supplier_id": self.ids["supplier"]}, lead
        )
        self.ids["linkage"] = linkage["id"]
        await self.patch(f"/v1/linkages/{linkage['id']}", {"stage": "contacted"}, lead, linkage["version"])
        draft = await self.post(
            "/v1/requests",
            {
                "title": "Sweaters",
                "quantity": 100,
                "unit": "pieces",
                "delivery": {"country": "EC"},
                "needed_by": "2099-01-01",
                "respond_by": "2098-01-01T00:00:00Z",
                "invite": {"shortlist_id": shortlist["id"], "supplier_ids": [self.ids["supplier"]]},
            },
            lead,
        )
        request = self.ids["request"] = draft["id"]
        etag = await self.act(f"/v1/requests/{request}/open", None, f'"{draft["version"]}"')
        await self.post(
            f"/v1/requests/{request}/answers", BID | {"supplier_id": self.ids["supplier"]}, self.keys["agency_a"]
        )
        etag = (await self.client.get(f"/v1/requests/{request}", headers=lead)).headers["ETag"]
        etag = await self.act(f"/v1/requests/{request}/close", None, etag)
        await self.act(
            f"/v1/requests/{request}/awards", {"awards": [{"supplier_id": self.ids["supplier"], "quantity": 100}]}, etag
        )
        self.ids["scorecard"] = (await self.post(f"/v1/linkages/{linkage['id']}/scorecards", DELIVERY, lead))["id"]


async def caught_up(events: FastAPI, stack: Stack, seconds: float = 20.0) -> None:
    """Until ``events`` has stored both feeds up to their newest change."""
    targets = {name: await last_seq(stack.upstreams[name]) for name in ("registry", "matching")}
    deadline = time.monotonic() + seconds
    while any(events.state.followers[name].cursor < seq for name, seq in targets.items()):
        assert time.monotonic() < deadline, f"events at {[f.cursor for f in events.state.followers.values()]}"
        await asyncio.sleep(0.02)


async def settled(stack: Stack, seconds: float = 20.0) -> None:
    """Until the registry has applied matching's feed (suppliers' observed performance): no
    change is left to come of what the world did."""
    target = await last_seq(stack.upstreams["matching"])
    deadline = time.monotonic() + seconds
    while stack.apps["registry"].state.matching_follower.cursor < target:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def read_all(client: httpx.AsyncClient, headers: Any, limit: int = 200, **params: Any) -> list[dict[str, Any]]:
    """Every event ``headers`` may read, page by page."""
    items: list[dict[str, Any]] = []
    while True:
        response = await client.get("/v1/events", params={"limit": limit, **params}, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        params["after"] = page["next_cursor"]
        if len(page["items"]) < limit:
            return items


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def events_backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(f"{request.param}_backend")
    return backend


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(events_backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    from gateway.app import MIGRATIONS as GATEWAY
    from services.matching.app import MIGRATIONS as MATCHING
    from services.registry.app import MIGRATIONS as REGISTRY

    tmp = tmp_path_factory.mktemp("events")
    async with Stack.start(
        registry_settings_for(await events_backend.fresh(REGISTRY), tmp),
        gateway_settings_for(await events_backend.fresh(GATEWAY), tmp),
        matching_settings=matching_settings_for(await events_backend.fresh(MATCHING), tmp / "matching"),
        events_settings=events_settings_for(await events_backend.fresh(MIGRATIONS), tmp / "events"),
    ) as stack:
        built = await World(stack).build()
        await settled(stack)
        await caught_up(stack.apps["events"], stack)
        built.events = await read_all(stack.client, ADMIN_KEY)  # type: ignore[attr-defined]
        yield built


FEEDS = ("registry", "matching")


def by_id(event: dict[str, Any]) -> str:
    return str(event["id"])


def source(event: dict[str, Any]) -> str:
    return BY_NAME[event["type"]].source


def of(events: list[dict[str, Any]], record_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["data"].get("id") == record_id or e["data"].get("merge_id") == record_id]


async def test_changes_become_events_in_order(world: World) -> None:
    events: list[dict[str, Any]] = world.events  # type: ignore[attr-defined]
    ids = world.ids
    assert len({e["id"] for e in events}) == len(events), "one event per change, none twice"
    supplier = of(events, ids["supplier"])
    assert [e["type"] for e in supplier[:2]] == ["firm.created", "firm.updated"]
    assert supplier[1]["data"] == {
        "id": ids["supplier"],
        "agency_id": ids["agency_a"],
        "version": 2,
        "changed": ["capabilities"],
    }
    assert [e["type"] for e in of(events, ids["deleted"])] == ["firm.created", "firm.deleted"]
    merged = [e["type"] for e in of(events, ids["merged"])]
    assert merged == ["firm.created", "firm.deleted"]
    (merge,) = of(events, ids["merge"])
    assert merge["type"] == "firm.merged"
    assert merge["data"] == {
        "merge_id": ids["merge"],
        "merged_id": ids["merged"],
        "survivor_id": ids["survivor"],
        "agency_id": ids["agency_a"],
    }
    assert events.index(of(events, ids["merged"])[-1]) < events.index(merge), "the merged firm is gone first"
    (shortlist,) = of(events, ids["shortlist"])
    assert shortlist["type"] == "shortlist.created" and shortlist["data"]["buyer_firm_id"] == ids["lead_a"]
    linkage = of(events, ids["linkage"])
    assert [(e["type"], e["data"].get("from"), e["data"].get("to")) for e in linkage] == [
        ("linkage.created", None, None),
        ("linkage.stage_changed", "proposed", "contacted"),
        ("linkage.stage_changed", "contacted", "qualified"),  # the supplier's bid qualifies it
        ("linkage.stage_changed", "qualified", "contracted"),  # the award contracts it
    ]
    request = of(events, ids["request"])
    assert [e["type"] for e in request] == ["request.created", "request.opened", "request.closed", "request.awarded"]
    assert request[-1]["data"]["awarded_supplier_ids"] == [ids["supplier"]]
    assert [e["type"] for e in of(events, ids["scorecard"])] == ["scorecard.created"]
    for event in events:
        assert set(event) == {"id", "type", "created_at", "data"}
        assert len(json_text(event)) < 20_000
    for feed in FEEDS:  # each feed's events in the order of its changes
        times = [e["created_at"] for e in events if source(e) == feed]
        assert times == sorted(times)


async def test_pages_follow_the_cursor_and_wait_for_the_next_event(world: World) -> None:
    events: list[dict[str, Any]] = world.events  # type: ignore[attr-defined]
    client, a = world.client, world.keys["agency_a"]
    assert await read_all(client, ADMIN_KEY, limit=3) == events
    end = (await client.get("/v1/events", params={"limit": 200}, headers=ADMIN_KEY)).json()
    while len(end["items"]) == 200:
        end = (await client.get("/v1/events", params={"after": end["next_cursor"]}, headers=ADMIN_KEY)).json()
    cursor = end["next_cursor"]
    again = (await client.get("/v1/events", params={"after": cursor}, headers=ADMIN_KEY)).json()
    assert again == {"items": [], "next_cursor": cursor}, "at the end, the cursor stays where it is"
    waiting = asyncio.create_task(client.get("/v1/events", params={"after": cursor, "wait": 8}, headers=ADMIN_KEY))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    started = time.monotonic()
    firm = await world.post("/v1/firms", firm_body(name="Late SME"), a)
    page = (await waiting).json()
    assert time.monotonic() - started < 5
    assert [(e["type"], e["data"]["id"]) for e in page["items"]] == [("firm.created", firm["id"])]
    from_start = await client.get("/v1/events/cursor", headers=ADMIN_KEY)
    assert from_start.json()["items"] == []
    assert (
        await client.get("/v1/events", params={"after": from_start.json()["next_cursor"]}, headers=ADMIN_KEY)
    ).json()["items"] == []


async def test_types_filter_and_bad_input(world: World) -> None:
    client, ids = world.client, world.ids
    firms = await read_all(client, ADMIN_KEY, types="firm.deleted,firm.merged")
    assert {e["type"] for e in firms} == {"firm.deleted", "firm.merged"}
    assert {ids["deleted"], ids["merged"]} <= {e["data"].get("id") for e in firms}
    catalogue = (await client.get("/v1/event-types", headers=world.keys["supplier"])).json()
    assert {"firm.merged", "standards.match", "certificate.expiring", "linkage.stage_changed"} <= {
        t["type"] for t in catalogue
    }
    assert all(t["description"] and t["audience"] in ("public", "owner") for t in catalogue)
    for params, status, field in (
        ({"types": "firm.created,firm.exploded"}, 422, "types"),
        ({"types": " , "}, 422, "types"),
        ({"after": "not-a-cursor"}, 400, "after"),
        ({"after": "AAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, 400, "after"),  # well formed, not signed
        ({"after": "x" * 501}, 422, "after"),
        ({"limit": 0}, 422, "limit"),
        ({"limit": 10_000}, 422, "limit"),
        ({"wait": 60}, 422, "wait"),
    ):
        assert_problem(await client.get("/v1/events", params=params, headers=ADMIN_KEY), status, field=field)
    # A cursor with its position altered is refused, however it is altered.
    cursor = (await client.get("/v1/events", params={"limit": 2}, headers=ADMIN_KEY)).json()["next_cursor"]
    forged = ("B" if cursor[0] != "B" else "C") + cursor[1:]
    assert_problem(await client.get("/v1/events", params={"after": forged}, headers=ADMIN_KEY), 400, field="after")


async def test_each_key_reads_what_it_may_read_of_the_records(world: World) -> None:
    client, ids, keys = world.client, world.ids, world.keys
    everything: list[dict[str, Any]] = world.events  # type: ignore[attr-defined]
    public = [e for e in everything if e["type"].split(".")[0] in ("firm", "cluster")]  # merges too
    private = {ids[name] for name in ("shortlist", "linkage", "request", "scorecard")}
    owned = ("shortlist", "linkage", "request", "scorecard")
    lead_a = [e for e in await read_all(client, keys["lead_a"]) if e["type"].split(".")[0] in owned]
    assert private <= {e["data"]["id"] for e in lead_a}
    assert {e["data"]["buyer_firm_id"] for e in lead_a} == {ids["lead_a"]}
    viewer_a = await read_all(client, keys["viewer_a"])
    assert private <= {e["data"].get("id") for e in viewer_a}
    for key in ("lead_b", "agency_b", "supplier"):
        seen = await read_all(client, keys[key])
        assert not private & {e["data"].get("id") for e in seen}, key
        assert {e["id"] for e in public} <= {e["id"] for e in seen}, f"{key}: the registry is read by every key"
    assert ids["merge"] in {e["data"].get("merge_id") for e in await read_all(client, keys["lead_b"])}
    # Another tenant's cursor: refused, whatever position it holds.
    cursor = (await client.get("/v1/events", params={"limit": 1}, headers=keys["lead_a"])).json()["next_cursor"]
    refused = await client.get("/v1/events", params={"after": cursor}, headers=keys["lead_b"])
    assert_problem(refused, 400, field="after")


async def test_the_sql_filter_and_the_predicate_agree(world: World) -> None:
    """``readable_events`` (listing) and ``can_read`` (webhooks) select the same events of
    the world for every kind of principal."""
    ids = world.ids
    principals = [
        Principal(subject="root", role=Role.admin),
        Principal(subject="k1", role=Role.agency, agency_id=ids["agency_a"]),
        Principal(subject="k2", role=Role.agency, agency_id=ids["agency_b"]),
        Principal(subject="k3", role=Role.lead_firm, agency_id=ids["agency_a"], firm_id=ids["lead_a"]),
        Principal(subject="k4", role=Role.lead_firm, firm_id=ids["lead_b"]),
        Principal(subject="k5", role=Role.viewer),
        Principal(subject="k6", role=Role.viewer, agency_id=ids["agency_a"]),
        Principal(subject="k7", role=Role.viewer, agency_id=ids["agency_b"]),
        Principal(subject="k8", role=Role.supplier, agency_id=ids["agency_a"], firm_id=ids["supplier"]),
        Principal(subject="k9", role=Role.integrator),
        Principal(subject="k10", role=Role.broker, agency_id=ids["agency_a"]),
        Principal(subject="k11", role=Role.agency),  # of no agency
    ]
    sessions = world.stack.apps["events"].state.read_sessionmaker
    async with sessions() as session:
        rows = [row._mapping for row in await session.execute(select(EVENTS))]
        selected = {
            principal.subject: set(
                (await session.scalars(select(EVENTS.c.id).where(readable_events(principal, EVENTS)))).all()
            )
            for principal in principals
        }
    assert {row["audience"] for row in rows} == {"public", "owner"}
    for principal in principals:
        assert selected[principal.subject] == {r["id"] for r in rows if can_read(principal, r)}, principal
    assert len(selected["root"]) == len(rows) == len(selected["k5"]) > len(selected["k9"]) > 0


async def test_a_restart_continues_and_a_rebuild_gives_the_same_ids(
    world: World, events_backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A second events service, on a database of its own, replays both feeds from zero:
    the same events with the same ids. Stopped and started again on that database, it
    goes on where it stopped, and a cursor from before the restart still reads on."""
    stack = world.stack
    settings = events_settings_for(await events_backend.fresh(MIGRATIONS), tmp_path_factory.mktemp("events2"))
    mounts: dict[str, httpx.AsyncBaseTransport] = {
        f"http://{name}": httpx.ASGITransport(app=stack.upstreams[name]) for name in ("registry", "matching")
    }

    async def run_once(after: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
        app = create_events(settings, http_mounts=mounts)
        async with LifespanManager(app, **LIFESPAN_TIMEOUTS) as manager:
            await caught_up(app, stack)
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://events") as client:
                everything = await read_all(client, ADMIN)
                since = await read_all(client, ADMIN, after=after) if after else []
                cursor = (await client.get("/v1/events/cursor", headers=ADMIN)).json()["next_cursor"]
        return everything, since, cursor

    rebuilt, _, cursor = await run_once()
    await caught_up(stack.apps["events"], stack)
    through_gateway = await read_all(stack.client, ADMIN_KEY)
    # A rebuild from zero: the same events with the same ids, each feed's in its order (the
    # two feeds' events interleave as each follower stores its pages).
    assert sorted(rebuilt, key=by_id) == sorted(through_gateway, key=by_id)
    for feed in FEEDS:
        assert [e for e in rebuilt if source(e) == feed] == [e for e in through_gateway if source(e) == feed]
    firm = await world.post("/v1/firms", firm_body(name="After restart"), world.keys["agency_a"])
    restarted, since, _ = await run_once(after=cursor)
    assert [(e["type"], e["data"]["id"]) for e in since] == [("firm.created", firm["id"])]
    assert restarted == rebuilt + since


async def test_registry_lists_sync_incrementally_with_updated_since(world: World) -> None:
    """A portal lists what changed since its last sync: records created or changed at or
    after ``updated_since``, on every registry list; bad moments are 422s naming it."""
    client, a = world.client, world.keys["agency_a"]
    since = (await client.get(f"/v1/firms/{world.ids['supplier']}", headers=a)).json()["updated_at"]
    before = (datetime.fromisoformat(since.replace("Z", "+00:00")) + timedelta(microseconds=1)).isoformat()
    created = await world.post("/v1/firms", firm_body(name="New since"), a)
    version = (await client.get(f"/v1/firms/{world.ids['survivor']}", headers=a)).json()["version"]
    changed = await world.patch(f"/v1/firms/{world.ids['survivor']}", {"capabilities": "changed"}, a, version)
    listed = (await client.get("/v1/firms", params={"updated_since": before, "limit": 200}, headers=a)).json()
    assert {created["id"], changed["id"]} <= {f["id"] for f in listed["items"]}
    assert world.ids["supplier"] not in {f["id"] for f in listed["items"]}
    assert all(f["updated_at"] >= before.replace("+00:00", "Z") for f in listed["items"])
    paged = (await client.get("/v1/firms", params={"updated_since": since, "limit": 1}, headers=a)).json()
    assert len(paged["items"]) == 1 and paged["next_cursor"], "filters and pages together"
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for path in ("/v1/clusters", "/v1/networks", "/v1/agencies", "/v1/programmes"):
        response = await client.get(path, params={"updated_since": later}, headers=a)
        assert response.status_code == 200 and response.json()["items"] == [], path
    for value in ("yesterday", "2026-12-07T02:00:00", "2026-12-07", "0", "3000-01-01T00:00:00Z"):
        response = await client.get("/v1/firms", params={"updated_since": value}, headers=a)
        assert_problem(response, 422, field="updated_since")
