"""Import jobs run in the background of the registry process, batch by batch.

Each batch of rows is one transaction: the records of the job's kind (firms or
firm results, ``kinds.py``) with their tags, outbox rows and the rows' natural keys
(``ImportKind.write``: the create path of single writes, ``writes.create_rows``, or
for firms on PostgreSQL the set-based ``firm_writes.write_firms``), the duplicates
found, the rejected rows' errors and the job's counters and checkpoint. A batch
commits whole or not at all, so a crash or a cancelled task leaves no half-imported
row, and the job resumes after its checkpoint when the registry starts again
(``ImportRunner.resume``). While one batch is written, the next one is parsed and
validated in a worker thread or process. Firms on PostgreSQL are written up to
``OVERLAPPED_BATCHES`` batches at once, each in its own transaction, committed in file
order (``_OrderedBatches``).

The job is done once every row is in: duplicates are looked for behind it by the
duplicate check, which follows the change feed (``duplicates/consumer.py``) and adds
to the job's ``rows_checked``, ``duplicates_suspected`` and ``duplicates_merged``.
Each batch records the feed sequence number of its last change
(``last_change_seq``), so the job can tell when the check has passed its rows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bulk import chunks, insert_rows, one_of
from services.common.changefeed import last_sequence
from services.common.db import is_postgres
from services.common.principal import Principal
from services.registry.imports.files import ImportFile, Mapping_, Row, resolve_mapping
from services.registry.imports.kinds import DEFAULT_KIND, KINDS, ImportKind
from services.registry.imports.models import ImportJob, ImportRowError
from services.registry.imports.prepare import PreparedBatch, error_row
from services.registry.imports.workers import ProcessBatches, ThreadBatches
from services.registry.imports.writes import ROW_KEYS, Overlap, Uncommitted
from services.registry.records import OUTBOX

logger = structlog.get_logger(__name__)
ERRORS = ImportRowError.__table__  # type: ignore[attr-defined]

UNFINISHED = ("queued", "running")


# Batches of a set-based kind on PostgreSQL in flight at once, each in its own transaction
# (``_OrderedBatches``): one commits while the next ones write their rows.
OVERLAPPED_BATCHES = 3


@dataclass
class BatchOutcome:
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    # What the batch writes once the batches before it have committed: its rows' outbox rows
    # (``Written.publish``), and its rejected rows' problems, whose ids are errors.csv's order.
    publish: Callable[[AsyncSession], Awaitable[None]] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)  # import_errors rows


async def write_batch(
    session: AsyncSession,
    job: ImportJob,
    principal: Principal,
    mapping: Mapping_,
    batch: PreparedBatch,
    kind: ImportKind = KINDS[DEFAULT_KIND],
    overlap: Overlap | None = None,
) -> BatchOutcome:
    """What one batch writes, in the caller's transaction, but for what must follow the batches
    before it (``BatchOutcome.publish`` and ``errors``), beside them, not yet committed
    (``overlap``)."""
    overlap = overlap or Overlap()
    outcome = BatchOutcome(rejected=batch.rejected)
    errors = list(batch.errors)
    keys = batch.natural_keys
    existing = overlap.before.keys.intersection(keys)
    for chunk in chunks(sorted(set(keys)), 20000):
        statement = select(ROW_KEYS.c.natural_key).where(
            ROW_KEYS.c.agency_id == job.agency_id, one_of(session, ROW_KEYS.c.natural_key, chunk)
        )
        existing |= set((await session.scalars(statement)).all())
    # A key's first row in the batch (the dict keeps the last index given: feed it backwards),
    # unless an earlier batch or import has the key: the rest are skips.
    first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
    to_create = sorted(index for key, index in first.items() if key not in existing)
    outcome.skipped = len(keys) - len(to_create)
    written = await kind.write(session, job, principal, batch, to_create, overlap)
    overlap.own.keys.update(keys[index] for index in written.created)
    overlap.decided()  # if the write step has not said so before
    for index, problem in written.rejected:
        row = Row(batch.numbers[index], {})
        errors += [error_row(row, mapping, e.field, e.code, e.message) for e in problem.errors or []]
    outcome.rejected += len(written.rejected)
    outcome.accepted = len(written.created)
    outcome.publish = written.publish
    if written.rejected:
        errors.sort(key=lambda e: e["row_number"])  # errors.csv lists them in input order
    outcome.errors = [e | {"job_id": job.id} for e in errors]
    return outcome


class _Abandoned(Exception):
    """A batch given up because the one before it did not commit."""


class _TakenOver(Exception):
    """The job moved on without this batch (another process resumed it, or it was cancelled)."""


async def _after(step: asyncio.Future[Any]) -> None:
    """Wait for a step of the batch before; give this batch up if that one did not get through."""
    await asyncio.wait([step])
    if step.cancelled() or step.exception() is not None or step.result() is False:
        raise _Abandoned


class _OrderedBatches:
    """A job's batches, each written in its own transaction, up to ``depth`` at once, committed
    in file order.

    A batch decides what it creates once the batch before has decided (its natural keys and
    words for typo search, claimed in ``Overlap``: a later batch's reads do not see them before
    they commit), then writes its firms and tags (new ids) while the batches before it write or
    commit theirs. The rest, which must follow the batches before (``BatchOutcome.publish``:
    the rows under unique keys, natural keys and words, and the outbox rows drawn under the
    sequence lock; the job's checkpoint and counters, the job row locked), waits until the
    batch before has committed. A batch never writes a row, nor takes a lock, that a batch
    before it holds; and while it waits for the batch before it holds no lock another
    transaction can wait on (another job's batch adding the same word, say), so every wait
    that could close a cycle is one PostgreSQL sees and breaks.
    ``depth`` 1 writes one batch at a time, as kinds written through the single-write path
    must (it draws sequence numbers as it writes the rows).
    """

    def __init__(
        self,
        runner: ImportRunner,
        job_id: str,
        principal: Principal,
        mapping: Mapping_,
        kind: ImportKind,
        checkpoint: int,
        depth: int,
    ) -> None:
        self.sessionmaker = runner.sessionmaker
        self.job_id, self.principal, self.mapping, self.kind = job_id, principal, mapping, kind
        self.depth = depth
        self.checkpoint = checkpoint  # the rows of the batches committed
        self.end = checkpoint  # the rows of the batches taken
        self.open: list[Uncommitted] = []  # what the batches decided and not yet seen committed add
        self.tasks: deque[asyncio.Task[bool]] = deque()
        self.last_decided: asyncio.Future[None] | None = None

    async def add(self, batch: PreparedBatch) -> bool:
        """Start writing ``batch`` after those taken before; False once the job was taken over."""
        if len(self.tasks) >= self.depth and not await self._settle():
            return False
        decided: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        previous = self.tasks[-1] if self.tasks else None
        task = asyncio.create_task(self._write(batch, self.end, self.last_decided, decided, previous))
        self.tasks.append(task)
        self.end += len(batch)
        self.last_decided = decided
        return True

    async def finish(self) -> bool:
        """Wait until every batch taken has committed; False if the job was taken over."""
        while self.tasks:
            if not await self._settle():
                return False
        return True

    async def cancel(self) -> None:
        tasks = list(self.tasks)
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _settle(self) -> bool:
        """Wait for the oldest batch: committed (True), or the job taken over (False)."""
        task = self.tasks[0]
        try:
            committed = await task
        except Exception:
            self.tasks.popleft()
            if await self._taken_over():  # a unique key of the other writer's rows, say
                return False
            raise
        self.tasks.popleft()
        return committed

    async def _taken_over(self) -> bool:
        async with self.sessionmaker() as session:
            job = await session.get(ImportJob, self.job_id)
            if job is None or job.checkpoint != self.checkpoint or job.status != "running":
                logger.warning("import_taken_over", job_id=self.job_id)
                return True
            return False

    async def _write(
        self,
        batch: PreparedBatch,
        start: int,
        previous_decided: asyncio.Future[None] | None,
        decided: asyncio.Future[None],
        previous: asyncio.Task[bool] | None,
    ) -> bool:
        own = Uncommitted()
        try:
            async with self.sessionmaker() as session, session.begin():
                job = await session.get(ImportJob, self.job_id)  # locked once the batches before commit
                if job is None:
                    raise _TakenOver
                if previous_decided is not None:
                    await _after(previous_decided)
                before = Uncommitted()
                for earlier in self.open:
                    before.keys |= earlier.keys
                    before.words |= earlier.words
                self.open.append(own)
                overlap = Overlap(before, own, lambda: None if decided.done() else decided.set_result(None))
                outcome = await write_batch(session, job, self.principal, self.mapping, batch, self.kind, overlap)
                if previous is not None:
                    await _after(previous)
                job = await session.get(ImportJob, self.job_id, with_for_update=True, populate_existing=True)
                if job is None or job.checkpoint != start or job.status != "running":
                    logger.warning("import_taken_over", job_id=self.job_id)
                    raise _TakenOver
                if outcome.publish is not None:
                    await outcome.publish(session)
                await insert_rows(session, ERRORS, outcome.errors)
                job.checkpoint = start + len(batch)
                job.rows_read += len(batch)
                job.rows_accepted += outcome.accepted
                job.rows_rejected += outcome.rejected
                job.rows_skipped += outcome.skipped
                if outcome.accepted:  # the check is done with the job once it passes this change
                    job.last_change_seq = await last_sequence(session, OUTBOX)
                job.updated_at = datetime.now(UTC)
            self.checkpoint = start + len(batch)
            return True
        except _TakenOver:  # rolled back
            return False
        finally:
            if not decided.done():
                decided.cancel()
            self.open = [earlier for earlier in self.open if earlier is not own]


@dataclass(frozen=True)
class _Snapshot:
    agency_id: str
    principal: dict[str, Any]
    options: dict[str, Any]
    file_path: str
    format: str
    checkpoint: int
    checked_through: str | None


class ImportRunner:
    """The import jobs of one registry process: started, resumed on start-up, cancelled on shutdown."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self.app.state.sessionmaker  # type: ignore[no-any-return]

    def start(self, job_id: str) -> None:
        task = self.tasks.get(job_id)
        if task is not None and not task.done():
            return
        task = asyncio.create_task(self.run(job_id), name=f"import-{job_id}")
        self.tasks[job_id] = task
        task.add_done_callback(lambda done: self.tasks.pop(job_id, None) if self.tasks.get(job_id) is done else None)

    async def resume(self) -> None:
        async with self.sessionmaker() as session:
            statement = select(ImportJob.__table__.c.id).where(ImportJob.__table__.c.status.in_(UNFINISHED))  # type: ignore[attr-defined]
            ids = (await session.scalars(statement)).all()
        for job_id in ids:
            logger.info("import_resumed", job_id=job_id)
            self.start(job_id)

    async def wait(self, job_id: str) -> None:
        task = self.tasks.get(job_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self, job_id: str) -> None:
        try:
            await self._run(job_id)
        except asyncio.CancelledError:
            logger.info("import_interrupted", job_id=job_id)  # resumes at the next start
            raise
        except Exception as exc:
            logger.exception("import_failed", job_id=job_id)
            async with self.sessionmaker() as session, session.begin():
                job = await session.get(ImportJob, job_id)
                if job is not None:
                    now = datetime.now(UTC)
                    job.status, job.error, job.finished_at, job.updated_at = "failed", str(exc)[:2000], now, now

    async def _run(self, job_id: str) -> None:
        async with self.sessionmaker() as session, session.begin():
            job = await session.get(ImportJob, job_id)
            if job is None or job.status not in UNFINISHED:
                return
            now = datetime.now(UTC)
            job.status, job.started_at, job.updated_at = "running", job.started_at or now, now
            snapshot = _Snapshot(
                job.agency_id,
                job.principal,
                job.options,
                job.file_path,
                job.format,
                job.checkpoint,
                job.checked_through,
            )
        principal = Principal.model_validate(snapshot.principal)
        kind = KINDS[snapshot.options.get("kind", DEFAULT_KIND)]
        if snapshot.checked_through is None and not await self._import_rows(job_id, snapshot, principal, kind):
            return  # "" once every row is in (jobs from before the check followed the feed: done)
        async with self.sessionmaker() as session, session.begin():
            job = await session.get(ImportJob, job_id, with_for_update=True)
            if job is not None and job.status == "running":
                now = datetime.now(UTC)
                job.status, job.finished_at, job.updated_at = "completed", now, now

    async def _import_rows(self, job_id: str, snapshot: _Snapshot, principal: Principal, kind: ImportKind) -> bool:
        """The first phase: the file's rows, batch by batch, each batch one transaction."""
        settings = self.app.state.settings
        options = snapshot.options
        path = Path(settings.import_directory) / snapshot.file_path
        source = ImportFile(
            path,
            snapshot.format,
            encoding=options.get("encoding", "utf-8"),
            delimiter=options.get("delimiter"),
            sheet=options.get("sheet"),
        )
        mapping = resolve_mapping(source.header(), options.get("mapping"), kind.columns)
        checkpoint = snapshot.checkpoint
        staged = is_postgres(self.app.state.engine)  # rendered for COPY by the workers (firm_writes)
        workers = settings.import_workers if path.stat().st_size >= settings.import_parallel_min_bytes else 0
        batches = (ProcessBatches if workers else ThreadBatches)(
            source,
            mapping,
            snapshot.agency_id,
            skip=checkpoint,
            size=int(settings.import_batch_rows),
            kind=kind.name,
            staged=staged,
            workers=workers,
        )
        depth = OVERLAPPED_BATCHES if staged and kind.stage is not None else 1
        writes = _OrderedBatches(self, job_id, principal, mapping, kind, checkpoint, depth)
        try:
            while True:
                batch = await batches.next()
                if not batch:
                    break
                if not await writes.add(batch):
                    return False
            if not await writes.finish():
                return False
        finally:
            await writes.cancel()
            await batches.close()
        async with self.sessionmaker() as session, session.begin():
            job = await session.get(ImportJob, job_id, with_for_update=True)
            if job is None or job.checkpoint != writes.checkpoint or job.status != "running":
                return False
            job.checked_through = ""
        with contextlib.suppress(OSError):
            path.unlink()  # every row is in the database now
        return True
