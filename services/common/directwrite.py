"""Inserts written straight through the database driver, for a hot writer.

A shortlist's write is two rows (the shortlist, its change-feed row), and written
through an ``AsyncSession`` it cost about six times what the database spends on it:
the session's and the connection's transaction bookkeeping, each statement's execution
context, and on SQLite a hop to aiosqlite's thread and back for every step (cursor,
execute, close, begin, commit). ``DirectWriter`` keeps SQLAlchemy for what it does once
(the statement's SQL for the dialect, each column's bind processing, so a value is
stored exactly as a session would store it) and hands the driver the rows:

- SQLite: the whole transaction (``BEGIN IMMEDIATE``, the inserts, ``COMMIT``) runs as
  one call on a thread of its own, on a ``sqlite3`` connection configured as the
  engine's are (``configure_sqlite_connection``): one hop, not a dozen;
- PostgreSQL: the transaction runs on a connection kept from the engine's pool,
  through asyncpg itself (the codecs SQLAlchemy registered on it included).

A transaction that writes a change feed (``Inserts.log_entities``) takes the feed's
sequence lock first, as ``record_changes`` does, and its commit wakes the long polls
waiting for those entities, as a session's commit does. A follower that stores what it
read with its cursor (the reporting read model) deletes the rows it rewrites
(``Inserts.deletes``) and moves its cursor (``Inserts.upserts``) in the same transaction.

Measured in docs/benchmarks.md ("Shortlists stored through the driver").
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter
from typing import Any

import structlog
from sqlalchemy import Column, Table, bindparam, delete, insert
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.changefeed import OUTBOX_LOCK_KEY
from services.common.db import configure_sqlite_connection
from services.common.logsignal import log_signal

logger = structlog.get_logger(__name__)

Rows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Inserts:
    """What one transaction writes, in this order: ``deletes`` (the rows whose column holds
    one of the values), the rows of ``tables`` inserted table after table, and ``upserts``
    (each row inserted, or its non-key columns set where its primary key is taken: a cursor).
    ``log_entities``: the entities of the change-feed rows among them (none: no feed is written)."""

    tables: Sequence[tuple[Table, Rows]]
    log_entities: Collection[str] = field(default_factory=frozenset)
    deletes: Sequence[tuple[Column[Any], Sequence[Any]]] = ()
    upserts: Sequence[tuple[Table, Rows]] = ()


@dataclass(frozen=True)
class _Statement:
    sql: str
    keys: tuple[str, ...]  # in the statement's parameter order
    processors: tuple[Callable[[Any], Any] | None, ...]

    @cached_property
    def record(self) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
        """A row's parameters, each through its column's bind processor. Made once: a
        follower's page has thousands of rows, and a generator a row cost a third of them."""
        if len(self.keys) == 1:  # itemgetter of one key gives the value, not a tuple
            key = self.keys[0]
            values: Callable[[Mapping[str, Any]], tuple[Any, ...]] = lambda row: (row[key],)  # noqa: E731
        else:
            values = itemgetter(*self.keys)
        processed = [(at, process) for at, process in enumerate(self.processors) if process is not None]
        if not processed:
            return values

        def record(row: Mapping[str, Any]) -> tuple[Any, ...]:
            found = list(values(row))
            for at, process in processed:
                found[at] = process(found[at])
            return tuple(found)

        return record


