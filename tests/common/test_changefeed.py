"""The change feed: commit-ordered sequence numbers, long-polling, the follower, its metrics and its stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, select

from services.common import changefeed, logsignal
from services.common.changefeed import ChangePage, FeedFollower, PendingChange, read_changes, record_changes
from services.common.db import create_engine, create_sessionmaker
from services.common.logsignal import LOG_POLL_SECONDS
from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from services.registry.tables import metadata
from tests.registry.helpers import cluster_body, create, firm_body, make_agency
from tests.support import BOOTSTRAP_KEY, SERVICE, Stack, assert_problem, feed_items, running

OUTBOX = metadata.tables["outbox"]


def _change(entity_id: str) -> PendingChange:
    return PendingChange(entity="probe", entity_id=entity_id, op="created", version=1, agency_id=None, data={})


async def test_sequence_numbers_follow_commit_order(registry_settings: RegistrySettings) -> None:
    """A writer that draws a later sequence number cannot commit before an earlier one.

    Otherwise a follower could read seq 2, move its cursor past 1, and never see 1.
    """
    engine = create_engine(registry_settings.effective_database_url)
    sessions = create_sessionmaker(engine)
    readers = create_sessionmaker(engine, read_only=True)
    try:
        async with sessions() as first, readers() as reader:
            await first.begin()
            await record_changes(first, OUTBOX, [_change("first")])

            async def second_writer() -> None:
                async with sessions() as second:
                    async with second.begin():
                        await record_changes(second, OUTBOX, [_change("second")])

            second = asyncio.create_task(second_writer())
            await asyncio.sleep(0.3)
            assert not second.done(), "the second writer must wait for the first to commit"
            head = (await read_changes(reader, OUTBOX, after=0, limit=1000)).next_after  # the seeded vocabulary
            assert (await read_changes(reader, OUTBOX, after=head, limit=10)).items == []
            await reader.rollback()
            await first.commit()
            await asyncio.wait_for(second, 10)
            page = await read_changes(reader, OUTBOX, after=head, limit=10)
            assert [c.entity_id for c in page.items] == ["first", "second"]
            assert page.items[0].seq < page.items[1].seq
    finally:
        await engine.dispose()


async def test_concurrent_writers_lose_nothing_for_a_concurrent_follower(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    seen: list[int] = []
    writing = True

    async def follow() -> None:
        after = 0
        while True:
            still_writing = writing
            page = ChangePage.model_validate(
                (await registry.get("/v1/changes", params={"after": after, "limit": 7}, headers=SERVICE)).json()
            )
            seen.extend(c.seq for c in page.items)
            after = page.next_after
            if not still_writing and not page.has_more:
                return

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(create(registry, "/v1/clusters", cluster_body(name=f"C{i}"), agency) for i in range(40)))
    writing = False
    await asyncio.wait_for(follower, 30)
    everything = await feed_items(registry, vocabulary=True)
    assert len([c for c in everything if c["entity"] != "certification_scheme"]) == 41
    assert seen == [c["seq"] for c in everything]


async def test_long_poll_returns_as_soon_as_a_change_commits(
    registry: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No fallback read of the log while it waits: only the commit's signal can end the wait early.
    monkeypatch.setattr(logsignal, "LOG_POLL_SECONDS", 60.0)
    agency = await make_agency(registry)
    head = (await registry.get("/v1/changes", params={"after": 0}, headers=SERVICE)).json()["next_after"]
    waiting = asyncio.create_task(registry.get("/v1/changes", params={"after": head, "wait": 30}, headers=SERVICE))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await create(registry, "/v1/clusters", cluster_body(), agency)
    # The poll waits up to 30 s; answered well before that, it was the commit that ended it.
    # (20 s only bounds a hang: a loaded machine needs far less to commit one change.)
    page = (await asyncio.wait_for(waiting, 20)).json()
    assert [c["entity"] for c in page["items"]] == ["cluster"]


async def test_a_filtered_feed_returns_only_its_entities_and_moves_past_the_others(
    registry: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logsignal, "LOG_POLL_SECONDS", 60.0)  # only a commit's signal ends a wait early
    agency = await make_agency(registry)
    head = (await registry.get("/v1/changes", params={"after": 0}, headers=SERVICE)).json()["next_after"]
    await create(registry, "/v1/clusters", cluster_body(), agency)
    everything = (await registry.get("/v1/changes", params={"after": head}, headers=SERVICE)).json()
    assert [c["entity"] for c in everything["items"]] == ["cluster"]
    params = {"after": head, "entities": "firm,network"}
    skipped = (await registry.get("/v1/changes", params=params, headers=SERVICE)).json()
    assert skipped == {"items": [], "next_after": everything["next_after"], "has_more": False}
    # A long poll for firms is not ended by a cluster's commit, and is by a firm's.
    params = {"after": skipped["next_after"], "entities": "firm", "wait": 30}
    waiting = asyncio.create_task(registry.get("/v1/changes", params=params, headers=SERVICE))
    await create(registry, "/v1/clusters", cluster_body(name="Second"), agency)
    await asyncio.sleep(0.5)
    assert not waiting.done()
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    page = (await asyncio.wait_for(waiting, 20)).json()
    assert [(c["entity"], c["entity_id"]) for c in page["items"]] == [("firm", firm["id"])]
    # Pages of a filtered feed still end at their last item when more are there.
    firms = [firm] + [await create(registry, "/v1/firms", firm_body(), agency) for _ in range(2)]
    after, seen = skipped["next_after"], []
    while True:
        params = {"after": after, "entities": "firm", "limit": 2}
        page = (await registry.get("/v1/changes", params=params, headers=SERVICE)).json()
        seen += [c["entity_id"] for c in page["items"]]
        assert page["next_after"] > after or not page["items"]
        after = page["next_after"]
        if not page["has_more"]:
            break
    assert seen == [f["id"] for f in firms]


@pytest.mark.parametrize("entities", ["", "firm,", "Firm", "firm;cluster", ",".join(["firm"] * 21), "a" * 41])
async def test_a_malformed_entity_filter_is_a_422(registry: httpx.AsyncClient, entities: str) -> None:
    response = await registry.get("/v1/changes", params={"entities": entities}, headers=SERVICE)
    assert_problem(response, 422, field="entities")


def _outbox_reads(app: FastAPI) -> Callable[[], int]:
    """How many statements have read the app's outbox since this call."""
    reads = 0

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        nonlocal reads
        reads += "FROM outbox" in statement

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", count)
    return lambda: reads


