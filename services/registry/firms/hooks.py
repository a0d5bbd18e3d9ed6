"""What the firms resource announces to other domains (the mechanism: ``services/common/hooks.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.hooks import Hook

# Called in the writing transaction after firms were created, updated or deleted (the
# resource's ``after_write``): (session, op, [(firm id, owning agency id, document, or
# None when deleted)]). Handlers are connected by ``connect_hooks`` in ``services/registry/app.py``.
firms_written: Hook[[AsyncSession, str, Sequence[tuple[str, str, Any]]]] = Hook("firms_written")
