"""Dependency aliases every service's routes use, so signatures read as intent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import session_dependency

# scope="function": the session commits before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(session_dependency, scope="function")]
