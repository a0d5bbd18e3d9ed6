"""Webhooks end to end: the events service delivering to a real receiver (uvicorn on a free
port) that verifies every request with the ``standardwebhooks`` package, on SQLite and
PostgreSQL. Retry schedules are tens of milliseconds, so failures and retries take well
under a second; each wait polls with a deadline instead of sleeping a fixed time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.changefeed import lock_sequence
from services.common.db import create_engine, create_sessionmaker
from services.common.ids import new_id
from services.common.principal import Role
from services.events.app import create_app
from services.events.settings import EventsSettings
from services.events.tables import EVENTS
from services.events.webhooks.queue import new_delivery
from services.events.webhooks.retention import DeliveryLogRetention
from services.events.webhooks.tables import WebhookAttempt, WebhookDelivery
from tests.events.receiver import Receiver
from tests.support import LIFESPAN_TIMEOUTS, FreshPrincipal, assert_problem, principal_headers

AGENCY_A = FreshPrincipal(Role.agency, "key-agency-a", agency_id="agy_A")
AGENCY_B = FreshPrincipal(Role.agency, "key-agency-b", agency_id="agy_B")
ENDPOINTS = "/v1/webhook-endpoints"


async def write_event(session: AsyncSession, type_: str, data: dict[str, Any], agency_id: str | None) -> str:
    """An event as the events service stores it: a matching record of ``agency_id``'s
    (readable by that agency's keys only), or a public one when ``agency_id`` is None."""
    event_id = new_id("evt")
    await lock_sequence(session)
    await session.execute(
        insert(EVENTS).values(
            id=event_id,
            type=type_,
            created_at=datetime.now(UTC),
            subject=str(data.get("id", event_id)),
            source="matching",
            source_seq=0,
            data=data,
            audience="owner" if agency_id else "public",
            owner=f"agency:{agency_id}" if agency_id else None,
            agency_id=agency_id,
        )
    )
    return event_id


class Events:
    """The events service in process (its feeds unreachable: events are written directly),
    restartable, and a way to write events into it."""

    def __init__(self, settings: EventsSettings) -> None:
        self.settings = settings
        self.stack = AsyncExitStack()
        self.client: httpx.AsyncClient

    async def start(self) -> None:
        self.app = create_app(self.settings, http_mounts={})
        manager = await self.stack.enter_async_context(LifespanManager(self.app, **LIFESPAN_TIMEOUTS))
        self.client = await self.stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://events")
        )

    async def stop(self) -> None:
        await self.stack.aclose()
        self.stack = AsyncExitStack()

    async def emit(self, type_: str, agency_id: str | None, **data: Any) -> str:
        async with self.app.state.sessionmaker() as session, session.begin():
            event_id = await write_event(session, type_, data, agency_id)
        if self.app.state.webhook_dispatcher is not None:
            self.app.state.webhook_dispatcher.wake()
        return event_id

    async def endpoint(
        self, url: str, headers: Mapping[str, str] = AGENCY_A, types: list[str] | None = None
    ) -> dict[str, Any]:
        response = await self.client.post(ENDPOINTS, json={"url": url, "event_types": types or ["*"]}, headers=headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def deliveries(self, endpoint_id: str, headers: Mapping[str, str] = AGENCY_A) -> list[dict[str, Any]]:
        response = await self.client.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", headers=headers)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def until(self, check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while not await check():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.02)


@pytest.fixture
async def events(events_settings: EventsSettings) -> AsyncIterator[Events]:
    settings = events_settings.model_copy(
        update={
            "webhook_retry_schedule": "50ms,100ms,150ms,200ms,300ms",
            "webhook_retry_jitter": 0,
            "webhook_timeout_seconds": 2,
            "webhook_poll_seconds": 0.02,
            "feed_wait_seconds": 5,
        }
    )
    service = Events(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


async def test_delivery_is_signed_to_the_standard(events: Events, receiver: Receiver) -> None:
    created = await events.endpoint(receiver.url, types=["shortlist.*"])
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    read = await events.client.get(f"{ENDPOINTS}/{created['id']}", headers=AGENCY_A)
    assert "secret" not in read.json()  # shown once
    await events.emit("request.created", "agy_A", id="clu_1")  # not subscribed
    event_id = await events.emit("shortlist.created", "agy_A", id="frm_1")
    (request,) = await receiver.wait_for(1)
    assert request.webhook_id == event_id
    assert request.verifies_with(created["secret"])
    assert request.payload["type"] == "shortlist.created" and request.payload["data"] == {"id": "frm_1"}
    assert request.payload["timestamp"].endswith("Z")
    assert request.headers["content-type"] == "application/json"
    await events.until(lambda: _status_is(events, created["id"], "succeeded"))
    (delivery,) = await events.deliveries(created["id"])
    assert delivery["event_id"] == event_id and delivery["attempts"] == 1
    (attempt,) = delivery["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["latency_ms"] > 0 and attempt["response_excerpt"] == "answered 200"


async def _status_is(events: Events, endpoint_id: str, *statuses: str) -> bool:
    """Whether the endpoint's deliveries are in ``statuses`` (in order)."""
    return [d["status"] for d in await events.deliveries(endpoint_id)] == list(statuses)


async def test_receiver_down_then_up_and_500_then_200(events: Events, receiver: Receiver) -> None:
    created = await events.endpoint(receiver.url)
    await receiver.stop()
    event_id = await events.emit("linkage.created", "agy_A", id="frm_1")

    async def failed_twice() -> bool:
        (delivery,) = await events.deliveries(created["id"]) or [{"attempts": 0}]
        return bool(delivery["attempts"] >= 2)

    await events.until(failed_twice)
    receiver.statuses = [500]  # back up, but failing once more
    await receiver.start()
    await receiver.wait_for(2)
    assert [r.webhook_id for r in receiver.received] == [event_id, event_id]
    assert all(r.verifies_with(created["secret"]) for r in receiver.received)
    await events.until(lambda: _status_is(events, created["id"], "succeeded"))
    (delivery,) = await events.deliveries(created["id"])
    log = delivery["attempt_log"]
    assert log[0]["status_code"] is None and "ConnectError" in log[0]["error"]
    assert [a["status_code"] for a in log[-2:]] == [500, 200]
    assert log[-2]["response_excerpt"] == "answered 500"
    metrics = (await events.client.get("/metrics")).text
    assert 'webhook_attempts_total{result="5xx",service="events"} 1.0' in metrics
    assert 'webhook_attempts_total{result="2xx",service="events"} 1.0' in metrics
    assert 'webhook_deliveries_pending{service="events"} 0.0' in metrics


async def test_410_disables_the_endpoint_and_tells_the_owner(events: Events, receiver: Receiver) -> None:
    watcher = Receiver()
    await watcher.start()
    try:
        gone = await events.endpoint(receiver.url, types=["shortlist.*"])
        watching = await events.endpoint(watcher.url, types=["webhook_endpoint.disabled"])
        receiver.default_status = 410
        await events.emit("shortlist.created", "agy_A", id="frm_1")
        (notice,) = await watcher.wait_for(1)
        assert notice.verifies_with(watching["secret"])
        assert notice.payload["type"] == "webhook_endpoint.disabled"
        assert notice.payload["data"]["endpoint_id"] == gone["id"]
        read = (await events.client.get(f"{ENDPOINTS}/{gone['id']}", headers=AGENCY_A)).json()
        assert read["enabled"] is False and "410" in read["disabled_reason"]
        await events.emit("shortlist.created", "agy_A", id="frm_2")  # not queued while disabled
        await asyncio.sleep(0.1)
        assert len(receiver.received) == 1
        response = await events.client.post(f"{ENDPOINTS}/{gone['id']}/test", headers=AGENCY_A)
        assert_problem(response, 409)
    finally:
        await watcher.stop()


async def test_schedule_spent_disables_and_redirects_are_failures(events: Events, receiver: Receiver) -> None:
    created = await events.endpoint(receiver.url)
    receiver.default_status = 302
    receiver.headers = {"location": "http://127.0.0.1:1/elsewhere"}
    await events.emit("shortlist.created", "agy_A", id="frm_1")

    async def disabled() -> bool:
        response = await events.client.get(f"{ENDPOINTS}/{created['id']}", headers=AGENCY_A)
        return response.json()["enabled"] is False

    await events.until(disabled)
    assert len(receiver.received) == 6  # the first attempt and five retries, no redirect followed
    (delivery,) = await events.deliveries(created["id"])
    assert delivery["status"] == "failed" and "Redirects are not followed" in delivery["last_error"]


async def test_secret_rotation_signs_with_both_during_grace(events: Events, receiver: Receiver) -> None:
    created = await events.endpoint(receiver.url)
    old = created["secret"]
    path = f"{ENDPOINTS}/{created['id']}/rotate-secret"
    stale = await events.client.post(path, json={"grace_seconds": 1, "extra": 1}, headers=AGENCY_A)
    assert_problem(stale, 422, field="extra")
    rotated = await events.client.post(path, json={"grace_seconds": 1}, headers=AGENCY_A)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")
    await events.emit("shortlist.created", "agy_A", id="frm_1")
    (first,) = await receiver.wait_for(1)
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    assert first.verifies_with(old) and first.verifies_with(new)
    await asyncio.sleep(1.05)  # the grace period ends
    await events.emit("shortlist.created", "agy_A", id="frm_2")
    second = (await receiver.wait_for(2))[1]
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    assert second.verifies_with(new) and not second.verifies_with(old)
    # Rotated at once (grace 0): the old secret never signs again.
    newest = (await events.client.post(path, json={"grace_seconds": 0}, headers=AGENCY_A)).json()["secret"]
    await events.emit("shortlist.created", "agy_A", id="frm_3")
    third = (await receiver.wait_for(3))[2]
    assert third.verifies_with(newest) and not third.verifies_with(new)


async def test_restart_mid_way_loses_nothing(events: Events, receiver: Receiver) -> None:
    created = await events.endpoint(receiver.url)
    emitted = [await events.emit("linkage.created", "agy_A", id=f"frm_{i}") for i in range(10)]
    await receiver.wait_for(1)
    await events.stop()  # mid-way: some sent, some queued, some not even fanned out
    engine = create_engine(events.settings.effective_database_url)  # events written while it is down
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            more = [await write_event(session, "linkage.created", {"id": f"frm_late_{i}"}, "agy_A") for i in range(5)]
    finally:
        await engine.dispose()
    await events.start()
    await events.until(lambda: _all_received(receiver, emitted + more))
    ids = [r.webhook_id for r in receiver.received]
    assert set(ids) == set(emitted + more)  # none lost; any duplicate has its original webhook-id
    assert all(r.verifies_with(created["secret"]) for r in receiver.received)


async def _all_received(receiver: Receiver, ids: list[str]) -> bool:
    return set(ids) <= {r.webhook_id for r in receiver.received}


async def test_tenants_never_see_each_others_events_or_endpoints(events: Events, receiver: Receiver) -> None:
    other = Receiver()
    await other.start()
    try:
        mine = await events.endpoint(receiver.url, AGENCY_A)
        theirs = await events.endpoint(other.url, AGENCY_B)
        a_events = [await events.emit("shortlist.created", "agy_A", id=f"frm_a{i}") for i in range(3)]
        b_events = [await events.emit("shortlist.created", "agy_B", id=f"frm_b{i}") for i in range(3)]
        await receiver.wait_for(3)
        await other.wait_for(3)
        await asyncio.sleep(0.1)
        assert {r.webhook_id for r in receiver.received} == set(a_events)
        assert {r.webhook_id for r in other.received} == set(b_events)
        assert all(r.verifies_with(mine["secret"]) for r in receiver.received)
        public = await events.emit("firm.created", None, id="frm_public")  # registry records: every key reads them
        await receiver.wait_for(4)
        await other.wait_for(4)
        assert receiver.received[3].webhook_id == other.received[3].webhook_id == public
        base = f"{ENDPOINTS}/{theirs['id']}"
        for method, path, body in (
            ("GET", base, None),
            ("PATCH", base, {"description": "x"}),
            ("DELETE", base, None),
            ("POST", f"{base}/disable", None),
            ("POST", f"{base}/rotate-secret", None),
            ("POST", f"{base}/test", None),
            ("GET", f"{base}/deliveries", None),
        ):
            response = await events.client.request(method, path, json=body, headers=AGENCY_A | {"If-Match": '"1"'})
            assert_problem(response, 404)
        listed = (await events.client.get(ENDPOINTS, headers=AGENCY_A)).json()["items"]
        assert [e["id"] for e in listed] == [mine["id"]]
        b_delivery = (await events.deliveries(theirs["id"], AGENCY_B))[0]["id"]
        response = await events.client.post(f"{base}/deliveries/{b_delivery}/replay", headers=AGENCY_A)
        assert_problem(response, 404)
        response = await events.client.post(
            f"{ENDPOINTS}/{mine['id']}/deliveries/{b_delivery}/replay", headers=AGENCY_A
        )
        assert_problem(response, 404)
    finally:
        await other.stop()


FORBIDDEN_URLS = [
    ("http://127.0.0.2:9/hooks", "loopback"),  # the allow-list names 127.0.0.1/32 only
    ("http://[::1]:9/hooks", "loopback"),
    ("http://10.0.0.8/hooks", "private"),
    ("http://192.168.1.1/hooks", "private"),
    ("http://100.64.0.1/hooks", "CGNAT"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("https://user:secret@example.com/hooks", "password"),
    ("ftp://example.com/hooks", "http or https"),
    ("not a url", "http or https"),
]


async def test_forbidden_urls_are_422_naming_url(events: Events) -> None:
    for url, reason in FORBIDDEN_URLS:
        response = await events.client.post(ENDPOINTS, json={"url": url, "event_types": ["*"]}, headers=AGENCY_A)
        problem = assert_problem(response, 422, field="url")
        assert reason in problem["errors"][0]["message"], (url, problem)
    assert (await events.client.get(ENDPOINTS, headers=AGENCY_A)).json()["items"] == []


async def test_bad_input_and_roles(events: Events, receiver: Receiver) -> None:
    response = await events.client.post(
        ENDPOINTS,
        json={"url": receiver.url, "event_types": ["shortlist.created", "shortlist.exploded", "nope.*"]},
        headers=AGENCY_A,
    )
    problem = assert_problem(response, 422, field="event_types.1")
    assert [e["field"] for e in problem["errors"]] == ["event_types.1", "event_types.2"]
    response = await events.client.post(ENDPOINTS, json={"url": receiver.url, "event_types": []}, headers=AGENCY_A)
    assert_problem(response, 422, field="event_types")
    for role in (Role.viewer, Role.supplier):
        response = await events.client.post(
            ENDPOINTS, json={"url": receiver.url, "event_types": ["*"]}, headers=principal_headers(role)
        )
        assert_problem(response, 403)
    for role, extra in ((Role.lead_firm, {"firm_id": "frm_L"}), (Role.integrator, {}), (Role.admin, {})):
        response = await events.client.post(
            ENDPOINTS, json={"url": receiver.url, "event_types": ["*"]}, headers=principal_headers(role, **extra)
        )
        assert response.status_code == 201, response.text
    created = await events.endpoint(receiver.url)
    path = f"{ENDPOINTS}/{created['id']}"
    assert_problem(await events.client.patch(path, json={"description": "d"}, headers=AGENCY_A), 428)
    stale = AGENCY_A | {"If-Match": '"7"'}
    assert_problem(await events.client.patch(path, json={"description": "d"}, headers=stale), 412)
    fresh = AGENCY_A | {"If-Match": '"1"'}
    bad_url = await events.client.patch(path, json={"url": "http://10.1.1.1/"}, headers=fresh)
    assert_problem(bad_url, 422, field="url")
    updated = await events.client.patch(path, json={"description": "d", "event_types": ["shortlist.*"]}, headers=fresh)
    assert updated.status_code == 200 and updated.headers["etag"] == '"2"'
    assert updated.json()["description"] == "d" and updated.json()["event_types"] == ["shortlist.*"]


async def test_test_event_replay_and_manual_disable(events: Events, receiver: Receiver) -> None:
    created = await events.endpoint(receiver.url, types=["shortlist.created"])
    path = f"{ENDPOINTS}/{created['id']}"
    sent = await events.client.post(f"{path}/test", headers=AGENCY_A)
    assert sent.status_code == 202, sent.text
    (test,) = await receiver.wait_for(1)
    assert test.payload["type"] == "webhook.test" and test.verifies_with(created["secret"])
    await events.until(lambda: _status_is(events, created["id"], "succeeded"))
    delivery_id = sent.json()["id"]
    replayed = await events.client.post(f"{path}/deliveries/{delivery_id}/replay", headers=AGENCY_A)
    assert replayed.status_code == 202, replayed.text
    await receiver.wait_for(2)
    assert receiver.received[1].webhook_id == test.webhook_id and receiver.received[1].body == test.body
    disabled = await events.client.post(f"{path}/disable", headers=AGENCY_A)
    assert disabled.json()["enabled"] is False
    await events.emit("shortlist.created", "agy_A", id="frm_1")
    await asyncio.sleep(0.1)
    assert len(receiver.received) == 2
    assert (await events.client.post(f"{path}/enable", headers=AGENCY_A)).json()["enabled"] is True
    await events.emit("shortlist.created", "agy_A", id="frm_2")
    await receiver.wait_for(3)
    assert receiver.received[2].payload["data"] == {"id": "frm_2"}
    assert (await events.client.delete(path, headers=AGENCY_A)).status_code == 204
    assert_problem(await events.client.get(path, headers=AGENCY_A), 404)


async def test_the_guard_checks_again_at_connection_time(events: Events, receiver: Receiver) -> None:
    """An endpoint registered while its address was allowed is not reached once it is not
    (as when a host's DNS answer turns internal after registration): the attempt is refused
    before connecting, and logged."""
    created = await events.endpoint(receiver.url)
    await events.stop()
    events.settings = events.settings.model_copy(update={"webhook_allowed_hosts": []})
    await events.start()
    await events.emit("shortlist.created", "agy_A", id="sho_1")

    async def refused() -> bool:
        deliveries = await events.deliveries(created["id"])
        return bool(deliveries and deliveries[0]["attempts"] >= 1)

    await events.until(refused)
    (delivery,) = await events.deliveries(created["id"])
    assert "BlockedAddress" in delivery["last_error"] and "loopback" in delivery["last_error"]
    assert receiver.received == []


async def test_two_replicas_share_the_queue(events: Events, receiver: Receiver) -> None:
    """A second events service on the same database: every event delivered, none twice
    (claims are FOR UPDATE SKIP LOCKED on PostgreSQL, serialised by SQLite's lock there)."""
    created = await events.endpoint(receiver.url)
    replica = Events(events.settings)
    await replica.start()
    try:
        emitted = [await events.emit("linkage.created", "agy_A", id=f"lnk_{i}") for i in range(30)]
        replica.app.state.webhook_dispatcher.wake()
        await events.until(lambda: _all_received(receiver, emitted))
        await asyncio.sleep(0.1)
        ids = [r.webhook_id for r in receiver.received]
        assert sorted(ids) == sorted(emitted)  # each once
        assert all(r.verifies_with(created["secret"]) for r in receiver.received)
    finally:
        await replica.stop()


async def test_retry_after_is_honoured(events: Events, receiver: Receiver) -> None:
    """A 503 with Retry-After: 1 delays the retry by a second, not the schedule's 50 ms."""
    created = await events.endpoint(receiver.url)
    receiver.statuses = [503]
    receiver.headers = {"retry-after": "1"}
    await events.emit("linkage.created", "agy_A", id="lnk_1")
    await events.until(lambda: _status_is(events, created["id"], "succeeded"))
    (delivery,) = await events.deliveries(created["id"])
    first, second = (datetime.fromisoformat(a["attempted_at"]) for a in delivery["attempt_log"])
    assert [a["status_code"] for a in delivery["attempt_log"]] == [503, 200]
    assert (second - first).total_seconds() >= 0.95


async def test_failures_in_a_row_across_events_disable(events: Events, receiver: Receiver) -> None:
    """EVENTS_WEBHOOK_DISABLE_AFTER_FAILURES failed attempts in a row, whatever the events,
    disable the endpoint before any one event's schedule is spent."""
    await events.stop()
    events.settings = events.settings.model_copy(
        update={"webhook_disable_after_failures": 3, "webhook_retry_schedule": "1h"}
    )
    await events.start()
    created = await events.endpoint(receiver.url)
    receiver.default_status = 500
    for i in range(3):
        await events.emit("linkage.created", "agy_A", id=f"lnk_{i}")
        await receiver.wait_for(i + 1)

    async def disabled() -> bool:
        response = await events.client.get(f"{ENDPOINTS}/{created['id']}", headers=AGENCY_A)
        return response.json()["enabled"] is False

    await events.until(disabled)
    read = (await events.client.get(f"{ENDPOINTS}/{created['id']}", headers=AGENCY_A)).json()
    assert "3 attempts in a row failed" in read["disabled_reason"]
    assert [d["status"] for d in await events.deliveries(created["id"])] == ["pending"] * 3  # resume when enabled


async def test_settled_deliveries_leave_the_log_after_the_retention_period(events: Events, receiver: Receiver) -> None:
    created = await events.endpoint(receiver.url, types=["shortlist.created"])
    for number in range(3):
        await events.emit("shortlist.created", "agy_A", id=f"sl_{number}")
    await receiver.wait_for(3)
    await events.until(lambda: _status_is(events, created["id"], "succeeded", "succeeded", "succeeded"))
    deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
    attempts = WebhookAttempt.__table__  # type: ignore[attr-defined]
    old, failed_old, recent = [d["id"] for d in await events.deliveries(created["id"])]
    long_ago = datetime.now(UTC) - timedelta(days=events.settings.webhook_log_retention_days + 1)
    sessions = events.app.state.sessionmaker
    async with sessions() as session, session.begin():
        await session.execute(update(deliveries).where(deliveries.c.id == old).values(updated_at=long_ago))
        await session.execute(
            update(deliveries).where(deliveries.c.id == failed_old).values(updated_at=long_ago, status="failed")
        )
        # A pending delivery is never purged, however old: it has yet to be sent.
        pending = new_delivery(created["id"], "evt_pending", "shortlist.created", "{}", long_ago)
        pending.updated_at = long_ago
        pending.next_attempt_at = datetime.now(UTC) + timedelta(days=1)
        session.add(pending)

    retention = DeliveryLogRetention(sessions, events.settings.webhook_log_retention_days)
    assert await retention.sweep() == 2
    async with sessions() as session:
        kept = set(await session.scalars(select(deliveries.c.id)))
        attempted = set(await session.scalars(select(attempts.c.delivery_id)))
    assert kept == {recent, pending.id}
    assert old not in attempted and failed_old not in attempted and recent in attempted  # attempts go with them
    assert await retention.sweep() == 0
    listed = [d["id"] for d in await events.deliveries(created["id"])]
    assert set(listed) == {recent, pending.id}
