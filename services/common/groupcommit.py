"""Group commit: the writes of many concurrent requests in one transaction.

A request hands its write (a function of a session) to ``GroupCommit.write`` and waits;
one task takes every write waiting, runs them in one transaction and commits, then
lets each request answer. Nothing is answered before its write is committed, so an id
returned is always there after a crash, as with a transaction per request; but
concurrent requests no longer queue one by one on the database's write lock (SQLite's
lock and its back-off, the change feed's sequence lock on PostgreSQL), and a commit is
paid once per batch instead of once per request.

When a batch fails, its writes are retried one transaction each, so one bad write
fails only its own request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

logger = structlog.get_logger(__name__)

Write = Callable[[AsyncSession], Awaitable[None]]
_STOP: Any = object()  # queued by ``stop``: the writes before it are the last
MAX_BATCH = 64  # writes per transaction: enough to absorb a burst, short enough to keep locks brief


class GroupCommit:
    """One writer task for the writes handed to ``write``; ``start`` and ``stop`` with the app."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], max_batch: int = MAX_BATCH) -> None:
        self.sessionmaker = sessionmaker
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Write, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def write(self, write: Write) -> None:
        """Run ``write`` in the next batch; return once it is committed (or raise its error)."""
        if self._task is None or self._task.done():
            raise RuntimeError("the group commit is not running")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((write, done))
        await done

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        """Commit what is queued, then stop (new writes are refused from now on)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._queue.put_nowait(_STOP)  # after every write queued before it
        await task

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            stopping = batch[-1] is _STOP  # the last item ever queued: write refuses once stop began
            writes = batch[:-1] if stopping else batch
            if writes:
                await self._commit(writes)
            if stopping:
                return

    async def _commit(self, batch: list[tuple[Write, asyncio.Future[None]]]) -> None:
        waiting = [(write, done) for write, done in batch if not done.done()]  # a request gone: nothing to write
        if not waiting:
            return
        try:
            async with self.sessionmaker() as session, session.begin():
                for write, _ in waiting:
                    await write(session)
        except Exception as exc:
            if len(waiting) == 1:
                _settle(waiting[0][1], exc)
                return
            logger.warning("group_commit_batch_failed", writes=len(waiting), error=repr(exc))
            for item in waiting:  # each alone: only the bad write fails
                await self._commit([item])
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
