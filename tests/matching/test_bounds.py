"""Matching refuses numbers and text past their bounds with a 422 naming the field.

Weights of 1e308 summed to Infinity and normalised to NaN; NUL bytes in ids and text
reached PostgreSQL. The matching service runs alone here (validation needs no
catalogue), on SQLite and PostgreSQL, and no case may leave a row behind.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.common.principal import Role
from services.matching.settings import MatchingSettings
from tests.support import assert_problem, principal_headers, running


def lead() -> dict[str, str]:
    """A lead firm's principal, signed now (a signature lives a minute: not at import)."""
    return principal_headers(Role.lead_firm, firm_id="frm_01J0000000000000000000LEAD")


JSON = {"Content-Type": "application/json"}
INF = float("inf")
NAN = float("nan")
KNITWEAR: dict[str, Any] = {
    "constraints": {"isic_codes": ["1430"], "capacity_unit": "pieces", "near": {"latitude": 11.1, "longitude": 77.3}},
    "criteria": {"description": "knitted cotton t-shirts", "weights": {"text": 1.0}},
}


def _with(body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """``body`` (deep-copied) with the dotted ``field`` set to ``value``."""
    out: dict[str, Any] = json.loads(json.dumps(body))
    *path, last = field.split(".")
    node = out
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value
    return out


@pytest.fixture
async def matching(matching_settings: MatchingSettings) -> AsyncIterator[httpx.AsyncClient]:
    from services.matching.app import create_app

    async with running(create_app(matching_settings, http_mounts={})) as client:
        yield client


def _assert_names(response: httpx.Response, field: str) -> None:
    assert_problem(response, 422, field=field)


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/shortlists", "criteria.weights.text", 1e308),
        ("/v1/shortlists", "criteria.weights.proximity", INF),
        ("/v1/shortlists", "criteria.weights.capacity", "1"),
        ("/v1/shortlists", "constraints.min_monthly_capacity", 1e308),
        ("/v1/shortlists", "constraints.max_distance_km", NAN),
        ("/v1/shortlists", "constraints.near.latitude", NAN),
        ("/v1/shortlists", "constraints.capacity_unit", "pie\x00ces"),
        ("/v1/shortlists", "constraints.exclude_supplier_ids", ["frm\x00"]),
        ("/v1/shortlists", "criteria.description", "cotton\x00"),
        ("/v1/shortlists", "criteria.desired_monthly_capacity", INF),
        ("/v1/shortlists", "limit", "12"),
        ("/v1/shortlists", "limit", True),
        ("/v1/buyer-standards", "name", "Knit\x00wear"),
        ("/v1/buyer-standards", "criteria.weights.text", INF),
    ],
)
async def test_a_value_out_of_bounds_is_refused(matching: httpx.AsyncClient, path: str, field: str, value: Any) -> None:
    body = _with(KNITWEAR | ({"name": "Knitwear"} if path == "/v1/buyer-standards" else {}), field, value)
    response = await matching.post(path, content=json.dumps(body), headers=lead() | JSON)
    expected = field if not isinstance(value, list) else f"{field}.0"
    _assert_names(response, expected)
    listed = await matching.get(path, headers=lead())
    assert listed.status_code == 200 and listed.json()["items"] == []  # no row written


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"shortlist_id": "sl\x00", "supplier_id": "frm_1"}, "shortlist_id"),
        ({"shortlist_id": "sl_1", "supplier_id": "frm_1", "notes": "call\x00back"}, "notes"),
        ({"shortlist_id": "sl_1", "supplier_id": "frm_1", "development_actions": [{"action": "a\nb"}]}, "action"),
        ({"shortlist_id": "sl_1", "supplier_id": "frm_1", "on": 0}, "on"),  # not 1970-01-01
    ],
)
async def test_a_linkage_out_of_bounds_is_refused(
    matching: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await matching.post("/v1/linkages", content=json.dumps(body), headers=lead() | JSON)
    assert response.status_code == 422, response.text
    assert any(e["field"].endswith(field) for e in response.json()["errors"]), response.text


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/linkages?shortlist_id=%00", "shortlist_id"),
        ("/v1/shortlists/sl_1%00", "shortlist_id"),
        ("/v1/buyer-standards/bs_1%01", "standards_id"),
        ("/v1/buyer-standards/bs_1?version=99999999999999999999", "version"),
    ],
)
async def test_a_query_out_of_bounds_is_refused(matching: httpx.AsyncClient, path: str, field: str) -> None:
    _assert_names(await matching.get(path, headers=lead()), field)
