"""JSON text from pydantic-core's encoder: one fast serialiser for responses and JSON columns.

The standard library's ``json.dumps`` and FastAPI's ``jsonable_encoder`` take several
times longer than pydantic-core (Rust) for a shortlist (figures in docs/benchmarks.md).
Values must already be JSON data or types pydantic-core knows (dates, UUIDs). A
document rendered once can be handed on as ``JSONText``: JSON columns store it, and
``json_response`` sends it, as it is. A
non-finite float (which input bounds keep out, but a computation could still make) is
written as ``null``: ``Infinity`` and ``NaN`` are not JSON, and no client parses them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pydantic_core
from fastapi import Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

JSON_MEDIA_TYPE = "application/json"


class JSONText(str):
    """JSON text already rendered: written to a JSON column as it is, not as a JSON string."""


def json_text(value: Any) -> str:
    """``value`` as compact JSON text: the serialiser of JSON columns and ``COPY`` rows."""
    if isinstance(value, JSONText):
        return value
    return pydantic_core.to_json(value, inf_nan_mode="null").decode()


def json_bytes(value: BaseModel | Any) -> bytes:
    """``value`` (a model, or JSON data) as compact JSON, rendered once by pydantic-core."""
    if isinstance(value, BaseModel):
        return value.model_dump_json(by_alias=True).encode()
    return pydantic_core.to_json(value, inf_nan_mode="null")


def with_members(document: bytes, members: dict[str, Any]) -> bytes:
    """The JSON object ``document`` with ``members`` appended, without parsing it: what
    ``document | members`` would render. A member given as bytes is JSON already rendered;
    the keys must be new to ``document``."""
    if not members:
        return document
    rendered = b",".join(
        pydantic_core.to_json(key) + b":" + (value if isinstance(value, bytes) else json_bytes(value))
        for key, value in members.items()
    )
    return b"{" + rendered + b"}" if document == b"{}" else document[:-1] + b"," + rendered + b"}"


def json_response(value: BaseModel | Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response from a model or JSON data, rendered once: no re-validation against a
    response model and no ``jsonable_encoder`` (hot routes return this; the route's
    ``response_model`` still documents the body)."""
    body = value if isinstance(value, bytes) else json_bytes(value)
    return Response(body, status_code, headers, JSON_MEDIA_TYPE)


def json_time(moment: datetime) -> str:
    """``moment`` as the public schemas write times: RFC 3339 in UTC, with ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FastJSONResponse(JSONResponse):
    """A ``JSONResponse`` rendered by pydantic-core instead of ``json.dumps``."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content, inf_nan_mode="null")
