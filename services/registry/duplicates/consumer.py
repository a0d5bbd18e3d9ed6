"""The duplicate check: a consumer of the registry's own change feed, behind the writes.

Single writes and import batches commit firms and their outbox rows without looking
for duplicates. ``DuplicateCheck`` follows the registry's feed (``FeedFollower``,
the one follower every service uses) from a durable cursor and, for each page:
takes the page's changed and deleted firms off its blocks (``service.forget``),
drops the open pairs those changes made stale, files the created and updated firms
under their keys and records the likely pairs (``service.detect``, one set of
queries per page), merges exact national-id matches of imports where the agency
asked for it, adds to the import jobs' counters, and stores its cursor: all in one
transaction. A crash or ``kill -9`` rolls the page back, and the page is read again
from the stored cursor: nothing lost, nothing recorded twice.

Replicas: each runs one ``Partition`` of the blocking keys (``REGISTRY_DUPLICATES_
PARTITIONS``, ``REGISTRY_DUPLICATES_PARTITION``) with a cursor of its own
(``feed_cursors``: ``duplicates`` alone, else ``duplicates:I/N``). Every replica
reads every firm change; it files and searches only its keys. A pair found through
keys of two partitions is recorded once (the pair is unique; the second finder only
refreshes it). An import job's new firm is counted as checked (``rows_checked``) by
the partition that owns its id; ``status`` reads every partition's cursor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.app import collector_paused
from services.common.bulk import chunks, one_of
from services.common.changefeed import Change, ChangePage, last_sequence, lock_cursor, store_cursor
from services.common.errors import Conflict, Forbidden, NotFound
from services.common.metrics import ServiceMetrics
from services.common.principal import Principal
from services.registry.duplicates.models import DuplicateCandidate
from services.registry.duplicates.service import (
    Partition,
    UnpackedProfiles,
    auto_merge_enabled,
    detect,
    drop_stale_candidates,
    forget,
    merge_firms,
)
from services.registry.firms.models import Firm
from services.registry.imports.models import ImportJob, ImportRowKey
from services.registry.records import OUTBOX
from services.registry.tables import FEED_CURSORS

logger = structlog.get_logger(__name__)

JOBS = ImportJob.__table__  # type: ignore[attr-defined]
FIRMS = Firm.__table__  # type: ignore[attr-defined]
ROW_KEYS = ImportRowKey.__table__  # type: ignore[attr-defined]
FEED_PREFIX = "duplicates"
# Stored profiles kept unpacked (``UnpackedProfiles``): about 1.6 KB each with their text, so
# about 50 MB at most.
UNPACKED_PROFILES = 30_000


def partitions(count: int) -> list[Partition]:
    return [Partition(index, count) for index in range(count)]


@dataclass
class _JobTally:
    checked: int = 0
    suspected: int = 0
    merged: int = 0


class DuplicateCheck:
    """The ``FeedConsumer`` of the registry's own feed that finds duplicate firms (module docstring)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], partition: Partition) -> None:
        self.sessions = sessions
        self.partition = partition
        self.unpacked = UnpackedProfiles(UNPACKED_PROFILES)
        # Up to here the feed may be read a second time (a new partition starting at the least
        # advanced cursor): firms created before it may be filed already, so are taken off first.
        self.replayed_through = 0

    async def load_cursor(self) -> int:
        """The partition's cursor; a partition new to the registry (the check just split into
        more replicas, or merged into fewer) starts at the least advanced cursor there was,
        so no change goes unchecked (one checked twice only refreshes its pairs)."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(FEED_CURSORS.c.feed, FEED_CURSORS.c.position).where(
                        FEED_CURSORS.c.feed.like(f"{FEED_PREFIX}%")
                    )
                )
            ).all()
        positions = {feed: int(position) for feed, position in rows}
        if self.partition.feed in positions:
            return positions[self.partition.feed]
        self.replayed_through = max(positions.values(), default=0)
        return min(positions.values(), default=0)

    async def apply(self, page: ChangePage) -> None:
        with collector_paused():  # a page's profiles and rows die with it: not walked meanwhile
            await self._apply(page)

    async def _apply(self, page: ChangePage) -> None:
        async with self.sessions() as session, session.begin():
            # Another process checking this partition (scaled twice, or a rolling update's two
            # pods) may have checked part of the page already: only what lies past it is checked.
            position = await lock_cursor(session, FEED_CURSORS, self.partition.feed)
            firm_changes = [c for c in page.items if c.entity == "firm" and c.seq > position]
            if firm_changes:
                await self._check(session, firm_changes)
            await store_cursor(session, FEED_CURSORS, self.partition.feed, max(position, page.next_after))

    async def _check(self, session: AsyncSession, changes: list[Change]) -> None:
        latest: dict[str, Change] = {}  # a firm changed twice in a page is checked as it was last
        for change in changes:
            latest[change.entity_id] = change
        new_firms = [c.entity_id for c in changes if c.op == "created" and c.version == 1]
        job_of = await _import_jobs_of(session, new_firms)
        # A firm's first change files it for the first time (its page commits with the cursor):
        # only changed, deleted or replayed firms have keys to take off.
        filed = [
            c.entity_id
            for c in latest.values()
            if c.op != "created" or c.version != 1 or c.seq <= self.replayed_through
        ]
        await forget(session, sorted(filed), partition=self.partition)
        # A firm deleted and back since (a merge undone) keeps the pairs its undo restored.
        gone = await _absent(session, [c.entity_id for c in latest.values() if c.op == "deleted"])
        stale = [c for c in latest.values() if c.op == "updated" or (c.op == "deleted" and c.entity_id in gone)]
        await drop_stale_candidates(session, [(c.entity_id, c.seq) for c in stale])
        live = [c for c in latest.values() if c.op != "deleted" and c.data is not None]
        sources = [_source(c, job_of) for c in live]
        detection = await detect(
            session,
            [(c.entity_id, c.agency_id or c.data["agency_id"], c.data) for c in live if c.data is not None],
            sources=sources,
            feed_seqs=[c.seq for c in live],
            partition=self.partition,
            unpacked=self.unpacked,
        )
        tallies: dict[str, _JobTally] = {}
        for firm_id in new_firms:
            if firm_id in job_of and self.partition.owns(firm_id):
                tallies.setdefault(job_of[firm_id], _JobTally()).checked += 1
        jobs = set(job_of.values())
        found_by_job = Counter(c["source"].removeprefix("import:") for c in detection.candidates)
        for job_id, count in found_by_job.items():
            if job_id in jobs:
                tallies.setdefault(job_id, _JobTally()).suspected += count
        for job_id, tally in sorted(tallies.items()):
            if tally.suspected:
                tally.merged = await self._auto_merge(session, job_id, job_of, detection.candidates)
            await session.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id)
                .values(
                    rows_checked=JOBS.c.rows_checked + tally.checked,
                    duplicates_suspected=JOBS.c.duplicates_suspected + tally.suspected,
                    duplicates_merged=JOBS.c.duplicates_merged + tally.merged,
                )
            )

    async def _auto_merge(
        self, session: AsyncSession, job_id: str, job_of: dict[str, str], candidates: list[dict[str, Any]]
    ) -> int:
        """Merge the job's pairs with one national id within one agency, if its agency asked for it."""
        job = await session.get(ImportJob, job_id)
        if job is None or not await auto_merge_enabled(session, job.agency_id):
            return 0
        principal = Principal.model_validate(job.principal)
        mine = {firm_id for firm_id, job_of_firm in job_of.items() if job_of_firm == job_id}
        merged: set[str] = set()
        for candidate in candidates:
            a, b = candidate["firm_a"], candidate["firm_b"]
            if candidate["source"] != f"import:{job_id}" or not candidate["same_national_id"]:
                continue
            if candidate["agency_a"] != candidate["agency_b"] or a in merged or b in merged:
                continue
            # The firm registered before survives; between two new ones, the older id (the earlier row).
            survivor, loser = (a, b) if (a not in mine or (b in mine and a < b)) else (b, a)
            try:
                async with session.begin_nested():
                    row = await session.get(DuplicateCandidate, candidate["id"])
                    await merge_firms(
                        session,
                        survivor_id=survivor,
                        merged_id=loser,
                        principal=principal,
                        candidate=row,
                        automatic=True,
                    )
            except (NotFound, Conflict, Forbidden) as exc:  # e.g. merged or deleted since: left for review
                logger.info("duplicate_auto_merge_skipped", candidate=candidate["id"], reason=str(exc))
                continue
            merged.add(loser)
        return len(merged)