class DirectWriter:
    """Writes ``Inserts`` in one transaction each, on a connection of its own; ``close`` it
    before the engine is disposed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._statements: dict[tuple[str, Table, tuple[str, ...]], _Statement] = {}
        self._sqlite_path: str | None = None
        if engine.dialect.name == "sqlite":
            database = engine.url.database
            if not database or database == ":memory:" or database.startswith("file:"):
                raise ValueError(f"a direct writer needs a SQLite database file, not {database!r}")
            self._sqlite_path = database
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-direct-writer")
            self._sqlite: sqlite3.Connection | None = None  # used on that thread only
        else:
            self._connection: AsyncConnection | None = None

    async def write(self, inserts: Inserts) -> None:
        """Insert every row of ``inserts`` in one transaction and commit; raise (having
        rolled back) if any row cannot be written."""
        batches = [
            (statement.sql, [statement.record({column.key: value}) for value in values])
            for column, values in inserts.deletes
            if values
            for statement in (self._statement("delete", column.table, (column.key,)),)
        ] + [
            (statement.sql, [statement.record(row) for row in rows])
            for kind, writes in (("insert", inserts.tables), ("upsert", inserts.upserts))
            for table, rows in writes
            if rows
            for statement in (self._statement(kind, table, tuple(rows[0])),)
        ]
        if not batches:
            return
        entities = frozenset(inserts.log_entities)
        if self._sqlite_path is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._write_sqlite, batches)
        else:
            await self._write_postgres(batches, lock=bool(entities))
        if entities:
            log_signal(self.engine).written(entities)

    async def reset(self) -> None:
        """Let go of the connection (after a failure: the next write opens another)."""
        if self._sqlite_path is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._close_sqlite)
            return
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception as exc:  # a connection already broken: the pool discards it
                logger.warning("direct_writer_connection_close_failed", error=repr(exc))

    async def close(self) -> None:
        await self.reset()
        if self._sqlite_path is not None:
            self._thread.shutdown(wait=True)

    def _statement(self, kind: str, table: Table, keys: tuple[str, ...]) -> _Statement:
        statement = self._statements.get((kind, table, keys))
        if statement is None:
            statement = self._statements[(kind, table, keys)] = self._compile(kind, table, keys)
        return statement

    def _compile(self, kind: str, table: Table, keys: tuple[str, ...]) -> _Statement:
        dialect = self.engine.dialect
        if kind == "delete":
            (key,) = keys
            compiled = delete(table).where(table.c[key] == bindparam(key)).compile(dialect=dialect)
        else:
            # A session applies Python-side column defaults to the keys a row leaves out;
            # this writer does not, so a row must name every such column.
            defaulted = [c.key for c in table.columns if c.key not in keys and c.default is not None]
            if defaulted:
                missing = ", ".join(defaulted)
                raise ValueError(f"rows of {table.name} must give {missing}: a direct write applies no defaults")
            statement = insert(table) if kind == "insert" else self._upsert(table, keys)
            compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        order = tuple(compiled.positiontup or ())
        if sorted(order) != sorted(keys):
            raise ValueError(f"unexpected parameters {order} for the columns {keys} of {table.name}")
        processors = tuple(table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in order)
        return _Statement(str(compiled), order, processors)

    def _upsert(self, table: Table, keys: tuple[str, ...]) -> Any:
        statement = (postgres_insert if self._sqlite_path is None else sqlite_insert)(table)
        primary_key = [column.key for column in table.primary_key.columns]
        if not set(primary_key) <= set(keys):
            raise ValueError(f"upserted rows of {table.name} must give its primary key {primary_key}")
        updated = {key: statement.excluded[key] for key in keys if key not in primary_key}
        return statement.on_conflict_do_update(index_elements=primary_key, set_=updated)

    def _write_sqlite(self, batches: list[tuple[str, list[tuple[Any, ...]]]]) -> None:  # on the writer's thread
        if self._sqlite is None:
            assert self._sqlite_path is not None
            self._sqlite = sqlite3.connect(self._sqlite_path, timeout=30)
            configure_sqlite_connection(self._sqlite)
        database = self._sqlite
        database.execute("BEGIN IMMEDIATE")
        try:
            for sql, records in batches:
                database.executemany(sql, records)
            database.execute("COMMIT")
        except BaseException:
            if database.in_transaction:
                database.execute("ROLLBACK")
            raise

    def _close_sqlite(self) -> None:  # on the writer's thread
        database, self._sqlite = self._sqlite, None
        if database is not None:
            database.close()

    async def _write_postgres(self, batches: list[tuple[str, list[tuple[Any, ...]]]], *, lock: bool) -> None:
        if self._connection is None:
            self._connection = await self.engine.connect()
        driver = (await self._connection.get_raw_connection()).driver_connection
        assert driver is not None
        async with driver.transaction():
            if lock:  # sequence numbers drawn, and committed, in order (``lock_sequence``)
                await driver.execute("SELECT pg_advisory_xact_lock($1)", OUTBOX_LOCK_KEY)
            for sql, records in batches:
                await driver.executemany(sql, records)
