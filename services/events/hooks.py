"""What the events log announces to other domains (the mechanism: ``services/common/hooks.py``).

``events_stored`` is called in the transaction that stores a feed page's events and
its cursor, with the stored rows (``seq``, ``id``, ``type``, ``created_at``, ``data``
and the tenancy columns) in ``seq`` order: a handler that writes in that session
(e.g. queueing webhook deliveries) commits with the events, or not at all.
Handlers are connected in ``services/events/app.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.hooks import Hook

events_stored: Hook[[AsyncSession, Sequence[Mapping[str, Any]]]] = Hook("events_stored")
