"""Imported rows are validated exactly like ``POST /v1/firms``: a property test over generated rows.

Each generated row, good or bad, goes both ways: as a cell of a CSV through
``POST /v1/imports`` (its problems read back from ``errors.csv``) and as the
equivalent JSON body through ``POST /v1/firms``. Both must accept it or both
reject it, with the same problems (field, code and message).
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.registry.helpers import HEADER, errors_csv, firms_of, import_csv, make_agency
from tests.support import agency_headers

_SERIAL = itertools.count()


def _pick(draw: st.DrawFn, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """A good value mostly, a bad one about one time in eight: rows with no, one or several problems."""
    return draw(bad) if draw(st.integers(min_value=0, max_value=7)) == 0 else draw(good)


@st.composite
def firm_fields(draw: st.DrawFn) -> dict[str, Any]:
    """A firm's fields as typed JSON values, each drawn from good and bad ones; None: left out."""
    lists = st.lists
    fields: dict[str, Any] = {
        "name": _pick(
            draw, st.sampled_from(["Textiles Andinos Cía. Ltda.", "Sri Balaji Textiles"]), st.just("x" * 400)
        ),
        "roles": _pick(
            draw,
            lists(st.sampled_from(["supplier", "lead_firm"]), min_size=1, max_size=2),
            lists(st.sampled_from(["supplier", "buyer"]), max_size=3),
        ),
        "size_class": _pick(draw, st.sampled_from(["micro", "small", "large"]), st.sampled_from(["huge", None])),
        "isic_codes": _pick(
            draw,
            lists(st.sampled_from(["1410", "1430", "0111"]), min_size=1, max_size=3),
            lists(st.sampled_from(["1410", "9999", "14"]), max_size=3),
        ),
        "hs_codes": _pick(draw, lists(st.sampled_from(["6109", "611020"]), max_size=2), st.just(["99", "123"])),
        "country": _pick(draw, st.sampled_from(["EC", "IN", "ec"]), st.sampled_from(["XX", "ECU", None])),
        "subdivision": _pick(draw, st.sampled_from(["EC-I", "IN-PB", "ec-p", None]), st.just("EC-ZZ")),
        "locality": draw(st.sampled_from(["Atuntaqui", "Ludhiana", None])),
        # What COPY's text format escapes (PostgreSQL imports are COPY-ed): it must read back as typed.
        "capabilities": draw(st.sampled_from(["knitting\tdyeing", "line one\nline two", "C:\\N\\t \\", None])),
        "employees": _pick(draw, st.none() | st.integers(0, 2_000_000), st.integers(-5, -1)),
        "latitude": _pick(draw, st.just(0.3317), st.sampled_from([-91.0, None])),
        "longitude": _pick(draw, st.just(-78.2139), st.sampled_from([181.0, None])),
    }
    return {name: value for name, value in fields.items() if value is not None and value != []}


def as_cells(fields: dict[str, Any], national_id: str) -> dict[str, str]:
    """The CSV row of ``fields``: numbers as text, lists joined by ``;``, left-out fields empty."""
    cells = {"national_id_scheme": "RUC", "national_id": national_id}
    for name, value in fields.items():
        cells[name] = "; ".join(value) if isinstance(value, list) else str(value)
    return cells


def problems(errors: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    return sorted((e["field"], e["code"], e["message"]) for e in errors)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(firm_fields(), min_size=1, max_size=30))
async def test_imported_rows_get_the_same_verdict_and_problems_as_single_writes(
    registry: httpx.AsyncClient, rows: list[dict[str, Any]]
) -> None:
    agency = await make_agency(registry)  # a new one each example: natural keys are per agency
    serial = next(_SERIAL)
    ids = [f"{serial:04d}{index:05d}001" for index in range(len(rows))]
    cells = [as_cells(f, i) for f, i in zip(rows, ids, strict=True)]
    job = await import_csv(registry, cells, agency, [*HEADER, "capabilities"])
    assert job["status"] == "completed", job
    by_row: dict[int, list[dict[str, str]]] = {}
    for error in await errors_csv(registry, job["id"], agency):
        by_row.setdefault(int(error["row"]) - 2, []).append(error)  # row 1 is the header
    imported = {firm["national_ids"][0]["value"]: firm for firm in await firms_of(registry, agency)}
    single_agency = await make_agency(registry)
    for index, (fields, national_id) in enumerate(zip(rows, ids, strict=True)):
        body = fields | {"national_ids": [{"scheme": "RUC", "value": national_id}]}
        single = await registry.post("/v1/firms", json=body, headers=agency_headers(single_agency))
        assert single.status_code in (201, 422), single.text
        event("accepted" if single.status_code == 201 else "rejected")
        if single.status_code == 201:
            assert index not in by_row, (fields, by_row[index])
            created, firm = single.json(), imported[national_id]
            volatile = ("id", "agency_id", "created_at", "updated_at")
            assert {k: v for k, v in firm.items() if k not in volatile} == {
                k: v for k, v in created.items() if k not in volatile
            }
        else:
            assert index in by_row and national_id not in imported, fields
            assert problems(by_row[index]) == problems(single.json()["errors"]), fields
    assert job["progress"]["rows_accepted"] == len(imported)
    assert job["progress"]["rows_rejected"] == len(by_row)
