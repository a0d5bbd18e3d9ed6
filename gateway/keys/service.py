"""Issuing, authenticating, rotating and revoking API keys."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.keys.schemas import ApiKeyCreate
from gateway.keys.scopes import METRICS_READ, ROLE_SCOPES
from gateway.tables import ApiKey
from services.common.db import is_postgres
from services.common.errors import NotFound, Unauthorized
from services.common.ids import new_id
from services.common.principal import Principal, Role

KEY_PREFIX = "lk_"
BOOTSTRAP_KEY_ID = "key_bootstrap"
METRICS_KEY_ID = "key_metrics"
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often


def generate_key() -> str:
    """``lk_`` + 12 characters that identify the key + 43 secret characters (256 bits)."""
    return f"{KEY_PREFIX}{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    # Keys carry 256 random bits: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


def _visible_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 12]


async def issue_key(
    session: AsyncSession, data: ApiKeyCreate, *, created_by: str | None, rotated_from: str | None = None
) -> tuple[ApiKey, str]:
    key = generate_key()
    row = ApiKey(
        id=new_id("key"),
        name=data.name,
        prefix=_visible_prefix(key),
        secret_hash=hash_key(key),
        role=data.role.value,
        agency_id=data.agency_id,
        firm_id=data.firm_id,
        broker_id=data.broker_id,
        scopes=list(data.scopes if data.scopes is not None else ROLE_SCOPES[data.role]),
        expires_at=data.expires_at,
        created_at=datetime.now(UTC),
        created_by=created_by,
        rotated_from=rotated_from,
    )
    session.add(row)
    await session.flush()
    return row, key


async def get_key(session: AsyncSession, key_id: str) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"No API key with id '{key_id}'")
    return row


async def revoke_key(session: AsyncSession, key_id: str) -> ApiKey:
    row = await get_key(session, key_id)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    await session.flush()
    return row


async def rotate_key(session: AsyncSession, key_id: str, *, created_by: str, grace: timedelta) -> tuple[ApiKey, str]:
    """A new key with the same grants; the old one expires after ``grace``."""
    old = await get_key(session, key_id)
    if old.revoked_at is not None:
        raise NotFound(f"API key '{key_id}' is revoked")
    data = ApiKeyCreate(
        name=old.name,
        role=Role(old.role),
        agency_id=old.agency_id,
        firm_id=old.firm_id,
        broker_id=old.broker_id,
        scopes=list(old.scopes),
        expires_at=old.expires_at,
    )
    new, key = await issue_key(session, data, created_by=created_by, rotated_from=old.id)
    deadline = datetime.now(UTC) + grace
    current_expiry = old.expires_at
    old.expires_at = min(deadline, current_expiry) if current_expiry else deadline
    await session.flush()
    return new, key


BOOTSTRAP_LOCK_KEY = 7_350_002  # any constant, the same for every gateway replica of one database


async def install_bootstrap_key(sessions: async_sessionmaker[AsyncSession], key: str) -> None:
    """Make ``key`` a valid admin key (or keep it so), e.g. from GATEWAY_BOOTSTRAP_API_KEY."""
    await _install_key(sessions, key, BOOTSTRAP_KEY_ID, "bootstrap admin key", ROLE_SCOPES[Role.admin])


async def install_metrics_key(sessions: async_sessionmaker[AsyncSession], key: str) -> None:
    """Make ``key`` a valid key that may only read /metrics, e.g. from GATEWAY_METRICS_API_KEY."""
    await _install_key(sessions, key, METRICS_KEY_ID, "metrics key (Prometheus)", (METRICS_READ,))


async def _install_key(
    sessions: async_sessionmaker[AsyncSession], key: str, key_id: str, name: str, scopes: tuple[str, ...]
) -> None:
    """Make ``key`` the secret of the admin-role key ``key_id`` with exactly ``scopes``.

    One upsert, so replicas starting together agree on the row: the first inserts it,
    the others update it to the same values. On PostgreSQL they take turns (a
    transaction-scoped advisory lock): concurrent upserts are arbitrated on the id only,
    and the insert that loses can trip the unique secret-hash index instead.
    """
    values = {
        "id": key_id,
        "name": name,
        "prefix": _visible_prefix(key),
        "secret_hash": hash_key(key),
        "role": Role.admin.value,
        "scopes": list(scopes),
        "created_at": datetime.now(UTC),
    }
    async with sessions() as session, session.begin():
        postgres = is_postgres(session)
        if postgres:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BOOTSTRAP_LOCK_KEY})
        insert = postgresql.insert if postgres else sqlite.insert
        statement = insert(ApiKey).values(**values)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[ApiKey.id],
                set_={
                    "secret_hash": statement.excluded.secret_hash,
                    "prefix": statement.excluded.prefix,
                    "scopes": statement.excluded.scopes,  # scopes added since it was installed
                    "revoked_at": None,
                },
            )
        )


@dataclass
class _Cached:
    key_id: str
    principal: Principal
    expires_at: datetime | None
    cached_until: float


class KeyAuthenticator:
    """Resolves keys to principals, with a short cache so most requests skip the database.

    A revocation made through this gateway takes effect at once; one made through
    another replica takes effect within ``cache_seconds`` (``GATEWAY_KEY_CACHE_SECONDS``,
    at most 5 s).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache_seconds: float = 5.0) -> None:
        self.sessions = sessions
        self.cache_seconds = cache_seconds
        self._cache: dict[str, _Cached] = {}
        self._last_used_written: dict[str, datetime] = {}

    def forget(self, key_id: str) -> None:
        for digest in [d for d, c in self._cache.items() if c.key_id == key_id]:
            del self._cache[digest]

    async def authenticate(self, key: str) -> Principal:
        return await self.authenticate_digest(hash_key(key))

    async def authenticate_digest(self, digest: str) -> Principal:
        """The principal of the key with this digest (a browser session holds the digest)."""
        now = datetime.now(UTC)
        cached = self._cache.get(digest)
        if cached is None or cached.cached_until < time.monotonic():
            async with self.sessions() as session:
                row = await session.scalar(select(ApiKey).where(ApiKey.secret_hash == digest))  # type: ignore[arg-type]
            if row is None or row.revoked_at is not None:
                self._cache.pop(digest, None)
                raise Unauthorized("Unknown or revoked API key")
            principal = Principal(
                subject=row.id,
                role=Role(row.role),
                agency_id=row.agency_id,
                firm_id=row.firm_id,
                broker_id=row.broker_id,
                scopes=tuple(row.scopes),
            )
            cached = _Cached(row.id, principal, row.expires_at, time.monotonic() + self.cache_seconds)
            self._cache[digest] = cached
        if cached.expires_at is not None and cached.expires_at <= now:
            raise Unauthorized("API key expired")
        await self._touch(cached.key_id, now)
        return cached.principal

    async def _touch(self, key_id: str, now: datetime) -> None:
        last = self._last_used_written.get(key_id)
        if last is not None and now - last < LAST_USED_RESOLUTION:
            return
        self._last_used_written[key_id] = now
        async with self.sessions() as session, session.begin():
            await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))  # type: ignore[arg-type]