def _source(change: Change, job_of: dict[str, str]) -> str:
    """What a pair found for this change records as its source (``/v1/duplicates?import_id=``)."""
    if change.op == "updated":
        return "update"
    if change.version != 1:
        return "undo"  # a merged firm restored
    job_id = job_of.get(change.entity_id)
    return f"import:{job_id}" if job_id else "create"


async def _absent(session: AsyncSession, firm_ids: Sequence[str]) -> set[str]:
    """Those of ``firm_ids`` no firm has now."""
    present: set[str] = set()
    for chunk in chunks(sorted(firm_ids), 5000):
        present |= set((await session.scalars(select(FIRMS.c.id).where(one_of(session, FIRMS.c.id, chunk)))).all())
    return set(firm_ids) - present


async def _import_jobs_of(session: AsyncSession, firm_ids: Sequence[str]) -> dict[str, str]:
    """The import jobs that created these firms (the others were single writes)."""
    found: dict[str, str] = {}
    for chunk in chunks(sorted(firm_ids), 5000):
        rows = await session.execute(
            select(ROW_KEYS.c.firm_id, ROW_KEYS.c.job_id).where(one_of(session, ROW_KEYS.c.firm_id, chunk))
        )
        found.update({firm_id: job_id for firm_id, job_id in rows})
    return found


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class CheckPosition:
    """How far every partition of the check has come, against the feed's head."""

    head: int
    positions: dict[str, int]  # partition's cursor name -> sequence number checked through

    @property
    def checked_through(self) -> int:
        return min(self.positions.values(), default=0)

    @property
    def lag(self) -> int:
        return max(0, self.head - self.checked_through)


