"""JSON text from pydantic-core's encoder: one fast serialiser for responses and JSON columns.

The standard library's ``json.dumps`` and FastAPI's ``jsonable_encoder`` take several
times longer than pydantic-core (Rust) for a shortlist (figures in docs/benchmarks.md).
Values must already be JSON data or types pydantic-core knows (dates, UUIDs). A
non-finite float (which input bounds keep out, but a computation could still make) is
written as ``null``: ``Infinity`` and ``NaN`` are not JSON, and no client parses them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pydantic_core
from fastapi.responses import JSONResponse


def json_text(value: Any) -> str:
    """``value`` as compact JSON text: the serialiser of JSON columns and ``COPY`` rows."""
    return pydantic_core.to_json(value, inf_nan_mode="null").decode()


def json_time(moment: datetime) -> str:
    """``moment`` as the public schemas write times: RFC 3339 in UTC, with ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FastJSONResponse(JSONResponse):
    """A ``JSONResponse`` rendered by pydantic-core instead of ``json.dumps``."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content, inf_nan_mode="null")
