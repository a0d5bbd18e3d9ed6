"""Async database engine, sessions and the transaction-owning session dependency."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic_core
from fastapi import Request
from sqlalchemy import DateTime, Dialect, Insert, MetaData, Table, event, text
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator

from services.common import sqlitedriver
from services.common.jsontext import json_text

# Stable constraint names, so that Alembic migrations can name what they alter.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, stored in UTC and always read back as an aware UTC datetime.

    Every time column of every service has this type. The column itself is
    ``DateTime(timezone=True)`` (what the migrations create, and what autogenerate
    renders): PostgreSQL keeps the zone, SQLite only the digits, so a value is
    converted to UTC before it is written, and a naive value is UTC (written or read).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _utc(value)


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def new_registry() -> registry:
    """A mapper registry with its own metadata: one per service database."""
    return registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL, foreign keys and write locking.

    SQLite write transactions start with ``BEGIN IMMEDIATE`` so that two writers queue
    on the database lock instead of failing when a read transaction upgrades to a
    write; read-only sessions (``create_sessionmaker(read_only=True)``) begin deferred.
    SQLite connections are aiosqlite's with one hop to their thread a statement
    (``sqlitedriver``).
    """
    if echo:  # through the sqlalchemy.engine logger (JSON, like every line), not SQLAlchemy's own handler
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    if ensure_sqlite_directory(url):
        database = make_url(url).database or ":memory:"
        engine = create_async_engine(
            url,
            async_creator=lambda: sqlitedriver.connect(database, timeout=30),
            pool_size=pool_size,
            json_serializer=json_text,
            json_deserializer=pydantic_core.from_json,
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        json_serializer=json_text,
        json_deserializer=pydantic_core.from_json,
    )


def ensure_sqlite_directory(url: str) -> bool:
    """Create the folder of a SQLite database file; whether ``url`` is SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return True


def configure_sqlite_connection(dbapi_connection: Any) -> None:
    """Settings every connection to a SQLite database takes (the engine's, and a
    ``DirectWriter``'s own): WAL, foreign keys, a busy timeout, BEGIN emitted by us."""
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
    cursor = dbapi_connection.cursor()
    # The busy timeout first: switching to WAL takes a lock that another process's
    # connection may hold, and without the timeout SQLite refuses at once.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        configure_sqlite_connection(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_SQLITE_WRITE, True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_SQLITE_WRITE = "linkages_sqlite_write"


class Session(AsyncSession):
    """The services' session: closing one that was never used costs nothing.

    ``AsyncSession.close`` always crosses into SQLAlchemy's greenlet (about 50 µs); a session
    that began no transaction and holds no object has nothing to close, and a request whose
    route reads nothing (a shortlist asked for inline) paid it on every call."""

    async def close(self) -> None:
        sync = self.sync_session
        if sync.in_transaction() or sync.identity_map or sync.new or sync.deleted:
            await super().close()


def create_sessionmaker(engine: AsyncEngine, *, read_only: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions for writing, or (``read_only``) for reading.

    The difference matters on SQLite only: a read-only session begins a deferred
    transaction, so reads never queue behind a writer (WAL gives them a snapshot).
    """
    bind = engine.execution_options(**{_SQLITE_WRITE: False}) if read_only else engine
    return async_sessionmaker(bind, class_=Session, expire_on_commit=False, autoflush=False)


def is_postgres(session_or_engine: AsyncSession | AsyncEngine) -> bool:
    bind = session_or_engine.bind if isinstance(session_or_engine, AsyncSession) else session_or_engine
    return bind is not None and bind.dialect.name == "postgresql"


def insert_or_skip(session: AsyncSession, table: Table) -> Insert:
    """``INSERT`` into ``table`` that leaves out rows whose unique key is taken, on either
    database: ``ON CONFLICT DO NOTHING`` (PostgreSQL's and SQLite's own syntax)."""
    insert = postgres_insert if is_postgres(session) else sqlite_insert
    return insert(table).on_conflict_do_nothing()


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database cannot answer a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request that owns the transaction.

    It commits when the route returns and rolls back when anything raises, so routes
    never commit; it is declared with ``scope="function"`` (see ``deps``) so that the
    commit happens before the response is sent and a failed commit is an error
    response, not a lie.
    """
    state = request.app.state
    reading = request.method in ("GET", "HEAD", "OPTIONS")
    sessionmaker: async_sessionmaker[AsyncSession] = state.read_sessionmaker if reading else state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            if session.in_transaction():  # begun by a statement or an added object: else nothing to commit
                await session.commit()
