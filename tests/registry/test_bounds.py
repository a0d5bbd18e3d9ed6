"""Numbers and text the databases cannot hold are refused with a 422 naming the field.

Each case was a 500 on PostgreSQL (integers past 32 or 64 bits, NUL in text), a body
with a bare ``Infinity`` on SQLite, or a silent coercion (``true`` or ``"12"`` as a
count). The registry runs on SQLite and PostgreSQL; no case may leave a row behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.common.pagination import encode_cursor
from tests.registry.helpers import (
    activity_body,
    broker_body,
    cluster_body,
    create,
    errors_csv,
    finished,
    firm_body,
    firm_row,
    firms_of,
    import_csv,
    institution_body,
    make_agency,
    network_body,
    programme_body,
    to_csv,
    upload,
)
from tests.support import ADMIN, agency_headers, assert_problem

INF = float("inf")
NAN = float("nan")

# (collection, valid body, field, bad value); the field is dotted where it is nested.
BAD_VALUES: list[tuple[str, Callable[..., dict[str, Any]], str, Any]] = [
    ("/v1/firms", firm_body, "employees", 2**63),
    ("/v1/firms", firm_body, "employees", 2**31),
    ("/v1/firms", firm_body, "employees", True),
    ("/v1/firms", firm_body, "employees", "12"),
    ("/v1/firms", firm_body, "monthly_capacity", INF),
    ("/v1/firms", firm_body, "monthly_capacity", 1e308),
    ("/v1/firms", firm_body, "monthly_capacity", "12000"),
    ("/v1/firms", firm_body, "quality_score", NAN),
    ("/v1/firms", firm_body, "latitude", INF),
    ("/v1/firms", firm_body, "name", "Textiles\x00Andinos"),
    ("/v1/firms", firm_body, "name", "Textiles\nAndinos"),
    ("/v1/firms", firm_body, "capabilities", "knitting\x00"),
    ("/v1/firms", firm_body, "capabilities", "knitting\ud800"),
    ("/v1/firms", firm_body, "street", "Calle\x1b[31m 1"),
    ("/v1/firms", firm_body, "national_ids.0.value", [{"scheme": "RUC", "value": "17\x0090"}]),
    ("/v1/firms", firm_body, "certifications.0.scheme", [{"scheme": "iso\x009001"}]),
    ("/v1/firms", firm_body, "cluster_ids.0", ["clu_1\x00"]),
    ("/v1/clusters", cluster_body, "jobs", 2**32),
    ("/v1/clusters", cluster_body, "smes", 2**63),
    ("/v1/clusters", cluster_body, "regional_employment_share", INF),
    ("/v1/clusters", cluster_body, "description", "a\x00b"),
    ("/v1/programmes", programme_body, "budget_amount", 1e308),
    ("/v1/programmes", programme_body, "budget_amount", INF),
    ("/v1/programmes", programme_body, "name", "\x07"),
    ("/v1/activities", activity_body, "participants.entrepreneurs", {"entrepreneurs": 2**40}),
    ("/v1/activities", activity_body, "women_participants", True),
    ("/v1/activities", activity_body, "title", "work\x00shop"),
    ("/v1/institutions", institution_body, "description", "courses\x00"),
    ("/v1/institutions", institution_body, "website", "https://cdt.example.ec/\x7f"),
    ("/v1/brokers", broker_body, "languages.0", ["e\x00s"]),
    ("/v1/brokers", broker_body, "organisation", "Cá\x85mara"),
    ("/v1/networks", network_body, "description", "yarn\x00"),
    ("/v1/networks", network_body, "joint_actions.0.description", [{"kind": "training", "description": "\x00"}]),
    # Dates are YYYY-MM-DD: lax parsing read a number as a Unix time (1970-01-01).
    ("/v1/brokers", broker_body, "trained_on", 0),
    ("/v1/activities", activity_body, "start_date", "0"),
    ("/v1/networks", network_body, "formed_on", 1700000000),
    ("/v1/firms", firm_body, "certifications.0.valid_until", [{"scheme": "iso9001", "valid_until": 0}]),
]


def _case_id(case: tuple[str, Any, str, Any]) -> str:
    value = case[3]
    shown = type(value).__name__ if isinstance(value, list | dict) else repr(value)[:20]
    return f"{case[0].rsplit('/', 1)[-1]}.{case[2]}={shown}"


def _body(factory: Callable[..., dict[str, Any]], field: str, value: Any) -> dict[str, Any]:
    return factory(**{field.split(".")[0]: value})


async def _count(registry: httpx.AsyncClient, path: str) -> int:
    response = await registry.get(path, params={"limit": 200}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def _assert_names(response: httpx.Response, field: str) -> None:
    assert_problem(response, 422, field=field)


@pytest.mark.parametrize(("path", "factory", "field", "value"), BAD_VALUES, ids=[_case_id(c) for c in BAD_VALUES])
async def test_a_value_out_of_bounds_is_refused_on_create(
    registry: httpx.AsyncClient, path: str, factory: Callable[..., dict[str, Any]], field: str, value: Any
) -> None:
    agency = await make_agency(registry)
    before = await _count(registry, path)
    # Sent as JSON text, as a client would: Infinity and NaN as the literals Python's json writes.
    content = json.dumps(_body(factory, field, value))
    response = await registry.post(
        path, content=content, headers=agency_headers(agency) | {"Content-Type": "application/json"}
    )
    _assert_names(response, field)
    assert await _count(registry, path) == before  # no row written


@pytest.mark.parametrize(
    ("field", "value"),
    [("employees", 2**63), ("monthly_capacity", INF), ("name", "a\x00b"), ("quality_score", "0.5")],
)
async def test_a_value_out_of_bounds_is_refused_on_update(registry: httpx.AsyncClient, field: str, value: Any) -> None:
    agency = await make_agency(registry)
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    response = await registry.patch(
        f"/v1/firms/{firm['id']}",
        content=json.dumps({field: value}),
        headers=agency_headers(agency) | {"If-Match": '"1"', "Content-Type": "application/json"},
    )
    _assert_names(response, field)
    stored = (await registry.get(f"/v1/firms/{firm['id']}", headers=ADMIN)).json()
    assert stored == firm  # unchanged, version included


async def test_free_text_keeps_its_lines_and_tabs(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    text = "Knitted cotton:\n\t- t-shirts\r\n\t- sweaters"
    firm = await create(registry, "/v1/firms", firm_body(capabilities=text, employees=2**31 - 1), agency)
    assert firm["capabilities"] == text and firm["employees"] == 2**31 - 1


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/firms?q=a%00b", "q"),
        ("/v1/firms?q=a%01b", "q"),
        ("/v1/clusters?q=%00", "q"),
        ("/v1/networks?firm_id=frm%00", "firm_id"),
        ("/v1/firms?agency_id=agy%0A1", "agency_id"),
        ("/v1/firms?limit=99999999999999999999", "limit"),
        ("/v1/firms/frm_1%00", "record_id"),
        ("/v1/duplicates?min_score=inf", "min_score"),
        ("/v1/duplicates?firm_id=%00", "firm_id"),
    ],
)
async def test_a_query_out_of_bounds_is_refused(registry: httpx.AsyncClient, path: str, field: str) -> None:
    await make_agency(registry)
    _assert_names(await registry.get(path, headers=ADMIN), field)


async def test_a_cursor_holding_a_control_character_is_refused(registry: httpx.AsyncClient) -> None:
    response = await registry.get("/v1/firms", params={"cursor": encode_cursor("frm\x00")}, headers=ADMIN)
    _assert_names(response, "cursor")


async def test_an_import_reads_numbers_from_text_but_keeps_their_bounds(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    rows = [
        firm_row(1, employees="12"),  # a file holds text: "12" is twelve
        firm_row(2, employees=str(2**63)),
        firm_row(3, latitude="inf", longitude="-78.2"),
        firm_row(4, street="Calle\x1b 4"),
    ]
    job = await import_csv(registry, rows, agency)
    assert job["progress"]["rows_accepted"] == 1 and job["progress"]["rows_rejected"] == 3, job
    assert [(f["name"], f["employees"]) for f in await firms_of(registry, agency)] == [(rows[0]["name"], 12)]
    errors = {e["row"]: e["field"] for e in await errors_csv(registry, job["id"], agency)}
    assert errors == {"3": "employees", "4": "latitude", "5": "street"}


@pytest.mark.parametrize("delimiter", ["\x00", "\n", "\x7f", ";;"])
async def test_an_import_delimiter_must_be_one_printable_character_or_a_tab(
    registry: httpx.AsyncClient, delimiter: str
) -> None:
    agency = await make_agency(registry)
    response = await upload(registry, to_csv([firm_row(1)]), agency, params={"delimiter": delimiter})
    _assert_names(response, "delimiter")
    listed = await registry.get("/v1/imports", headers=agency_headers(agency))
    assert listed.status_code == 200 and listed.json()["items"] == []  # no job written


async def test_a_tab_delimited_import_is_read(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    response = await upload(registry, to_csv([firm_row(1)], delimiter="\t"), agency, params={"delimiter": "\t"})
    assert response.status_code == 202, response.text
    assert (await finished(registry, response.json()["id"], agency))["progress"]["rows_accepted"] == 1
