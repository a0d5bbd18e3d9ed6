"""``Idempotency-Key`` on creating POSTs: a retried request returns the first response.

The key, a fingerprint of the request and the response are stored in the same
transaction as the write itself, so either both exist or neither does: a client
that retries after a timeout never creates a second record. Keys are scoped to the
principal and kept for ``idempotency_ttl_hours``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import UTCDateTime
from services.common.deps import SessionDep
from services.common.errors import IdempotencyInProgress, IdempotencyKeyReused, invalid_field
from services.common.jsontext import FastJSONResponse, JSONText, json_bytes, json_response
from services.common.principal import PrincipalDep

REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEY_MAX_LENGTH = 200
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        description="Makes a retried create return the first response (kept for idempotency_ttl_hours).",
    ),
]


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("subject", String(200), primary_key=True),
        Column("key", String(200), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("body", JSON, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False, index=True),
    )


class IdempotentReplay(Exception):
    """Raised by the dependency when the key was seen: the stored response is sent."""

    def __init__(self, status_code: int, body: Any, headers: dict[str, str]) -> None:
        self.response = FastJSONResponse(body, status_code=status_code, headers=headers | {REPLAYED_HEADER: "true"})


@dataclass
class Idempotency:
    """Per-request handle: ``respond`` stores and returns the response of a create."""

    session: AsyncSession
    table: Table
    subject: str
    key: str | None
    fingerprint: str

    async def respond(
        self, status_code: int, body: BaseModel | dict[str, Any] | bytes, headers: dict[str, str] | None = None
    ) -> Response:
        """Store (under the key) and return ``body``: a model, JSON data as ``model_dump(mode="json")``
        gives, or JSON already rendered (bytes, as ``json_bytes`` gives).

        The body is rendered to JSON once, by pydantic-core (FastAPI's ``jsonable_encoder``
        takes milliseconds on a shortlist), and stored under the key as that same text.
        """
        headers = headers or {}
        rendered = body if isinstance(body, bytes) else json_bytes(body)
        if self.key is not None:
            try:
                async with self.session.begin_nested():
                    await self.session.execute(
                        insert(self.table).values(
                            subject=self.subject,
                            key=self.key,
                            fingerprint=self.fingerprint,
                            status_code=status_code,
                            body=JSONText(rendered.decode()),
                            headers=headers,
                            created_at=datetime.now(UTC),
                        )
                    )
            except IntegrityError:
                # A concurrent request with the same key won the race: this one's
                # writes are rolled back with the request's transaction.
                raise IdempotencyInProgress("Retry to receive the first request's response") from None
        return json_response(rendered, status_code, headers)


def _fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


async def idempotency(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Idempotency:
    """Dependency: replays a stored response, or hands the route an ``Idempotency``."""
    # Only a keyed request is ever compared with another: the others skip re-encoding their body.
    fingerprint = (
        "" if idempotency_key is None else _fingerprint(request.method, request.url.path, await request.body())
    )
    return await begin_idempotent(request, session, principal.subject, idempotency_key, fingerprint)


async def begin_idempotent(
    request: Request, session: AsyncSession, subject: str, key: str | None, fingerprint: str
) -> Idempotency:
    """Replay the stored response of ``key`` (raises ``IdempotentReplay``), or return the handle.

    For routes that compute their own fingerprint (uploads hash the file they stream
    to disk instead of holding the body in memory).
    """
    table: Table = request.app.state.idempotency_table
    if key is not None:
        if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
            raise invalid_field(
                "Idempotency-Key", f"must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters", "invalid", "header"
            )
        ttl = timedelta(hours=request.app.state.settings.idempotency_ttl_hours)
        await session.execute(
            delete(table).where(
                table.c.subject == subject,
                table.c.key == key,
                table.c.created_at < datetime.now(UTC) - ttl,
            )
        )
        stored = (await session.execute(select(table).where(table.c.subject == subject, table.c.key == key))).first()
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise IdempotencyKeyReused("This Idempotency-Key was first used with another method, path or body")
            raise IdempotentReplay(stored.status_code, stored.body, dict(stored.headers))
    return Idempotency(session, table, subject, key, fingerprint)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]
