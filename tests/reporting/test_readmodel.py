"""The read model: replaying a feed from zero rebuilds it exactly, a restart resumes from the
stored cursors, and a feed that cannot be reached is reported, not hidden."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

from services.common.changefeed import FeedFollower
from services.common.db import create_engine, create_sessionmaker
from services.common.directwrite import DirectWriter
from services.common.migrations import upgrade
from services.common.principal import Role
from services.reporting.app import MIGRATIONS, create_app
from services.reporting.readmodel.consumer import FEED_STATE, ReadModelConsumer
from services.reporting.readmodel.records import REGISTRY_ENTITIES
from services.reporting.settings import ReportingSettings
from services.reporting.tables import FEED_CURSORS, metadata
from tests.registry.helpers import firm_body
from tests.reporting import expected
from tests.reporting.dataset import Dataset, caught_up, feed_positions, in_process, last_seq
from tests.support import LIFESPAN_TIMEOUTS, Backend, Stack, assert_problem, principal_headers

BOOKKEEPING = {"feed_cursors", "feed_state", "idempotency_keys"}


async def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model row, table by table, in key order."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return {
                table.name: [
                    tuple(row) for row in await connection.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in metadata.sorted_tables
                if table.name not in BOOKKEEPING
            }
    finally:
        await engine.dispose()


class Recording(httpx.AsyncBaseTransport):
    """Passes requests on, keeping their URLs."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.urls: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return await self.inner.handle_async_request(request)


@asynccontextmanager
async def reporting(settings: ReportingSettings, mounts: dict[str, httpx.AsyncBaseTransport]) -> AsyncIterator[Any]:
    async with LifespanManager(create_app(settings, http_mounts=mounts), **LIFESPAN_TIMEOUTS) as manager:
        yield manager.app


@pytest.fixture
async def dataset(whole_platform: Stack) -> Dataset:
    """A dataset of this test's own (the conftest's is shared by a module): these tests change it."""
    data = await Dataset(whole_platform).build()
    await caught_up(whole_platform)
    return data


def feeds(dataset: Dataset, *, matching: bool = True) -> dict[str, httpx.AsyncBaseTransport]:
    mounts: dict[str, httpx.AsyncBaseTransport] = {
        "http://registry": httpx.ASGITransport(app=dataset.stack.upstreams["registry"])
    }
    if matching:
        mounts["http://matching"] = httpx.ASGITransport(app=dataset.stack.upstreams["matching"])
    return mounts


async def test_replay_from_zero_and_restart(
    dataset: Dataset, backend: Backend, reporting_settings: ReportingSettings
) -> None:
    original = reporting_settings.effective_database_url
    second = reporting_settings.model_copy(
        update={"database_url": await backend.fresh(MIGRATIONS), "feed_batch_size": 4}
    )
    # 1. Another reporting service replays both feeds from zero, four changes a page: the same read model.
    async with reporting(second, feeds(dataset)) as app:
        await caught_up(dataset.stack, app)
    first_dump = await dump(original)
    assert first_dump["firms"] and first_dump["linkage_events"] and first_dump["firm_certifications"]
    assert await dump(second.effective_database_url) == first_dump

    # 2. While it is stopped, records change; restarted, it resumes from its stored cursors.
    engine = create_async_engine(second.effective_database_url)
    async with engine.connect() as connection:
        stored = {row.feed: int(row.position) for row in await connection.execute(select(FEED_CURSORS))}
    await engine.dispose()
    assert stored["registry"] > 0 and stored["matching"] > 0
    await dataset.post(
        "/v1/firms",
        firm_body(
            name="Bordados Otavalo", size_class="micro", country="EC", subdivision="EC-I", cluster_ids=[dataset["C4"]]
        ),
        "B",
        "F11",
    )
    await dataset.patch(f"/v1/networks/{dataset['N1']}", {"status": "dormant"}, "A", 1)
    deleted = await dataset.client.delete(
        f"/v1/activities/{dataset['A2']}", headers=dataset.keys["A"] | {"If-Match": '"1"'}
    )
    assert deleted.status_code == 204
    await caught_up(dataset.stack)
    mounts = {url: Recording(transport) for url, transport in feeds(dataset).items()}
    async with reporting(second, dict(mounts)) as app:
        await caught_up(dataset.stack, app)
    for feed in ("registry", "matching"):
        first_poll = next(u for u in mounts[f"http://{feed}"].urls if u.path == "/v1/changes")
        assert int(first_poll.params["after"]) == stored[feed], feed
    changed = await dump(original)
    assert changed != first_dump
    assert await dump(second.effective_database_url) == changed

    # 3. Cursors lost: replaying every change over the existing rows changes nothing. The feed
    # state goes too, so that ``caught_up`` waits for the replay instead of reading the old
    # positions (the follower, stopped, finishes the page in hand: a replay cut short would show).
    engine = create_async_engine(second.effective_database_url)
    async with engine.begin() as connection:
        await connection.execute(delete(FEED_CURSORS))
        await connection.execute(delete(FEED_STATE))
    await engine.dispose()
    async with reporting(second, feeds(dataset)) as app:
        await caught_up(dataset.stack, app)
    assert await dump(second.effective_database_url) == changed

    body = (await dataset.client.get("/v1/indicators", headers=dataset.keys["admin"])).json()["indicators"]
    assert (
        body["firms_registered"]["breakdown"]["micro"]
        == expected.EVERYTHING["firms_registered"]["breakdown"]["micro"] + 1
    )
    assert body["horizontal_networks_active"]["value"] == 1  # N1 went dormant
    assert body["activities_held"]["breakdown"]["workshop"] == 0  # A2 deleted


