"""Group commit: the writes of many concurrent requests in one transaction.

A request hands what it writes (an item: a shortlist to store) to ``GroupCommit.write``
and waits; one task takes every item waiting, writes them all with one ``write_batch``
call (one multi-row statement a table, not one a request) in one transaction and
commits, then lets each request answer. Nothing is answered before its write is committed, so an id
returned is always there after a crash, as with a transaction per request; but
concurrent requests no longer queue one by one on the database's write lock (SQLite's
lock and its back-off, the change feed's sequence lock on PostgreSQL), and a commit is
paid once per batch instead of once per request.

A batch is written by a ``DirectWriter``, straight through the database driver on a
connection it keeps: taking one from the pool for each batch, and a session's
bookkeeping, cost more than the batch's own statements. A batch that fails lets go of
the connection (a broken one is not used again), and its items are written again one
transaction each, so one bad item fails only its own request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.directwrite import DirectWriter, Inserts

logger = structlog.get_logger(__name__)

Item = TypeVar("Item")
_STOP: Any = object()  # queued by ``stop``: the items before it are the last
MAX_BATCH = 64  # items per transaction: enough to absorb a burst, short enough to keep locks brief


class GroupCommit(Generic[Item]):
    """One writer task for the items handed to ``write``; ``start`` and ``stop`` with the app.

    ``inserts_of(items)`` says what a batch of items writes; the group commit writes it in
    one transaction.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        inserts_of: Callable[[Sequence[Item]], Inserts],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.inserts_of = inserts_of
        self.max_batch = max_batch
        self._writer = DirectWriter(engine)
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def write(self, item: Item) -> None:
        """Write ``item`` in the next batch; return once it is committed (or raise its error)."""
        if self._task is None or self._task.done():
            raise RuntimeError("the group commit is not running")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, done))
        await done

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        """Commit what is queued, then stop (new writes are refused from now on)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._queue.put_nowait(_STOP)  # after every write queued before it
        try:
            await task
        finally:
            await self._writer.close()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            stopping = batch[-1] is _STOP  # the last item ever queued: write refuses once stop began
            items = batch[:-1] if stopping else batch
            if items:
                await self._commit(items)
            if stopping:
                return

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[None]]]) -> None:
        waiting = [(item, done) for item, done in batch if not done.done()]  # a request gone: nothing to write
        if not waiting:
            return
        try:
            await self._writer.write(self.inserts_of([item for item, _ in waiting]))
        except Exception as exc:
            await self._writer.reset()
            if len(waiting) == 1:
                _settle(waiting[0][1], exc)
                return
            logger.warning("group_commit_batch_failed", items=len(waiting), error=repr(exc))
            for each in waiting:  # each alone: only the bad item fails
                await self._commit([each])
            return
        for _, done in waiting:
            _settle(done, None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # its request was cancelled meanwhile
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