async def test_an_idle_long_poll_reads_the_log_a_few_times_a_second(registry_settings: RegistrySettings) -> None:
    # Without the duplicate check, which follows the same log: only this poll reads it.
    app = create_registry(registry_settings.model_copy(update={"duplicates_check": False}))
    async with running(app) as registry:
        head = (await registry.get("/v1/changes", params={"after": 0}, headers=SERVICE)).json()["next_after"]
        reads = _outbox_reads(app)
        wait = 1.0
        page = (await registry.get("/v1/changes", params={"after": head, "wait": wait}, headers=SERVICE)).json()
        assert page["items"] == []
        # One read on arrival, then one per LOG_POLL_SECONDS (it used to be one every 50 ms: 20).
        assert 1 <= reads() <= wait / LOG_POLL_SECONDS + 2


async def test_a_filtered_long_poll_is_not_woken_by_the_entities_it_skips(
    registry_settings: RegistrySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logsignal, "LOG_POLL_SECONDS", 60.0)  # no fallback reads: only wake-ups read
    app = create_registry(registry_settings.model_copy(update={"duplicates_check": False}))
    async with running(app) as registry:
        agency = await make_agency(registry)
        head = (await registry.get("/v1/changes", params={"after": 0}, headers=SERVICE)).json()["next_after"]
        reads = _outbox_reads(app)
        params = {"after": head, "wait": 30, "entities": "firm"}
        waiting = asyncio.create_task(registry.get("/v1/changes", params=params, headers=SERVICE))
        for i in range(5):
            await create(registry, "/v1/clusters", cluster_body(name=f"Cluster {i}"), agency)
        assert not waiting.done()
        clusters_read = reads()
        await create(registry, "/v1/firms", firm_body(), agency)
        page = (await asyncio.wait_for(waiting, 20)).json()
    assert [c["entity"] for c in page["items"]] == ["firm"]
    # The head and the page on arrival (and once more, at most, for a commit during that read);
    # woken by each cluster's commit, it read them 2 + 5 x 2 times.
    assert clusters_read <= 4, clusters_read