async def check_position(session: AsyncSession, count: int) -> CheckPosition:
    """The check's position with ``count`` partitions (a partition not started yet: 0)."""
    names = [p.feed for p in partitions(count)]
    rows = (
        await session.execute(
            select(FEED_CURSORS.c.feed, FEED_CURSORS.c.position).where(FEED_CURSORS.c.feed.in_(names))
        )
    ).all()
    stored = {feed: int(position) for feed, position in rows}
    return CheckPosition(
        head=await last_sequence(session, OUTBOX), positions={name: stored.get(name, 0) for name in names}
    )


def publish_lag_metric(app: FastAPI) -> None:
    """``registry_duplicate_check_lag_changes{partition}``: changes on the feed not yet checked,
    read from the database at each scrape, so any replica reports every partition."""
    service_metrics: ServiceMetrics = app.state.metrics
    gauge: Gauge | None = getattr(app.state, "duplicate_check_lag", None)
    if gauge is None:  # once per app, however often its lifespan runs
        gauge = Gauge(
            "registry_duplicate_check_lag_changes",
            "Changes on the registry's feed the duplicate check (one partition) has not checked yet.",
            ["partition"],
            registry=service_metrics.registry,
        )
        app.state.duplicate_check_lag = gauge

    async def refresh() -> None:
        async with app.state.read_sessionmaker() as session:
            position = await check_position(session, app.state.settings.duplicates_partitions)
        for name, checked in position.positions.items():
            lag.labels(name).set(max(0, position.head - checked))

    lag = gauge
    service_metrics.on_scrape("registry_duplicate_check_lag_changes", refresh)
