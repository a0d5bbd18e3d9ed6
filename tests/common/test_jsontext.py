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