async def test_an_unreachable_feed_is_reported(
    dataset: Dataset, backend: Backend, reporting_settings: ReportingSettings
) -> None:
    settings = reporting_settings.model_copy(update={"database_url": await backend.fresh(MIGRATIONS)})
    async with reporting(settings, feeds(dataset, matching=False)) as app:  # matching refuses connections
        async with in_process(app) as client:
            deadline = time.monotonic() + 10
            while True:
                ready = await client.get("/readyz")
                if (
                    ready.status_code == 503
                    and "failed" in ready.json()["checks"]["matching_feed"]
                    and ready.json()["checks"]["registry_feed"] == "ok"
                ):
                    break
                assert time.monotonic() < deadline, ready.text
                await asyncio.sleep(0.05)
            problem = assert_problem(ready, 503)
            assert problem["detail"] == "Not ready: matching_feed"
            assert "matching feed unreachable" in problem["checks"]["matching_feed"]
            assert problem["checks"]["database"] == "ok"

            await caught_up_registry(dataset, app)
            body = (await client.get("/v1/indicators", headers=principal_headers(Role.admin))).json()
            assert body["freshness"]["matching"]["status"] == "unreachable"
            assert "ConnectError" in body["freshness"]["matching"]["error"]
            assert body["freshness"]["matching"]["last_change_at"] is None
            assert body["freshness"]["registry"]["status"] == "ok"
            assert body["indicators"]["firms_registered"]["value"] == 10  # registry figures stand
            assert body["indicators"]["shortlists_issued"]["value"] == 0  # matching's are not there yet
            page = await client.get("/dashboard", headers=principal_headers(Role.admin))
            assert page.status_code == 200
            assert 'data-feed-warning="matching"' in page.text and "unreachable" in page.text


async def caught_up_registry(dataset: Dataset, app: FastAPI) -> None:
    target = await last_seq(dataset.stack.upstreams["registry"])
    deadline = time.monotonic() + 10
    while (await feed_positions(app))["registry"] < target:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


def _firm_change(seq: int, firm_id: str, **fields: Any) -> dict[str, Any]:
    data = {
        "id": firm_id,
        "agency_id": "agy_1",
        "created_at": "2026-05-01T08:00:00Z",
        "name": f"Firm {firm_id}",
        "roles": ["supplier"],
        "size_class": "small",
        "employees": 12,
        "country": "EC",
        "subdivision": None,
        "certifications": [],
        "cluster_ids": [],
    } | fields
    change = {"seq": seq, "entity": "firm", "entity_id": firm_id, "op": "created", "version": 1}
    return change | {"agency_id": "agy_1", "occurred_at": "2026-05-01T08:00:00Z", "data": data}


async def test_a_record_that_breaks_the_feed_contract_stops_the_follower_loudly(reporting_url: str) -> None:
    """A firm without a field the read model reads (here ``size_class``, as if the registry
    had renamed it) is not skipped: the page is not applied, the cursor stays, the follower
    logs ``feed_contract_broken`` and tries again until the record is whole."""
    items = [_firm_change(1, "frm_1"), _firm_change(2, "frm_2")]
    del items[1]["data"]["size_class"]

    async def publisher(request: httpx.Request) -> httpx.Response:  # the registry's feed: one page, then long polls
        after = int(request.url.params["after"])
        if after >= 2:
            await asyncio.sleep(float(request.url.params["wait"]))
        return httpx.Response(
            200, json={"items": [i for i in items if i["seq"] > after], "next_after": 2, "has_more": False}
        )

    engine = create_engine(reporting_url)
    writer = DirectWriter(engine)
    consumer = ReadModelConsumer("registry", create_sessionmaker(engine, read_only=True), writer, REGISTRY_ENTITIES)
    async with httpx.AsyncClient(transport=httpx.MockTransport(publisher)) as client:
        follower = FeedFollower(
            name="registry",
            client=client,
            url="http://registry/v1/changes",
            principal_header=dict,
            consumer=consumer,
            wait_seconds=0.1,
        )
        try:
            with capture_logs() as logs:
                follower.start()
                deadline = time.monotonic() + 10
                while not any(entry["event"] == "feed_contract_broken" for entry in logs):
                    assert time.monotonic() < deadline, logs
                    await asyncio.sleep(0.01)
                assert follower.last_error is not None and "FeedContractError" in follower.last_error
                assert "'frm_2' breaks the feed contract: size_class: Field required" in follower.last_error
                assert await consumer.load_cursor() == 0  # frm_1 is not applied without frm_2 either
                items[1]["data"]["size_class"] = "small"  # the publisher, fixed
                await asyncio.wait_for(follower.caught_up.wait(), 30)
        finally:
            await follower.stop()
    try:
        assert await consumer.load_cursor() == 2
        async with engine.connect() as connection:
            firms = (await connection.execute(select(metadata.tables["firms"].c.id))).scalars().all()
        assert sorted(firms) == ["frm_1", "frm_2"]
    finally:
        await writer.close()
        await engine.dispose()


async def test_the_results_migration_replays_the_registry_feed(backend: Backend) -> None:
    """Revision 0003 adds the activities' women_participants, which rows applied before it lack:
    it drops the registry feed's cursor, so the follower replays that feed from the start and fills
    the column; the matching feed's cursor stays."""
    url = await backend.empty()
    await upgrade(MIGRATIONS, url, "0002")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for feed in ("registry", "matching"):
                await connection.execute(
                    insert(FEED_CURSORS).values(feed=feed, position=42, updated_at=datetime.now(UTC))
                )
        await upgrade(MIGRATIONS, url)
        async with engine.connect() as connection:
            cursors = dict((await connection.execute(select(FEED_CURSORS.c.feed, FEED_CURSORS.c.position))).all())
    finally:
        await engine.dispose()
    assert cursors == {"matching": 42}
