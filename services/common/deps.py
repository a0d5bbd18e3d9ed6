"""Dependency aliases every service's routes use, so signatures read as intent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import session_dependency
from services.common.errors import PreconditionFailed, PreconditionRequired

# scope="function": the session commits before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(session_dependency, scope="function")]

# Marks an If-Match the route requires (428 Precondition Required without it): the
# OpenAPI document lists it as a required header with 412 and 428 responses.
IF_MATCH_REQUIRED_EXTENSION = "x-if-match-required"
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag of the version read (required: 428 without it, 412 when stale).",
        json_schema_extra={IF_MATCH_REQUIRED_EXTENSION: True},
    ),
]


def required_if_match(if_match: str | None, detail: str) -> str:
    """The If-Match value, or 428 Precondition Required when it is missing."""
    if if_match is None:
        raise PreconditionRequired(detail)
    return if_match


def version_etag(version: int) -> str:
    """The ETag of a record's version: every service's records carry a version number."""
    return f'"{version}"'


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-Match or If-None-Match value names ``etag``: a list of ETags, weak
    (``W/"3"``) or strong, or ``*`` (RFC 9110, section 13.1)."""
    candidates = [candidate.strip().removeprefix("W/") for candidate in header.split(",")]
    return "*" in candidates or etag in candidates


def check_if_match(if_match: str | None, version: int, thing: str) -> None:
    """A write's precondition: 428 without If-Match, 412 unless it names ``version``."""
    header = required_if_match(if_match, f"Send the {thing}'s ETag in If-Match to change it")
    if not etag_matches(header, version_etag(version)):
        raise PreconditionFailed(f"The {thing} is now at version {version}; read it again")
