"""aiosqlite with one hop to its thread a statement, not four.

aiosqlite runs each call on its connection's thread and hands the result back to the
event loop: a hop of about 55 µs on an idle machine, more under load. Through
SQLAlchemy a statement took four (create a cursor, execute, fetch the rows, close the
cursor), so a request reading one row (``BEGIN``, the ``SELECT``, ``ROLLBACK``) took
nine. Here a cursor is only a holder: ``execute`` runs the statement, fetches every row
and closes the sqlite3 cursor in one hop, and the fetches read what it kept. SQLAlchemy
fetches every row of a result at once with aiosqlite anyway (its server-side cursors,
which would fetch in parts, are not used here).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from threading import Thread
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager
from aiosqlite.core import _STOP_RUNNING_SENTINEL as _STOP_RUNNING  # what aiosqlite's stop() returns
from aiosqlite.core import set_exception, set_result

Described = tuple[Any, int, int | None, list[Any]]  # description, rowcount, lastrowid, rows


def _run(connection: sqlite3.Connection, sql: str, parameters: Any, many: bool) -> Described:
    """On the connection's thread: run, fetch, close; what the cursor's readers need."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor(aiosqlite.Cursor):
    def __init__(self, connection: OneHopConnection) -> None:  # no sqlite3 cursor held
        self.iter_chunk_size = connection._iter_chunk_size
        self._conn = connection
        self._rows: deque[Any] = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> OneHopCursor:
        return await self._run(sql, () if parameters is None else parameters, many=False)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> OneHopCursor:
        return await self._run(sql, parameters, many=True)

    async def _run(self, sql: str, parameters: Any, *, many: bool) -> OneHopCursor:
        described: Described = await self._conn._execute(  # type: ignore[no-untyped-call]
            _run, self._conn._conn, sql, parameters, many
        )
        self._description, self._rowcount, self._lastrowid, rows = described
        self._rows = deque(rows)
        return self

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        count = self.iter_chunk_size if size is None else size
        return [self._rows.popleft() for _ in range(min(count, len(self._rows)))]

    async def fetchall(self) -> Sequence[Any]:
        rows, self._rows = list(self._rows), deque()
        return rows

    async def close(self) -> None:
        self._rows = deque()

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._lastrowid

    @property
    def description(self) -> Any:
        return self._description


def _deliver(future: asyncio.Future[Any] | None, settle: Callable[..., None], value: Any) -> None:
    """Hand a call's outcome to the loop that awaits it, unless that loop has closed: a
    connection stopped by a finaliser (SQLAlchemy's pool, or ``__del__``, after its loop
    ended) has nobody waiting, and raising on the thread would only report it as an
    unhandled thread exception."""
    if future is None:
        return
    try:
        future.get_loop().call_soon_threadsafe(settle, future, value)
    except RuntimeError:  # the loop is closed
        pass


def _worker(calls: Any) -> None:
    """aiosqlite's connection thread, delivering as ``_deliver`` does: run each queued call
    in order until the one that stops the connection."""
    while True:
        future, function = calls.get()
        try:
            result = function()
        except BaseException as error:  # delivered to the caller, as aiosqlite does
            _deliver(future, set_exception, error)
            continue
        _deliver(future, set_result, result)
        if result is _STOP_RUNNING:
            return


class OneHopConnection(aiosqlite.Connection):
    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        self._thread = Thread(target=_worker, args=(self._tx,), daemon=True)  # never blocks exit

    @contextmanager  # awaitable, or an async context manager, as aiosqlite's own
    async def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    async def rollback(self) -> None:
        # The pool rolls back every connection it takes back, most of them just committed:
        # no hop when there is no transaction (the flag is read while the thread is idle,
        # as every call on a connection is awaited before the next).
        if self._connection is not None and self._connection.in_transaction:
            await super().rollback()


def connect(database: str, **kwargs: Any) -> OneHopConnection:
    """``aiosqlite.connect`` with one-hop cursors: for ``create_async_engine(async_creator=)``."""

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(database, **kwargs)
        return connection

    return OneHopConnection(connector, iter_chunk_size=64)