async def test_feed_is_for_services_and_admins_only(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    from tests.support import agency_headers

    response = await registry.get("/v1/changes", headers=agency_headers(agency))
    assert response.status_code == 403


class _MemoryConsumer:
    """A consumer keeping state and cursor together, as a real one does in one transaction."""

    def __init__(self) -> None:
        self.cursor = 0
        self.clusters: dict[str, str] = {}
        self.applied: list[int] = []

    async def load_cursor(self) -> int:
        return self.cursor

    async def apply(self, page: ChangePage) -> None:
        for change in page.items:
            self.applied.append(change.seq)
            if change.entity == "cluster":
                if change.op == "deleted":
                    self.clusters.pop(change.entity_id, None)
                else:
                    assert change.data is not None
                    self.clusters[change.entity_id] = change.data["name"]
        self.cursor = page.next_after


@pytest.mark.parametrize("batch_size", [1, 3, 500])
async def test_follower_rebuilds_state_and_resumes_without_reapplying(
    registry: httpx.AsyncClient, batch_size: int
) -> None:
    agency = await make_agency(registry)
    first = await create(registry, "/v1/clusters", cluster_body(name="First"), agency)
    await create(registry, "/v1/clusters", cluster_body(name="Second"), agency)
    consumer = _MemoryConsumer()
    vocabulary_end = max(
        int(c["seq"]) for c in await feed_items(registry, vocabulary=True) if c["entity"] == "certification_scheme"
    )

    def follower() -> FeedFollower:
        return FeedFollower(
            name="registry",
            client=registry,
            url="/v1/changes",
            principal_header=lambda: dict(SERVICE),
            consumer=consumer,
            batch_size=batch_size,
        )

    one = follower()
    one.cursor = await consumer.load_cursor()
    while not one.caught_up.is_set():
        await one.poll_once()
    assert sorted(consumer.clusters.values()) == ["First", "Second"]

    from tests.support import agency_headers

    renamed = await registry.patch(
        f"/v1/clusters/{first['id']}",
        json={"name": "First, renamed"},
        headers=agency_headers(agency) | {"If-Match": '"1"'},
    )
    assert renamed.status_code == 200
    two = follower()  # a restart: resumes from the stored cursor
    two.cursor = await consumer.load_cursor()
    while await two.poll_once():
        pass
    assert sorted(consumer.clusters.values()) == ["First, renamed", "Second"]
    assert consumer.applied == sorted(set(consumer.applied)), "no change applied twice"
    assert len([s for s in consumer.applied if s > vocabulary_end]) == 4  # agency, two clusters, one update


async def test_a_caught_up_follower_gathers_a_stream_of_writes_into_a_few_pages(
    registry: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    linger = 1.0
    monkeypatch.setattr(changefeed, "FEED_LINGER_SECONDS", linger)
    agency = await make_agency(registry)
    pages: list[int] = []

    class Pages(_MemoryConsumer):
        async def apply(self, page: ChangePage) -> None:
            pages.append(len(page.items))
            await super().apply(page)

    consumer = Pages()
    follower = FeedFollower(
        name="registry", client=registry, url="/v1/changes", principal_header=lambda: dict(SERVICE), consumer=consumer
    )
    follower.start()
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 30)
        pages.clear()
        started = time.monotonic()
        for i in range(12):  # a stream of writes, 50 ms apart: each would be a page of its own
            await create(registry, "/v1/clusters", cluster_body(name=f"Cluster {i}"), agency)
            await asyncio.sleep(0.05)
        span = time.monotonic() - started
        while sum(pages) < 12:
            assert time.monotonic() - started < 30, pages
            await asyncio.sleep(0.05)
    finally:
        await follower.stop()
    assert sum(pages) == 12 and len(consumer.clusters) == 12
    # One page as the stream starts, then one per linger: not one per write.
    assert len(pages) <= 2 + span / linger and len(pages) < 12, (pages, span)


async def test_follower_survives_an_unreachable_feed() -> None:
    consumer = _MemoryConsumer()
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(503))) as broken:
        follower = FeedFollower(
            name="down",
            client=broken,
            url="http://registry/v1/changes",
            principal_header=lambda: dict(SERVICE),
            consumer=consumer,
            max_backoff_seconds=0.05,
        )
        follower.start()
        await asyncio.sleep(0.3)
        await follower.stop()
    assert follower.last_error is not None and "503" in follower.last_error
    assert consumer.applied == [] and not follower.caught_up.is_set()


