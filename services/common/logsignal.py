"""Waking long polls when an ordered log (the outbox, the events log) gets a commit.

A long poll (``GET /v1/changes?wait=``, ``GET /v1/events?wait=``) used to read its
log again every 50 to 100 ms until something arrived: with three services following
a feed, each of its commits woke them all, and while idle they still cost a query
every few milliseconds per waiter. Now every writer of a log marks its session
(``mark_log_written``, called by ``changefeed.lock_sequence``, which every such writer
takes), and when that session's transaction commits, the long polls of this process
waiting on the same database wake at once (``LogSignal``). A writer that says which
entities its changes are about (``record_changes`` does) wakes only the long polls
that ask for those entities or for every change: a follower filtering a feed
(``GET /v1/changes?entities=``) is not woken, only to read nothing, by every commit
of the entities it skips.

Commits made by another process (another replica of the service, a command-line
tool) cannot wake them: they still read the log every ``LOG_POLL_SECONDS`` as a
fallback, which bounds the extra delay a change from elsewhere can see.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

LOG_POLL_SECONDS = 0.25  # a long poll's read of its log when nothing in this process woke it
_WROTE_LOG = "linkages_wrote_log"
_EVERY_ENTITY = "every"  # a commit whose entities are not known: it wakes every long poll


class LogSignal:
    """The logs of one database, as this process sees them: a counter of commits that wrote one."""

    def __init__(self) -> None:
        self.generation = 0  # commits that wrote a log, so far
        self._last_unknown = 0  # the last of them whose entities were not known
        self._last_by_entity: dict[str, int] = {}  # entity -> the last of them about it
        self._waiters: dict[asyncio.Future[None], frozenset[str] | None] = {}  # waiter -> entities it wants

    def written(self, entities: frozenset[str] | None = None) -> None:
        """A transaction that wrote a log has committed changes to ``entities`` (None: not
        known): wake the waiters that want any of them, or every change."""
        self.generation += 1
        if entities is None:
            self._last_unknown = self.generation
        else:
            self._last_by_entity.update(dict.fromkeys(entities, self.generation))
        for waiter, wanted in list(self._waiters.items()):
            if wanted is None or entities is None or not wanted.isdisjoint(entities):
                del self._waiters[waiter]
                loop = waiter.get_loop()
                if not loop.is_closed():  # a test's loop may have ended with a waiter in it
                    loop.call_soon_threadsafe(_wake, waiter)

    async def wait(self, generation: int, timeout: float, entities: Collection[str] | None = None) -> None:
        """Return once a log commit happened after ``generation`` was read (with ``entities``:
        one of changes to them), or after ``timeout`` seconds.

        Read ``generation`` before reading the log: a commit between that read and this
        call then returns at once instead of being missed.
        """
        wanted = None if entities is None else frozenset(entities)
        if timeout <= 0 or self._written_since(generation, wanted):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[waiter] = wanted
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, timeout)
        finally:
            self._waiters.pop(waiter, None)

    def _written_since(self, generation: int, wanted: frozenset[str] | None) -> bool:
        """Whether a commit after ``generation`` wrote changes ``wanted`` (None: any) asks for."""
        if wanted is None:
            return self.generation != generation
        last = max((self._last_by_entity.get(entity, 0) for entity in wanted), default=0)
        return max(last, self._last_unknown) > generation


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_signals: dict[str, LogSignal] = {}  # by database URL: two engines on one database share one
_engine_signals: WeakKeyDictionary[Engine, LogSignal] = WeakKeyDictionary()  # rendering a URL costs


def log_signal(bind: Any) -> LogSignal:
    """The ``LogSignal`` of the database ``bind`` (an engine, sync or async, or a connection) talks to."""
    engine: Engine = getattr(bind, "sync_engine", bind).engine
    signal = _engine_signals.get(engine)
    if signal is None:
        signal = _engine_signals[engine] = _signals.setdefault(str(engine.url), LogSignal())
    return signal


T = TypeVar("T")


async def poll_log(
    bind: Any,
    read: Callable[[], Awaitable[T]],
    *,
    found: Callable[[T], bool],
    wait: float,
    gone: Callable[[], Awaitable[bool]] | None = None,
    entities: Collection[str] | None = None,
) -> T:
    """A long poll of a log on ``bind``'s database: ``read`` it until ``found`` says the read
    has something, ``wait`` seconds pass, or ``gone`` says the asker left; between reads,
    sleep until a commit in this process writes a log (with ``entities``: changes to one of
    them), or ``LOG_POLL_SECONDS``. ``read`` carries its own position from one read to the next."""
    written = log_signal(bind)
    deadline = time.monotonic() + wait
    while True:
        generation = written.generation  # before the read: a commit during it is not missed
        result = await read()
        if found(result) or time.monotonic() >= deadline or (gone is not None and await gone()):
            return result
        await written.wait(generation, min(LOG_POLL_SECONDS, deadline - time.monotonic()), entities)


def mark_log_written(session: AsyncSession, entities: Collection[str] | None = None) -> None:
    """``session``'s transaction writes an ordered log, changes to ``entities`` (None: not
    known, or not a feed of entities): its commit wakes the long polls that want them."""
    marked = session.info.get(_WROTE_LOG, frozenset())
    if entities is None or marked == _EVERY_ENTITY:
        session.info[_WROTE_LOG] = _EVERY_ENTITY
    else:
        session.info[_WROTE_LOG] = marked | frozenset(entities)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    marked = session.info.pop(_WROTE_LOG, None)
    if marked is not None:
        log_signal(session.get_bind()).written(None if marked == _EVERY_ENTITY else marked)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_WROTE_LOG, None)
