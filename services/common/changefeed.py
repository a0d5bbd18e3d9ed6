"""The change feed: a transactional outbox served over HTTP, and its follower.

Publisher side: every committed change writes one outbox row in the same
transaction as the change itself (``record_changes``). On PostgreSQL the writer
takes a transaction-scoped advisory lock before it draws its sequence number, so
sequence numbers are handed out in commit order: a follower that has read up to
``seq`` can never later see a smaller one appear (gaps left by rolled-back
transactions stay gaps, and a later commit is never hidden behind them). SQLite
serialises writers through its database lock, which gives the same order.

Follower side: ``FeedFollower`` polls ``GET /v1/changes?after=SEQ`` (long-polling
with ``wait``), hands each page to a consumer that applies it and stores the new
cursor in one transaction, and so never misses or double-applies a change. A
consumer reads each change's record through ``services.common.feeds``; a record that
breaks that contract fails the page, which is logged (``feed_contract_broken``) and
tried again, never skipped. Asked to stop, it abandons a poll in flight but lets a
page it is applying finish (within ``stop_timeout``), so a shutdown stores the cursor
of everything it fetched.

Metrics (``FeedMetrics``, in the app's own registry): a publisher exports the head
of its feed, ``changefeed_last_sequence{service}``, read from the outbox at each
scrape; a follower exports ``changefeed_follower_position{service, feed}``, the
cursor it has stored, and ``changefeed_follower_last_contact_timestamp_seconds``
``{service, feed}``, set when a poll is answered (absent until the first answer).
Feed lag is the publisher's last sequence minus the follower's position.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal, Protocol

import httpx
import pydantic_core
import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from prometheus_client import CollectorRegistry, Gauge
from pydantic import BaseModel, InstanceOf, StringConstraints
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bulk import insert_rows
from services.common.db import UTCDateTime, insert_or_skip, is_postgres
from services.common.errors import PROBLEM_RESPONSES
from services.common.feeds import FeedContractError
from services.common.jsontext import JSONText
from services.common.logsignal import mark_log_written, poll_log
from services.common.metrics import ServiceMetrics
from services.common.principal import Principal, Role, require_roles

logger = structlog.get_logger(__name__)

# Any constant works; it only has to be the same for every writer of one database.
OUTBOX_LOCK_KEY = 7_350_001
# A caught-up follower waits this long after applying a page before it asks for the next:
# under a stream of writes the next page then carries every change of that moment instead
# of one (a page's request, transaction and cursor cost the same for one change or fifty),
# for at most this much more delay on a change. Measured in docs/benchmarks.md.
FEED_LINGER_SECONDS = 0.05
ChangeOp = Literal["created", "updated", "deleted"]


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("entity", String(40), nullable=False),
        Column("entity_id", String(64), nullable=False, index=True),
        Column("op", String(10), nullable=False),
        Column("version", Integer, nullable=False),
        Column("agency_id", String(64), nullable=True),
        Column("occurred_at", UTCDateTime(), nullable=False),
        Column("data", JSON, nullable=True),
        sqlite_autoincrement=True,
    )


def feed_cursor_table(metadata: MetaData) -> Table:
    """Where a follower stores how far it has applied each feed it follows."""
    return Table(
        "feed_cursors",
        metadata,
        Column("feed", String(100), primary_key=True),
        Column("position", BigInteger, nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    )


class Change(BaseModel):
    """One committed change to one record."""

    seq: int
    entity: str
    entity_id: str
    op: ChangeOp
    version: int
    agency_id: str | None
    occurred_at: datetime
    data: dict[str, Any] | None  # the record as the API shows it; None when deleted


class ChangePage(BaseModel):
    items: list[Change]
    next_after: int  # pass as ``after`` to get the next page
    has_more: bool


class PendingChange(BaseModel):
    entity: str
    entity_id: str
    op: ChangeOp
    version: int
    agency_id: str | None
    data: dict[str, Any] | InstanceOf[JSONText] | None  # JSONText: the record's JSON, rendered once


async def lock_sequence(
    session: AsyncSession, key: int = OUTBOX_LOCK_KEY, *, entities: Collection[str] | None = None
) -> None:
    """Take, until commit, the lock every writer of an ordered log (the outbox, the events
    service's events) takes before it draws sequence numbers: so they are drawn, and
    committed, in order, and a reader that has seen ``seq`` never later sees a smaller
    one appear. PostgreSQL: a transaction-scoped advisory lock; SQLite serialises
    writers by itself (``BEGIN IMMEDIATE``). ``entities``: those the changes written are
    about, when known (only long polls that want them are woken by the commit)."""
    mark_log_written(session, entities)  # its commit wakes the long polls on this database
    if is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def record_changes(session: AsyncSession, table: Table, changes: Sequence[PendingChange]) -> None:
    """Write outbox rows for ``changes`` in the session's transaction."""
    if not changes:
        return
    await lock_sequence(session, entities={c.entity for c in changes})
    # Bulk inserts (COPY on PostgreSQL) draw the sequence numbers in list order.
    await insert_rows(session, table, change_rows(changes))


def change_rows(changes: Sequence[PendingChange]) -> list[dict[str, Any]]:
    """The outbox rows of ``changes``, written now: sequence numbers are drawn by the insert."""
    now = datetime.now(UTC)
    return [
        {
            "entity": c.entity,
            "entity_id": c.entity_id,
            "op": c.op,
            "version": c.version,
            "agency_id": c.agency_id,
            "data": c.data,
            "occurred_at": now,
        }
        for c in changes
    ]


@dataclass(frozen=True)
class _FeedStatements:
    head: Select[Any]
    page: Select[Any]
    filtered_page: Select[Any]


@cache  # built once per table: composing a statement costs more than running it on SQLite
def _feed_statements(table: Table) -> _FeedStatements:
    seq = table.c.seq
    page = select(table).where(seq > bindparam("after")).order_by(seq).limit(bindparam("limit"))
    return _FeedStatements(
        head=select(func.max(seq)),
        page=page,
        filtered_page=page.where(seq <= bindparam("head"), table.c.entity.in_(bindparam("entities", expanding=True))),
    )


async def read_changes(
    session: AsyncSession, table: Table, *, after: int, limit: int, entities: Collection[str] | None = None
) -> ChangePage:
    """Up to ``limit`` changes after ``after``; with ``entities``, only changes to those.

    A filtered page still moves ``next_after`` past the changes it skipped, up to the
    head of the feed when it read it: every sequence number up to the head is committed
    or never will be (writers take ``lock_sequence``), so nothing below it can appear later.
    """
    statements = _feed_statements(table)
    head = None
    if entities is None:
        rows = (await session.execute(statements.page, {"after": after, "limit": limit + 1})).all()
    else:
        head = int(await session.scalar(statements.head) or 0)  # first: see the docstring
        values = {"after": after, "head": head, "entities": sorted(entities), "limit": limit + 1}
        rows = (await session.execute(statements.filtered_page, values)).all()
    # Rows this service wrote and its database typed: validating them again copied every document.
    items = [Change.model_construct(**row._mapping) for row in rows[:limit]]
    has_more = len(rows) > limit
    if has_more or head is None:
        next_after = items[-1].seq if items else after
    else:
        next_after = max(after, head)
    return ChangePage(items=items, next_after=next_after, has_more=has_more)


# ``entities`` of ``GET /v1/changes``: up to 20 entity names, comma-separated.
EntityNames = Annotated[str, StringConstraints(max_length=800, pattern=r"^[a-z_]{1,40}(,[a-z_]{1,40}){0,19}$")]


def entity_names(value: str) -> frozenset[str]:
    return frozenset(value.split(","))


@cache  # one router per service and process: its prepared routes are shared (``include_prepared``)
def change_feed_router(entities_description: str) -> APIRouter:
    """``GET /v1/changes``: the service's ordered change feed, for other services."""
    router = APIRouter(tags=["change feed"])

    @router.get(
        "/v1/changes",
        operation_id="list_changes",
        response_model=ChangePage,
        responses=PROBLEM_RESPONSES,
        summary="Ordered feed of committed changes",
        description=(
            f"Every committed change to {entities_description}, in commit order. "
            "Replaying from `after=0` rebuilds the full state. With `wait` the call "
            "long-polls: it returns as soon as a change exists, or empty after `wait` seconds."
        ),
    )
    async def list_changes(
        request: Request,
        _principal: Annotated[Principal, Depends(require_roles(Role.admin, Role.service))],
        after: Annotated[int, Query(ge=0, description="Sequence number of the last change already applied.")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
        wait: Annotated[float, Query(ge=0, le=30, description="Seconds to wait for a change.")] = 0,
        entities: Annotated[
            EntityNames | None,
            Query(
                description="Comma-separated entities to return (others are skipped, and `next_after` moves past "
                "them); absent: every change."
            ),
        ] = None,
    ) -> ChangePage:
        wanted = None if entities is None else entity_names(entities)
        return await wait_for_changes(
            request.app, after=after, limit=limit, wait=wait, entities=wanted, gone=request.is_disconnected
        )

    return router


async def wait_for_changes(
    app: FastAPI,
    *,
    after: int,
    limit: int,
    wait: float,
    entities: Collection[str] | None = None,
    gone: Callable[[], Awaitable[bool]] | None = None,
) -> ChangePage:
    """The next page of ``app``'s own feed, waiting up to ``wait`` seconds for one (a long poll).

    ``GET /v1/changes`` answers with it; a follower in the publishing process reads it
    directly (``local_feed``). It ends as soon as a change it would return commits
    (``LogSignal``), at ``wait``, or when ``gone`` says the asker left.
    """
    state = app.state
    position = after

    async def read() -> ChangePage:
        nonlocal position
        async with state.read_sessionmaker() as session:
            page = await read_changes(session, state.outbox_table, after=position, limit=limit, entities=entities)
        position = page.next_after  # past the changes a filter skipped
        return page

    return await poll_log(
        state.engine, read, found=lambda page: bool(page.items), wait=wait, gone=gone, entities=entities
    )


# A follower's source of pages: (after, limit, wait) -> the next page.
FetchPage = Callable[[int, int, float], Awaitable[ChangePage]]


def local_feed(app: FastAPI, entities: Collection[str] | None = None) -> FetchPage:
    """A follower's pages of ``app``'s own feed, read in process: no HTTP request, no access
    log line, no JSON rendered and parsed again; the same pages ``GET /v1/changes`` serves."""

    async def fetch(after: int, limit: int, wait: float) -> ChangePage:
        return await wait_for_changes(app, after=after, limit=limit, wait=wait, entities=entities)

    return fetch


async def load_cursor(session: AsyncSession, table: Table, feed: str) -> int:
    position = await session.scalar(select(table.c.position).where(table.c.feed == feed))
    return int(position or 0)


async def lock_cursor(session: AsyncSession, table: Table, feed: str) -> int:
    """The stored cursor of ``feed``, locked until the transaction ends (a row made at 0 if there
    is none): two processes following one feed into one cursor (a replica scaled twice, a
    rolling update's old and new pods) apply a page one after the other, and the second sees
    how far the first got. SQLite serialises write transactions by itself (``BEGIN IMMEDIATE``)."""
    await session.execute(insert_or_skip(session, table).values(feed=feed, position=0, updated_at=datetime.now(UTC)))
    position = await session.scalar(select(table.c.position).where(table.c.feed == feed).with_for_update())
    return int(position or 0)


async def store_cursor(session: AsyncSession, table: Table, feed: str, position: int) -> None:
    now = datetime.now(UTC)
    result = await session.execute(update(table).where(table.c.feed == feed).values(position=position, updated_at=now))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await session.execute(insert(table).values(feed=feed, position=position, updated_at=now))


class FeedMetrics:
    """The change feed's Prometheus metrics in one app's registry (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.last_sequence = Gauge(
            "changefeed_last_sequence",
            "Highest sequence number this service has published on its change feed.",
            ["service"],
            registry=registry,
        )
        self.follower_position = Gauge(
            "changefeed_follower_position",
            "Sequence number of the last change of the followed feed this service has applied and stored.",
            ["service", "feed"],
            registry=registry,
        )
        self.follower_last_contact = Gauge(
            "changefeed_follower_last_contact_timestamp_seconds",
            "Unix time at which the followed feed last answered a poll.",
            ["service", "feed"],
            registry=registry,
        )


def feed_metrics(app: FastAPI) -> FeedMetrics:
    """The app's ``FeedMetrics``, created on first use (apps without a feed export none)."""
    metrics: FeedMetrics | None = getattr(app.state, "feed_metrics", None)
    if metrics is None:
        service_metrics: ServiceMetrics = app.state.metrics
        metrics = FeedMetrics(service_metrics.registry, service_metrics.service)
        app.state.feed_metrics = metrics
    return metrics


async def last_sequence(session: AsyncSession, table: Table) -> int:
    """The highest sequence number committed to the outbox (0 when empty): one index lookup."""
    return int(await session.scalar(select(func.max(table.c.seq))) or 0)


def publish_feed_metrics(app: FastAPI) -> None:
    """Export ``changefeed_last_sequence`` from ``app.state.outbox_table``, read at each scrape.

    Read from the database rather than counted on write, so every replica (and every
    uvicorn worker) reports the committed head, whoever wrote it.
    """
    metrics = feed_metrics(app)
    gauge = metrics.last_sequence.labels(metrics.service)

    async def refresh() -> None:
        async with app.state.read_sessionmaker() as session:
            gauge.set(await last_sequence(session, app.state.outbox_table))

    service_metrics: ServiceMetrics = app.state.metrics
    service_metrics.on_scrape("changefeed_last_sequence", refresh)


def feed_ready(name: str) -> Callable[[FastAPI], Awaitable[None]]:
    """Readiness check of the feed ``name`` a service follows (``app.state.followers[name]``):
    its last poll answered."""

    async def check(app: FastAPI) -> None:
        follower: FeedFollower = app.state.followers[name]
        if follower.last_error is not None:
            raise RuntimeError(
                f"{name} feed unreachable at {follower.url or 'the database'} (applied up to {follower.cursor}): "
                f"{follower.last_error}"
            )
        if follower.last_contact is None:
            raise RuntimeError(f"{name} feed not reached yet")

    return check


class FeedConsumer(Protocol):
    async def load_cursor(self) -> int:
        """The sequence number of the last change applied."""

    async def apply(self, page: ChangePage) -> None:
        """Apply a page of changes and store ``page.next_after`` in one transaction."""


class FeedFollower:
    """Follows one service's change feed into a consumer, forever, with backoff.

    ``name`` names the feed (the publishing service: ``registry``, ``matching``). Pages
    come from ``url`` over HTTP (``client``, with ``principal_header``), or from ``fetch``
    (``local_feed``: the process's own feed).
    """

    def __init__(
        self,
        *,
        name: str,
        consumer: FeedConsumer,
        client: httpx.AsyncClient | None = None,
        url: str | None = None,
        principal_header: Callable[[], dict[str, str]] | None = None,
        fetch: FetchPage | None = None,
        on_caught_up: Callable[[], Awaitable[None]] | None = None,
        batch_size: int = 500,
        wait_seconds: float = 10.0,
        max_backoff_seconds: float = 10.0,
        metrics: FeedMetrics | None = None,
        stop_timeout: float = 10.0,
        entities: Collection[str] | None = None,
    ) -> None:
        self.name = name
        # Only these entities' changes are fetched (None: all); the publisher skips the rest.
        self.entities = None if entities is None else ",".join(sorted(entities))
        self.client = client
        self.url = url
        self.principal_header = principal_header
        if fetch is None and (client is None or url is None or principal_header is None):
            raise ValueError("a follower needs fetch, or client, url and principal_header")
        self.fetch: FetchPage = fetch or self._fetch_over_http
        self.consumer = consumer
        self.on_caught_up = on_caught_up
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.stop_timeout = stop_timeout
        self.cursor = 0
        self.caught_up = asyncio.Event()
        self.last_error: str | None = None
        self.last_contact: float | None = None
        self._position = metrics.follower_position.labels(metrics.service, name) if metrics else None
        self._contact = metrics.follower_last_contact.labels(metrics.service, name) if metrics else None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._applying = False  # between a page's arrival and its cursor's storage: not to be cancelled

    def _set_cursor(self, cursor: int) -> None:
        self.cursor = cursor
        if self._position is not None:
            self._position.set(cursor)

    async def _fetch_over_http(self, after: int, limit: int, wait: float) -> ChangePage:
        assert self.client is not None and self.url is not None and self.principal_header is not None
        response = await self.client.get(
            self.url,
            params={"after": after, "limit": limit, "wait": wait}
            | ({} if self.entities is None else {"entities": self.entities}),
            headers=self.principal_header(),
            timeout=httpx.Timeout(wait + 10.0, connect=5.0),
        )
        response.raise_for_status()
        # pydantic's JSON parser: a page holds whole records (a shortlist's is about 8 kB), and
        # the standard library's took about twice as long to read them (docs/benchmarks.md).
        return ChangePage.model_validate(pydantic_core.from_json(response.content))

    async def poll_once(self, *, wait: float = 0.0) -> int:
        """Fetch and apply one page; the number of changes applied."""
        page = await self.fetch(self.cursor, self.batch_size, wait)
        self.last_contact = time.time()
        if self._contact is not None:
            self._contact.set(self.last_contact)
        self._applying = True
        try:
            if page.items:
                await self.consumer.apply(page)
            # Past the changes a filter skipped too; stored with the next page that has items.
            self._set_cursor(page.next_after)
            self.last_error = None
            if not page.has_more:
                if self.on_caught_up is not None:
                    await self.on_caught_up()
                self.caught_up.set()
        finally:
            self._applying = False
        return len(page.items)

    async def run(self) -> None:
        self._set_cursor(await self.consumer.load_cursor())
        backoff = 0.1
        while not self._stopping:
            try:
                wait = self.wait_seconds if self.caught_up.is_set() else 0.0
                applied = await self.poll_once(wait=wait)
                backoff = 0.1
                if 0 < applied < self.batch_size:  # caught up with a stream of writes: let it gather
                    await asyncio.sleep(FEED_LINGER_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a feed that is down must not kill the follower
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self._stopping:
                    return
                if isinstance(exc, FeedContractError):  # not transient: the publisher must be fixed
                    logger.error("feed_contract_broken", feed=self.name, error=self.last_error, cursor=self.cursor)
                else:
                    logger.warning("feed_poll_failed", feed=self.name, error=self.last_error, retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name=f"follow-{self.name}")

    async def stop(self) -> None:
        """Stop following: a poll in flight is abandoned, a page being applied is finished
        (for up to ``stop_timeout`` seconds, then cancelled too: its transaction rolls back
        and the page is fetched again on the next start)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if not self._applying:
            task.cancel()
        try:
            done, _ = await asyncio.wait({task}, timeout=self.stop_timeout)
        except BaseException:
            task.cancel()
            raise
        if not done:
            logger.warning("feed_stop_timeout", feed=self.name, cursor=self.cursor, seconds=self.stop_timeout)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        logger.info("feed_follower_stopped", feed=self.name, cursor=self.cursor)
