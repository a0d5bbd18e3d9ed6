"""Bulk import of firm results (``POST /v1/imports?kind=firm_results``): the firms' importer, other rows.

What matters: a row is refused exactly as ``POST /v1/firm-results`` would refuse its body,
nothing of a refused row is written, and imported figures reach the feed like single writes.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import openpyxl
import pytest

from services.registry.app import create_app
from services.registry.imports import runner as runner_module
from services.registry.settings import RegistrySettings
from tests.registry.helpers import create, errors_csv, feed, finished, firm_body, firm_result_body, make_agency, to_csv
from tests.support import ADMIN, agency_headers, assert_problem, running

PATH = "/v1/firm-results"
KIND = {"kind": "firm_results"}
HEADER = ["firm_id", "period", "currency", "sales", "exports", "investments", "employees", "women_employees"]


def result_row(firm_id: str, period: str = "2025", **overrides: Any) -> dict[str, Any]:
    """A CSV row of figures: text cells, as a spreadsheet exports them."""
    row = {k: v for k, v in firm_result_body(firm_id=firm_id, period=period).items() if k in HEADER}
    return {k: str(v) for k, v in row.items()} | overrides


def as_json(row: dict[str, str]) -> dict[str, Any]:
    """A row's body as a client sends it to the single-write API: numbers as numbers, no empty cells."""
    money, counts = ("sales", "exports", "investments"), ("employees", "women_employees", "new_products")
    return {k: float(v) if k in money else int(v) if k in counts else v for k, v in row.items() if v}