async def test_outbox_rows_are_written_with_the_record(registry_settings: RegistrySettings) -> None:
    engine = create_engine(registry_settings.effective_database_url)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as session:
            async with session.begin():
                await record_changes(session, OUTBOX, [_change("a"), _change("b")])
                raise_inside = False
            assert not raise_inside
        async with sessions() as session:
            with pytest.raises(RuntimeError):
                async with session.begin():
                    await record_changes(session, OUTBOX, [_change("rolled-back")])
                    raise RuntimeError("crash before commit")
        async with sessions() as session:
            ids = (
                await session.scalars(
                    select(OUTBOX.c.entity_id).where(OUTBOX.c.entity == "probe").order_by(OUTBOX.c.seq)
                )
            ).all()
        assert ids == ["a", "b"]
    finally:
        await engine.dispose()


# --- metrics ---------------------------------------------------------------------------


def _gauges(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of gauge ``name`` in a /metrics body, by their sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == name
        for sample in family.samples
    }


async def _metrics(app: FastAPI) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def _until(condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_feed_metrics_show_each_feed_head_and_how_far_followers_are(whole_platform: Stack) -> None:
    apps = whole_platform.upstreams
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["registry"]), base_url="http://r") as registry:
        agency = await make_agency(registry)
        firm = await create(registry, "/v1/firms", firm_body(), agency)
        firm_seq = int(next(c["seq"] for c in await feed_items(registry) if c["entity_id"] == firm["id"]))
    written_at = time.time()

    head = _gauges(await _metrics(apps["registry"]), "changefeed_last_sequence")
    assert head[(("service", "registry"),)] >= firm_seq
    assert set(head) == {(("service", "registry"),)}

    def position(text: str, service: str, feed: str) -> float | None:
        return _gauges(text, "changefeed_follower_position").get((("feed", feed), ("service", service)))

    async def matching_applied_the_firm() -> bool:
        return (position(await _metrics(apps["matching"]), "matching", "registry") or 0) >= firm_seq

    await _until(matching_applied_the_firm, "matching's follower_position never reached the firm's sequence number")
    matching_text = await _metrics(apps["matching"])
    contact = _gauges(matching_text, "changefeed_follower_last_contact_timestamp_seconds")
    assert written_at - 30 < contact[(("feed", "registry"), ("service", "matching"))] <= time.time()
    assert _gauges(matching_text, "changefeed_last_sequence").keys() == {(("service", "matching"),)}

    # Reporting follows both feeds; the alert's lag (publisher head minus position) drains to zero.
    async def reporting_caught_up() -> bool:
        text = await _metrics(apps["reporting"])
        for feed in ("registry", "matching"):
            published = _gauges(await _metrics(apps[feed]), "changefeed_last_sequence")[(("service", feed),)]
            reached = position(text, "reporting", feed)
            if reached is None or published - reached != 0:
                return False
        return True

    await _until(reporting_caught_up, "reporting's feed lag did not drain to zero")
    reporting_text = await _metrics(apps["reporting"])
    contacts = _gauges(reporting_text, "changefeed_follower_last_contact_timestamp_seconds")
    assert set(contacts) == {(("feed", f), ("service", "reporting")) for f in ("registry", "matching")}
    assert all(written_at - 30 < seen <= time.time() for seen in contacts.values())
    assert "changefeed_last_sequence{" not in reporting_text  # reporting publishes no feed
    gateway_metrics = await whole_platform.client.get("/metrics", headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"})
    assert gateway_metrics.status_code == 200
    assert "changefeed_" not in gateway_metrics.text  # nor does the gateway


# --- stopping --------------------------------------------------------------------------


class _SlowConsumer(_MemoryConsumer):
    """Stores a page's cursor only once ``release`` is set, as a slow transaction would."""

    def __init__(self) -> None:
        super().__init__()
        self.applying = asyncio.Event()
        self.release = asyncio.Event()

    async def apply(self, page: ChangePage) -> None:
        self.applying.set()
        await self.release.wait()
        await super().apply(page)


def _slow_follower(registry: httpx.AsyncClient, consumer: _SlowConsumer, stop_timeout: float) -> FeedFollower:
    return FeedFollower(
        name="registry",
        client=registry,
        url="/v1/changes",
        principal_header=lambda: dict(SERVICE),
        consumer=consumer,
        stop_timeout=stop_timeout,
    )


async def test_stopping_finishes_the_page_being_applied_and_its_cursor(registry: httpx.AsyncClient) -> None:
    consumer = _SlowConsumer()
    follower = _slow_follower(registry, consumer, stop_timeout=10)
    head = (await registry.get("/v1/changes", params={"limit": 1000}, headers=SERVICE)).json()["next_after"]
    follower.start()
    await asyncio.wait_for(consumer.applying.wait(), 10)
    stopping = asyncio.create_task(follower.stop())
    await asyncio.sleep(0.2)
    assert not stopping.done(), "stop waits for the page in hand"
    consumer.release.set()
    await asyncio.wait_for(stopping, 10)
    assert consumer.cursor == follower.cursor == head, "the page was applied and its cursor stored"


async def test_stopping_abandons_a_long_poll_and_bounds_a_stuck_page(registry: httpx.AsyncClient) -> None:
    consumer = _SlowConsumer()
    consumer.release.set()
    follower = _slow_follower(registry, consumer, stop_timeout=0.3)
    follower.wait_seconds = 30
    follower.start()
    await _until(_is_set(follower.caught_up), "the follower did not catch up")
    await asyncio.sleep(0.2)  # now long-polling for 30 s
    # Stopped well before the poll's 30 s are up: the poll in flight was abandoned, not waited
    # for (15 s only bounds a hang, generously for a loaded machine).
    await asyncio.wait_for(follower.stop(), 15)

    stuck = _SlowConsumer()  # never released: its transaction never ends
    follower = _slow_follower(registry, stuck, stop_timeout=0.3)
    follower.start()
    await asyncio.wait_for(stuck.applying.wait(), 10)
    # The page never finishes, so only the stop timeout can end stop() (15 s bounds a hang).
    await asyncio.wait_for(follower.stop(), 15)
    assert stuck.cursor == 0, "cancelled: nothing stored, the page is fetched again next time"


def _is_set(event: asyncio.Event) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return event.is_set()

    return check
