"""JSON text is always JSON: non-finite floats are written as null, never Infinity or NaN."""

from __future__ import annotations

import json

from services.common.jsontext import FastJSONResponse, json_text


def _strict_loads(text: str | bytes) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_written_as_null() -> None:
    value = {"capacity": float("inf"), "score": float("nan"), "low": float("-inf"), "ok": 1.5}
    expected = {"capacity": None, "score": None, "low": None, "ok": 1.5}
    assert _strict_loads(bytes(FastJSONResponse(value).body)) == expected
    assert _strict_loads(json_text(value)) == expected


async def test_a_create_without_a_key_is_rendered_once_as_the_same_json() -> None:
    """``Idempotency.respond`` renders an unkeyed model straight to JSON text: the same bytes
    as rendering its JSON data, and still never Infinity or NaN."""
    from datetime import UTC, date, datetime

    from pydantic import BaseModel
    from sqlalchemy import MetaData

    from services.common.idempotency import Idempotency, idempotency_table

    class Item(BaseModel):
        supplier_id: str
        score: float
        on: date

    class Created(BaseModel):
        id: str
        created_at: datetime
        items: list[Item]
        took_ms: float

    created = Created(
        id="sl_1",
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        items=[
            Item(supplier_id="fm_é", score=0.1 + 0.2, on=date(2026, 1, 2)),
            Item(supplier_id="fm_2", score=1e-7, on=date(2026, 1, 3)),
        ],
        took_ms=float("nan"),
    )
    unkeyed = Idempotency(None, idempotency_table(MetaData()), "subject", None, "")  # type: ignore[arg-type]
    response = await unkeyed.respond(201, created, {"Location": "/v1/shortlists/sl_1"})
    assert (response.status_code, response.headers["location"]) == (201, "/v1/shortlists/sl_1")
    assert response.headers["content-type"] == "application/json"
    assert bytes(response.body) == bytes(FastJSONResponse(created.model_dump(mode="json")).body)
    assert _strict_loads(bytes(response.body))["took_ms"] is None  # type: ignore[index]


def test_json_rendered_once_is_stored_and_extended_as_it_is() -> None:
    """``JSONText`` passes through the column serialiser untouched, and ``with_members`` gives
    the bytes of ``document | members`` without parsing the document."""
    from services.common.jsontext import JSONText, json_bytes, json_response, with_members

    document = {"id": "sl_1", "score": 0.1 + 0.2, "name": "Tiruppur — knit", "items": [{"a": None}]}
    rendered = json_bytes(document)
    assert json_text(JSONText(rendered.decode())) == rendered.decode()
    assert json_text("plain text") == '"plain text"'  # a str that is not JSONText is a JSON string
    members = {"owner": "firm:fm_1", "firm_id": None, "request": json_bytes({"limit": 20})}
    expected = document | {"owner": "firm:fm_1", "firm_id": None, "request": {"limit": 20}}
    assert with_members(rendered, members) == json_bytes(expected)
    assert with_members(b"{}", {"a": 1}) == b'{"a":1}'
    assert with_members(rendered, {}) == rendered
    response = json_response(rendered, 201, {"Location": "/x"})
    assert response.body == rendered and response.status_code == 201
    assert response.headers["content-type"] == "application/json" and response.headers["location"] == "/x"