async def import_results(
    registry: httpx.AsyncClient, rows: list[dict[str, Any]], agency: str, **params: str
) -> dict[str, Any]:
    response = await registry.post(
        "/v1/imports",
        content=to_csv(rows, HEADER),
        params=KIND | params,
        headers=agency_headers(agency) | {"Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "firm_results"
    return await finished(registry, response.json()["id"], agency)


async def results_of(registry: httpx.AsyncClient, agency: str) -> list[dict[str, Any]]:
    page = await registry.get(PATH, params={"agency_id": agency, "limit": "200"}, headers=ADMIN)
    return list(page.json()["items"])


async def test_a_good_file_creates_results_reaching_the_feed_like_single_writes(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    firms = [await create(registry, "/v1/firms", firm_body(name=f"Firma {i}"), agency) for i in range(2)]
    rows = [result_row(firms[0]["id"], "2024"), result_row(firms[0]["id"], "2025-Q1"), result_row(firms[1]["id"])]
    job = await import_results(registry, rows, agency)
    assert job["status"] == "completed" and job["duplicates_url"] is None, job
    assert job["progress"] | {"rows_read": 0} == {
        "rows_read": 0,
        "rows_accepted": 3,
        "rows_rejected": 0,
        "rows_skipped": 0,
        "rows_checked": 0,  # firm results are no firms: no duplicate check
        "duplicates_pending": 0,
        "duplicate_check": "none",
        "duplicates_suspected": 0,
        "duplicates_merged": 0,
    }
    results = await results_of(registry, agency)
    assert sorted((r["firm_id"], r["period"]) for r in results) == sorted((r["firm_id"], r["period"]) for r in rows)
    first = next(r for r in results if r["period"] == "2024")
    figures = (first["sales"], first["employees"], first["women_employees"], first["currency"])
    assert figures == (250000.0, 40, 22, "USD")
    assert first["entered_by"] == f"key-{agency}", "who imported the figures is recorded, as for single writes"
    created = {c["entity_id"]: c for c in await feed(registry) if c["entity"] == "firm_result"}
    assert set(created) == {r["id"] for r in results}
    assert created[first["id"]]["data"] == first, "the feed carries the document the API shows"

    # The same file again creates nothing: each row is recognised by its content.
    again = await import_results(registry, rows, agency)
    assert (again["progress"]["rows_accepted"], again["progress"]["rows_skipped"]) == (0, 3), again
    assert len(await results_of(registry, agency)) == 3


async def test_an_xlsx_file_and_the_template(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    template = await registry.get("/v1/imports/template.xlsx", params=KIND, headers=agency_headers(agency))
    assert template.status_code == 200
    assert 'filename="firm-results-template.xlsx"' in template.headers["content-disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(template.content))
    sheet = workbook["firm-results"]
    assert [c.value for c in sheet[1]][:3] == ["firm_id", "period", "currency"]
    sheet.delete_rows(2)
    sheet.append([firm["id"], 2025, "EUR", 1200.5, None, None, 7, 3, 1])  # numbers as numbers
    out = io.BytesIO()
    workbook.save(out)
    response = await registry.post(
        "/v1/imports",
        content=out.getvalue(),
        params=KIND | {"format": "xlsx"},
        headers=agency_headers(agency) | {"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 202, response.text
    job = await finished(registry, response.json()["id"], agency)
    assert job["progress"]["rows_accepted"] == 1, (job, await errors_csv(registry, job["id"], agency))
    (result,) = await results_of(registry, agency)
    assert (result["period"], result["sales"], result["employees"], result["new_products"]) == ("2025", 1200.5, 7, 1)
    csv_template = await registry.get("/v1/imports/template.csv", params=KIND, headers=agency_headers(agency))
    assert csv_template.content.decode("utf-8-sig").startswith("firm_id,period,currency,sales,")


async def test_a_mixed_file_reports_the_errors_single_writes_give(registry: httpx.AsyncClient) -> None:
    agency, other = await make_agency(registry), await make_agency(registry, "Other")
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    foreign = await create(registry, "/v1/firms", firm_body(name="Ajena"), other)
    await create(registry, PATH, firm_result_body(firm_id=firm["id"], period="2023"), agency)
    ok = result_row(firm["id"], "2024")
    bad = [
        result_row(firm["id"], "2025-Q5"),  # not a period
        result_row(firm["id"], "2025", currency="XYZ"),  # not a currency
        result_row(firm["id"], "2025", sales="-1"),  # out of bounds
        result_row(firm["id"], "2025", women_employees="41"),  # a rule across fields
        result_row(firm["id"], "2025", currency=""),  # money without currency
        result_row(firm["id"], "2023", sales="1"),  # the firm has 2023 already
        result_row(foreign["id"], "2025"),  # another agency's firm: as unknown as a missing one
        result_row("frm_0000", "2025"),
        {"firm_id": firm["id"], "period": "2022"},  # no figure at all
    ]
    rows = [ok, *bad, result_row(firm["id"], "2025-Q2")]
    job = await import_results(registry, rows, agency)
    assert (job["progress"]["rows_accepted"], job["progress"]["rows_rejected"]) == (2, len(bad)), job
    errors = await errors_csv(registry, job["id"], agency)
    assert sorted({int(e["row"]) for e in errors}) == list(range(3, 3 + len(bad))), errors
    for number, row in enumerate(bad, start=3):
        single = await registry.post(PATH, json=as_json(row), headers=agency_headers(agency))
        problem = assert_problem(single, 422)
        expected = [(e["field"], e["code"], e["message"]) for e in problem["errors"]]
        got = [(e["field"], e["code"], e["message"]) for e in errors if e["row"] == str(number)]
        assert got == expected, (number, row)
        for e in errors:
            if e["row"] == str(number) and e["field"]:  # in the input's terms (database rules give no value)
                assert e["column"] == e["field"] and e["value"] in ("", row.get(e["column"])), e
    codes = {e["row"]: e["code"] for e in errors}
    assert (codes["8"], codes["9"], codes["10"]) == ("duplicate", "unknown_reference", "unknown_reference")
    # Nothing of a refused row is written: two results besides the one entered before.
    assert sorted(r["period"] for r in await results_of(registry, agency)) == ["2023", "2024", "2025-Q2"]
    assert await results_of(registry, other) == []


async def test_a_file_of_only_bad_rows_writes_nothing(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    firm = await create(registry, "/v1/firms", firm_body(), agency)
    before = len(await feed(registry))
    rows = [result_row(firm["id"], "2025", sales="lots"), result_row("frm_0000")]
    job = await import_results(registry, rows, agency)
    assert job["status"] == "completed" and job["progress"]["rows_rejected"] == 2, job
    assert job["progress"]["rows_accepted"] == 0
    assert await results_of(registry, agency) == []
    assert len(await feed(registry)) == before, "no change reached the feed"


async def test_columns_are_checked_against_the_kinds_template(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    response = await registry.post(
        "/v1/imports",
        content=b"firm_id,name\nfrm_1,x\n",
        params=KIND,
        headers=agency_headers(agency) | {"Content-Type": "text/csv"},
    )
    problem = assert_problem(response, 422, "validation-error", field="name")
    assert {(e["field"], e["code"]) for e in problem["errors"]} == {
        ("name", "unknown_column"),
        ("period", "missing_column"),
    }
    unknown_kind = await registry.post(
        "/v1/imports",
        content=b"firm_id\n",
        params={"kind": "clusters"},
        headers=agency_headers(agency) | {"Content-Type": "text/csv"},
    )
    assert_problem(unknown_kind, 422, field="kind")


async def test_a_crash_mid_import_resumes_after_the_last_batch(
    registry_settings: RegistrySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = registry_settings.model_copy(update={"import_batch_rows": 2})
    real_write_batch = runner_module.write_batch
    batches = 0

    async def crash_in_second_batch(*args: Any, **kwargs: Any) -> Any:
        nonlocal batches
        batches += 1
        outcome = await real_write_batch(*args, **kwargs)
        if batches == 2:
            raise asyncio.CancelledError  # the process dies before the batch commits
        return outcome

    monkeypatch.setattr(runner_module, "write_batch", crash_in_second_batch)
    periods = ["2021", "2022", "2023", "2024", "2025"]
    async with running(create_app(settings)) as registry:
        agency = await make_agency(registry)
        firm = await create(registry, "/v1/firms", firm_body(), agency)
        response = await registry.post(
            "/v1/imports",
            content=to_csv([result_row(firm["id"], p) for p in periods], HEADER),
            params=KIND,
            headers=agency_headers(agency) | {"Content-Type": "text/csv"},
        )
        job_id = response.json()["id"]
        for _ in range(400):
            if batches >= 2 and not [t for t in asyncio.all_tasks() if t.get_name() == f"import-{job_id}"]:
                break
            await asyncio.sleep(0.05)
        job = (await registry.get(f"/v1/imports/{job_id}", headers=agency_headers(agency))).json()
        assert job["status"] == "running" and job["progress"]["rows_read"] == 2, job
        assert len(await results_of(registry, agency)) == 2
    monkeypatch.setattr(runner_module, "write_batch", real_write_batch)
    async with running(create_app(settings)) as registry:
        job = await finished(registry, job_id, agency)
        assert job["status"] == "completed" and job["progress"]["rows_accepted"] == 5, job
        assert sorted(r["period"] for r in await results_of(registry, agency)) == periods
        created = [c for c in await feed(registry) if c["entity"] == "firm_result"]
        assert len(created) == 5
