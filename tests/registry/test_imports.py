"""Bulk import of firms: jobs, per-row errors in the input's terms, idempotency, resume, bad input."""

from __future__ import annotations

import asyncio
import codecs
import io
import json
from typing import Any

import httpx
import openpyxl
import pytest

from services.common.principal import Role
from services.registry.app import create_app
from services.registry.imports import runner as runner_module
from services.registry.settings import RegistrySettings
from tests.registry.helpers import (
    HEADER,
    checked_job,
    cluster_body,
    create,
    errors_csv,
    feed,
    finished,
    firm_body,
    firm_row,
    firms_of,
    import_csv,
    make_agency,
    to_csv,
    upload,
)
from tests.support import ADMIN, agency_headers, assert_problem, principal_headers, running

# --- the happy path ------------------------------------------------------------------------------------------------


async def test_csv_import_creates_firms_reaching_the_feed_like_single_writes(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    response = await upload(registry, to_csv([firm_row(i) for i in range(5)]), agency)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/v1/imports/{response.json()['id']}"
    assert response.json()["status"] == "queued"
    job = await checked_job(registry, response.json()["id"], agency)
    assert job["status"] == "completed", job
    assert job["progress"] == {
        "rows_read": 5,
        "rows_accepted": 5,
        "rows_rejected": 0,
        "rows_skipped": 0,
        "rows_checked": 5,
        "duplicates_pending": 0,
        "duplicate_check": "done",
        "duplicates_suspected": 0,
        "duplicates_merged": 0,
    }
    firms = await firms_of(registry, agency)
    assert sorted(f["name"] for f in firms) == sorted(f"Confecciones Imbabura {i} Cía. Ltda." for i in range(5))
    first = next(f for f in firms if f["name"].startswith("Confecciones Imbabura 0 "))
    assert first["national_ids"] == [{"scheme": "RUC", "value": "1090000000001"}]
    assert first["isic_codes"] == ["1410", "1430"] and first["employees"] == 10
    assert first["certifications"][0]["scheme"] == "iso-9001"
    assert first["certifications"][0]["valid_until"] == "2099-12-31"
    # Every imported firm is on the change feed, with the document the API shows.
    created = {c["entity_id"]: c for c in await feed(registry) if c["entity"] == "firm" and c["op"] == "created"}
    assert set(created) == {f["id"] for f in firms}
    assert created[first["id"]]["data"] == first
    # ... and the filters see them (tags written).
    by_cert = (await registry.get("/v1/firms", params={"certification": "iso-9001"}, headers=ADMIN)).json()
    assert len(by_cert["items"]) == 5


async def test_imported_values_reach_the_table_and_the_feed_as_the_api_shows_them(
    registry: httpx.AsyncClient,
) -> None:
    """Every column of an imported firm, read back through the API, is what was imported, and
    its feed entry is that document: text COPY escapes (tab, newline, backslash), empty optional
    cells (NULL), JSON columns, numbers and the moment of writing."""
    agency = await make_agency(registry)
    extra = ["capabilities", "monthly_capacity", "capacity_unit", "quality_score", "postal_code"]
    extra += ["women_owned", "women_owned_attested_by", "women_owned_attested_on"]
    claim = {"women_owned": "yes", "women_owned_attested_by": "agency", "women_owned_attested_on": "2026-10-01"}
    rows = [
        firm_row(0, capabilities="knitting\tdyeing\nprinting \\ embroidery", street='Calle "9"\\B', **claim),
        firm_row(1, monthly_capacity="12000.5", capacity_unit="pieces", quality_score="0.8", postal_code="100150"),
        firm_row(2, national_id_scheme="", national_id="", latitude="", longitude="", hs_codes="", certifications=""),
    ]
    job = await import_csv(registry, rows, agency, header=[*HEADER, *extra])
    assert job["progress"]["rows_accepted"] == 3, job
    firms = {f["name"].split()[2]: f for f in await firms_of(registry, agency)}
    assert firms["0"]["capabilities"] == "knitting\tdyeing\nprinting \\ embroidery"
    assert firms["0"]["street"] == 'Calle "9"\\B'
    assert firms["0"]["women_owned"] == {"value": True, "attested_by": "agency", "attested_on": "2026-10-01"}
    assert (firms["1"]["monthly_capacity"], firms["1"]["capacity_unit"]) == (12000.5, "pieces")
    assert (firms["1"]["quality_score"], firms["1"]["postal_code"]) == (0.8, "100150")
    assert firms["1"]["capabilities"] is None and firms["1"]["women_owned"] is None
    assert firms["2"]["national_ids"] == [] and firms["2"]["latitude"] is None and firms["2"]["hs_codes"] == []
    created = {c["entity_id"]: c for c in await feed(registry) if c["entity"] == "firm"}
    for firm in firms.values():
        shown = (await registry.get(f"/v1/firms/{firm['id']}", headers=agency_headers(agency))).json()
        assert created[firm["id"]]["data"] == shown == firm
        assert shown["created_at"] == shown["updated_at"] and shown["version"] == 1
    # One batch, one moment: every firm and feed entry of it carries the same.
    assert len({f["created_at"] for f in firms.values()}) == 1
    # The feed's document lists its fields in the order a single write's does.
    single = await create(registry, "/v1/firms", firm_body(), agency)
    (published,) = [c["data"] for c in await feed(registry) if c["entity_id"] == single["id"]]
    assert [list(created[f["id"]]["data"]) for f in firms.values()] == [list(published)] * 3


async def test_xlsx_and_ndjson_imports(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Name", "Roles", "Size class", "ISIC codes", "Country", "Employees", "Latitude", "Longitude"])
    sheet.append(["Tejidos del Valle", "supplier", "micro", 1410, "EC", 7, 0.35, -78.12])  # numbers as numbers
    sheet.append([None, None, None, None, None, None, None, None])  # blank rows are skipped
    sheet.append(["Hilanderia Norte", "supplier", "medium", "1311", "EC", 120, None, None])
    out = io.BytesIO()
    workbook.save(out)
    response = await upload(
        registry, out.getvalue(), agency, media="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.status_code == 202, response.text
    job = await finished(registry, response.json()["id"], agency)
    assert job["progress"]["rows_accepted"] == 2, job
    firms = {f["name"]: f for f in await firms_of(registry, agency)}
    assert firms["Tejidos del Valle"]["isic_codes"] == ["1410"] and firms["Tejidos del Valle"]["employees"] == 7

    lines = [
        {
            "name": "Lácteos Andinos",
            "roles": ["supplier"],
            "size_class": "small",
            "isic_codes": ["1050"],
            "country": "EC",
            "certifications": [{"scheme": "haccp", "issuer": "SGS", "valid_until": "2099-01-01"}],
        },
        {"name": "Quesera Sur", "roles": "supplier", "size_class": "small", "isic_codes": "1050", "country": "EC"},
    ]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    response = await upload(registry, body, agency, media="application/x-ndjson")
    assert response.status_code == 202, response.text
    job = await finished(registry, response.json()["id"], agency)
    assert job["progress"]["rows_accepted"] == 2, job
    firms = {f["name"]: f for f in await firms_of(registry, agency)}
    assert firms["Lácteos Andinos"]["certifications"][0]["issuer"] == "SGS"


async def test_multipart_upload_with_a_column_mapping(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    header = ["Razón social", "RUC", "Tipo", "Tamaño", "CIIU", "País", "Notas"]
    content = to_csv(
        [
            {
                "Razón social": "Textiles Andinos",
                "RUC": "1790012345001",
                "Tipo": "supplier",
                "Tamaño": "small",
                "CIIU": "1410",
                "País": "EC",
                "Notas": "visit in May",
            }
        ],
        header,
        delimiter=";",
    )
    mapping = {
        "Razón social": "name",
        "RUC": "national_ids",
        "Tipo": "roles",
        "Tamaño": "size_class",
        "CIIU": "isic_codes",
        "País": "country",
        "Notas": None,
    }
    response = await registry.post(
        "/v1/imports",
        params={"mapping": json.dumps(mapping)},
        files={"file": ("firms.csv", content, "text/csv")},
        headers=agency_headers(agency),
    )
    assert response.status_code == 202, response.text
    job = await finished(registry, response.json()["id"], agency)
    assert job["filename"] == "firms.csv"
    assert job["progress"]["rows_rejected"] == 1, job  # "1790012345001" is not SCHEME:VALUE
    (error,) = await errors_csv(registry, job["id"], agency)
    assert error["column"] == "RUC" and error["code"] == "invalid_format" and error["value"] == "1790012345001"


async def test_the_template_downloads_and_imports_as_is(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    template = await registry.get("/v1/imports/template.csv", headers=agency_headers(agency))
    assert template.status_code == 200 and template.headers["content-type"].startswith("text/csv")
    assert template.content.startswith(codecs.BOM_UTF8)  # Excel reads it as UTF-8; the importer accepts it
    response = await upload(registry, template.content, agency)
    assert response.status_code == 202, response.text
    job = await finished(registry, response.json()["id"], agency)
    assert job["progress"]["rows_accepted"] == 1, (job, await errors_csv(registry, job["id"], agency))
    xlsx = await registry.get("/v1/imports/template.xlsx", headers=agency_headers(agency))
    assert xlsx.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert [c.value for c in workbook["firms"][1]][:2] == ["name", "national_id_scheme"]


# --- per-row errors ------------------------------------------------------------------------------------------------


async def test_rejected_rows_are_reported_in_the_inputs_terms_and_nothing_of_them_is_written(
    registry: httpx.AsyncClient,
) -> None:
    agency = await make_agency(registry)
    rows = [
        firm_row(0),
        firm_row(1, isic_codes="1410; 9999"),  # row 3: a bad code in the second item
        firm_row(2, certifications="no-such-scheme"),  # row 4: a rule needing the database
        firm_row(3, size_class="huge", country="XX"),  # row 5: two problems
        firm_row(4, latitude=""),  # row 6: a cross-field rule
        firm_row(5),
    ]
    job = await import_csv(registry, rows, agency)
    assert job["progress"]["rows_accepted"] == 2 and job["progress"]["rejected" if False else "rows_rejected"] == 4, job
    errors = await errors_csv(registry, job["id"], agency)
    by_row: dict[str, list[dict[str, str]]] = {}
    for e in errors:
        by_row.setdefault(e["row"], []).append(e)
    assert sorted(by_row) == ["3", "4", "5", "6"]
    (isic,) = by_row["3"]
    assert (isic["column"], isic["field"], isic["code"], isic["value"]) == (
        "isic_codes",
        "isic_codes.1",
        "value_error",
        "1410; 9999",
    )
    assert "'9999' is not an ISIC Rev.4 code" in isic["message"]
    (scheme,) = by_row["4"]
    assert (scheme["column"], scheme["field"], scheme["code"]) == (
        "certifications",
        "certifications.0.scheme",
        "unknown_scheme",
    )
    assert {(e["column"], e["code"]) for e in by_row["5"]} == {("size_class", "enum"), ("country", "value_error")}
    assert "latitude and longitude go together" in by_row["6"][0]["message"]
    # The same body through the single-write API gets the same codes.
    single = await registry.post(
        "/v1/firms", json=firm_body(isic_codes=["1410", "9999"]), headers=agency_headers(agency)
    )
    assert [(e["field"], e["code"]) for e in single.json()["errors"]] == [("isic_codes.1", "value_error")]
    # No half-imported row: the rejected rows left no firm, no tag and no feed entry.
    names = {f["name"] for f in await firms_of(registry, agency)}
    assert names == {"Confecciones Imbabura 0 Cía. Ltda.", "Confecciones Imbabura 5 Cía. Ltda."}
    firm_changes = [c for c in await feed(registry) if c["entity"] == "firm"]
    assert len(firm_changes) == 2


async def test_a_malformed_csv_row_is_a_row_error(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    content = to_csv([firm_row(0)]) + b"only,three,cells\n" + to_csv([firm_row(1)]).split(b"\n", 1)[1]
    response = await upload(registry, content, agency)
    job = await finished(registry, response.json()["id"], agency)
    assert job["progress"]["rows_accepted"] == 2 and job["progress"]["rows_rejected"] == 1
    (error,) = await errors_csv(registry, job["id"], agency)
    assert error["row"] == "3" and error["code"] == "malformed_row"


# --- idempotency ---------------------------------------------------------------------------------------------------


async def test_uploading_the_same_file_again_creates_nothing(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    rows = [firm_row(i) for i in range(4)] + [firm_row(9, national_id_scheme="", national_id="")]  # one without id
    first = await import_csv(registry, rows, agency)
    assert first["progress"]["rows_accepted"] == 5
    again = await import_csv(registry, rows, agency)
    assert again["progress"]["rows_accepted"] == 0 and again["progress"]["rows_skipped"] == 5, again
    # A re-sorted export of the same firms is recognised too (national id, else the row's content).
    resorted = await import_csv(registry, list(reversed(rows)), agency)
    assert resorted["progress"]["rows_skipped"] == 5
    assert len(await firms_of(registry, agency)) == 5
    # The same firm listed twice in one file is imported once.
    twice = await import_csv(registry, [firm_row(20), firm_row(20, name="Confecciones Imbabura XX")], agency)
    assert twice["progress"]["rows_accepted"] == 1 and twice["progress"]["rows_skipped"] == 1


async def test_idempotency_key_replays_the_job(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    content = to_csv([firm_row(0)])
    headers = {"Idempotency-Key": "upload-2026-01"}
    first = await upload(registry, content, agency, headers=headers)
    assert first.status_code == 202
    second = await upload(registry, content, agency, headers=headers)
    assert second.status_code == 202 and second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    other = await upload(registry, to_csv([firm_row(1)]), agency, headers=headers)
    assert_problem(other, 422, "idempotency-key-reused")
    await finished(registry, first.json()["id"], agency)
    assert len(await firms_of(registry, agency)) == 1
    listed = (await registry.get("/v1/imports", headers=agency_headers(agency))).json()
    assert [j["id"] for j in listed["items"]] == [first.json()["id"]]


# --- crash and resume ----------------------------------------------------------------------------------------------


async def test_a_crash_mid_import_rolls_the_batch_back_and_a_restart_resumes(
    registry_settings: RegistrySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = registry_settings.model_copy(update={"import_batch_rows": 3})
    real_write_batch = runner_module.write_batch
    batches = 0

    async def crash_in_third_batch(*args: Any, **kwargs: Any) -> Any:
        nonlocal batches
        batches += 1
        mine = batches  # the next batch may start writing while this one does (on PostgreSQL)
        outcome = await real_write_batch(*args, **kwargs)  # firms, tags, outbox rows written...
        if mine == 3:
            raise asyncio.CancelledError  # ...and the process dies before the commit
        return outcome

    monkeypatch.setattr(runner_module, "write_batch", crash_in_third_batch)
    rows = [firm_row(i) for i in range(10)]
    async with running(create_app(settings)) as registry:
        agency = await make_agency(registry)
        response = await upload(registry, to_csv(rows), agency)
        job_id = response.json()["id"]
        for _ in range(400):
            job = (await registry.get(f"/v1/imports/{job_id}", headers=agency_headers(agency))).json()
            if batches >= 3 and not [t for t in asyncio.all_tasks() if t.get_name() == f"import-{job_id}"]:
                break
            await asyncio.sleep(0.05)
        job = (await registry.get(f"/v1/imports/{job_id}", headers=agency_headers(agency))).json()
        assert job["status"] == "running" and job["progress"]["rows_read"] == 6, job  # two batches committed
        assert len(await firms_of(registry, agency)) == 6  # nothing of the third batch
    monkeypatch.setattr(runner_module, "write_batch", real_write_batch)
    async with running(create_app(settings)) as registry:  # the restart resumes the job
        job = await finished(registry, job_id, agency)
        assert job["status"] == "completed" and job["progress"]["rows_accepted"] == 10, job
        firms = await firms_of(registry, agency)
        assert sorted(f["national_ids"][0]["value"] for f in firms) == sorted(f"10900{i:05d}001" for i in range(10))
        created = [c for c in await feed(registry) if c["entity"] == "firm" and c["op"] == "created"]
        assert sorted(c["entity_id"] for c in created) == sorted(f["id"] for f in firms)


# --- bad input -----------------------------------------------------------------------------------------------------


async def test_unknown_and_missing_columns_are_a_problem_before_any_job(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    rows = [firm_row(0) | {"colour": "red"}]
    response = await upload(registry, to_csv(rows, [*HEADER, "colour"]), agency)
    problem = assert_problem(response, 422, "validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("colour", "unknown_column")]
    missing = await upload(registry, to_csv(rows, [h for h in HEADER if h != "country"]), agency)
    problem = assert_problem(missing, 422, "validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("country", "missing_column")]
    assert (await registry.get("/v1/imports", headers=agency_headers(agency))).json()["items"] == []


@pytest.mark.parametrize(
    ("content", "media", "code"),
    [
        (b"", "text/csv", "empty_file"),
        (b"\n\n", "text/csv", "empty_file"),
        (",".join(HEADER).encode() + b"\n", "text/csv", "empty_file"),
        (b"", "application/x-ndjson", "empty_file"),
        (b"not a zip", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "invalid_xlsx"),
        (
            "name,roles,size_class,isic_codes,country\nCompañía,supplier,small,1410,EC\n".encode("latin-1"),
            "text/csv",
            "encoding",
        ),
    ],
    ids=["empty", "blank-lines", "header-only", "empty-ndjson", "not-xlsx", "latin-1-as-utf-8"],
)
async def test_unusable_files_are_a_clear_problem(
    registry: httpx.AsyncClient, content: bytes, media: str, code: str
) -> None:
    agency = await make_agency(registry)
    response = await upload(registry, content, agency, media=media)
    problem = assert_problem(response, 422, "validation-error")
    assert [e["code"] for e in problem["errors"]] == [code], problem


async def test_a_named_encoding_is_decoded(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    content = "name,roles,size_class,isic_codes,country\nCompañía Textil,supplier,small,1410,EC\n".encode("cp1252")
    response = await upload(registry, content, agency, params={"encoding": "cp1252"})
    assert response.status_code == 202, response.text
    await finished(registry, response.json()["id"], agency)
    assert [f["name"] for f in await firms_of(registry, agency)] == ["Compañía Textil"]


async def test_files_over_the_import_limit_are_413_and_only_imports_get_the_larger_limit(
    registry_settings: RegistrySettings,
) -> None:
    settings = registry_settings.model_copy(update={"import_max_bytes": 4000, "max_body_bytes": 1000})
    async with running(create_app(settings)) as registry:
        agency = await make_agency(registry)
        fits = to_csv([firm_row(i) for i in range(6)])
        assert 1000 < len(fits) < 4000
        assert (await upload(registry, fits, agency)).status_code == 202
        too_big = to_csv([firm_row(i) for i in range(30)])
        assert_problem(await upload(registry, too_big, agency), 413, "payload-too-large")

        async def chunks() -> Any:  # no Content-Length: the limit holds while streaming
            for start in range(0, len(too_big), 500):
                yield too_big[start : start + 500]

        streamed = await registry.post(
            "/v1/imports", content=chunks(), headers=agency_headers(agency) | {"Content-Type": "text/csv"}
        )
        assert_problem(streamed, 413, "payload-too-large")
        other = await registry.post("/v1/firms", content=b"x" * 2000, headers=agency_headers(agency))
        assert_problem(other, 413, "payload-too-large")
        assert not list((settings.import_directory).glob("*.csv.part"))


async def test_tenancy_of_imports(registry: httpx.AsyncClient) -> None:
    a, b = await make_agency(registry, "A"), await make_agency(registry, "B")
    content = to_csv([firm_row(0)])
    forbidden = await registry.post(
        "/v1/imports",
        content=content,
        params={"agency_id": b},
        headers=agency_headers(a) | {"Content-Type": "text/csv"},
    )
    assert_problem(forbidden, 403, "forbidden")
    viewer = await registry.post(
        "/v1/imports", content=content, headers=principal_headers(Role.viewer) | {"Content-Type": "text/csv"}
    )
    assert_problem(viewer, 403, "forbidden")
    admin_without_agency = await registry.post(
        "/v1/imports", content=content, headers=ADMIN | {"Content-Type": "text/csv"}
    )
    assert_problem(admin_without_agency, 422, "validation-error")
    by_admin = await registry.post(
        "/v1/imports", content=content, params={"agency_id": b}, headers=ADMIN | {"Content-Type": "text/csv"}
    )
    assert by_admin.status_code == 202, by_admin.text
    job = await finished(registry, by_admin.json()["id"], b)
    assert [f["agency_id"] for f in await firms_of(registry, b)] == [b]
    hidden = await registry.get(f"/v1/imports/{job['id']}", headers=agency_headers(a))
    assert_problem(hidden, 404, "not-found")


async def test_references_are_checked_per_row(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
    header = [*HEADER, "cluster_ids"]
    rows = [firm_row(0, cluster_ids=cluster["id"]), firm_row(1, cluster_ids=f"{cluster['id']}; clu_missing")]
    response = await upload(registry, to_csv(rows, header), agency)
    job = await finished(registry, response.json()["id"], agency)
    assert job["progress"]["rows_accepted"] == 1 and job["progress"]["rows_rejected"] == 1
    (error,) = await errors_csv(registry, job["id"], agency)
    assert (error["row"], error["column"], error["field"], error["code"]) == (
        "3",
        "cluster_ids",
        "cluster_ids.1",
        "unknown_reference",
    )
    by_cluster = (await registry.get("/v1/firms", params={"cluster_id": cluster["id"]}, headers=ADMIN)).json()
    assert len(by_cluster["items"]) == 1


async def test_rows_naming_another_agencys_cluster_are_rejected_as_unknown(registry: httpx.AsyncClient) -> None:
    """A row may name only the importing agency's clusters; another's is reported like a missing one."""
    mine, theirs = await make_agency(registry, "Mine"), await make_agency(registry, "Theirs")
    own = await create(registry, "/v1/clusters", cluster_body(), mine)
    foreign = await create(registry, "/v1/clusters", cluster_body(), theirs)
    unknown = "clu_" + "0" * (len(foreign["id"]) - 4)
    header = [*HEADER, "cluster_ids"]
    rows = [
        firm_row(0, cluster_ids=own["id"]),
        firm_row(1, cluster_ids=foreign["id"]),
        firm_row(2, cluster_ids=unknown),
    ]
    response = await upload(registry, to_csv(rows, header), mine)
    job = await finished(registry, response.json()["id"], mine)
    assert job["progress"]["rows_accepted"] == 1 and job["progress"]["rows_rejected"] == 2
    to_foreign, to_unknown = await errors_csv(registry, job["id"], mine)
    assert (to_foreign["row"], to_foreign["field"], to_foreign["code"]) == ("3", "cluster_ids.0", "unknown_reference")
    assert {k: v.replace(unknown, foreign["id"]) for k, v in to_unknown.items() if k != "row"} == {
        k: v for k, v in to_foreign.items() if k != "row"
    }
    by_cluster = (await registry.get("/v1/firms", params={"cluster_id": foreign["id"]}, headers=ADMIN)).json()
    assert by_cluster["items"] == []


async def test_worker_processes_import_in_file_order(registry_settings: RegistrySettings) -> None:
    settings = registry_settings.model_copy(
        update={"import_batch_rows": 7, "import_workers": 2, "import_parallel_min_bytes": 0}
    )
    rows = [firm_row(i) for i in range(40)]
    rows[17] = firm_row(17, isic_codes="9999")
    async with running(create_app(settings)) as registry:
        agency = await make_agency(registry)
        response = await upload(registry, to_csv(rows), agency)
        job = await finished(registry, response.json()["id"], agency)
        assert job["status"] == "completed", job
        assert job["progress"]["rows_accepted"] == 39 and job["progress"]["rows_rejected"] == 1
        (error,) = await errors_csv(registry, job["id"], agency)
        assert error["row"] == "19" and error["column"] == "isic_codes"
        created = [c for c in await feed(registry) if c["entity"] == "firm"]
        # Batches come back in file order, so firms reach the feed in the file's order.
        assert [c["data"]["national_ids"][0]["value"] for c in created] == [
            f"10900{i:05d}001" for i in range(40) if i != 17
        ]


async def test_batches_written_at_once_skip_and_report_as_one_at_a_time(registry_settings: RegistrySettings) -> None:
    """On PostgreSQL a batch writes its rows while the batches before it commit theirs
    (``runner._OrderedBatches``): a national id the batch just before created is still a skip,
    one whose row the database rules refused there is created by the next, and errors.csv and
    the feed keep the file's order."""
    settings = registry_settings.model_copy(update={"import_batch_rows": 3})
    async with running(create_app(settings)) as registry:
        agency = await make_agency(registry)
        cluster = await create(registry, "/v1/clusters", cluster_body(), agency)
        unknown = "clu_" + "0" * (len(cluster["id"]) - 4)
        rows = [firm_row(i, cluster_ids=cluster["id"]) for i in range(24)]
        rows[1]["cluster_ids"] = unknown  # refused by the database rules: its id is new to the next batches
        rows[3] = firm_row(0, cluster_ids=cluster["id"])  # created by the batch before: a skip
        rows[4] = firm_row(1, cluster_ids=cluster["id"])  # created here
        rows[5] = firm_row(5, isic_codes="9999")
        rows[6] = firm_row(1, locality="Elsewhere")  # created by the batch before: a skip
        rows[7] = firm_row(2)  # two batches before
        rows[13]["cluster_ids"] = unknown
        rows[15] = firm_row(13)  # refused in the batch before: created here
        rows[16] = firm_row(12)  # created by the batch before: a skip
        response = await upload(registry, to_csv(rows, [*HEADER, "cluster_ids"]), agency)
        job = await finished(registry, response.json()["id"], agency)
        assert job["status"] == "completed", job
        progress = job["progress"]
        assert (progress["rows_accepted"], progress["rows_rejected"], progress["rows_skipped"]) == (17, 3, 4)
        assert [(e["row"], e["code"]) for e in await errors_csv(registry, job["id"], agency)] == [
            ("3", "unknown_reference"),
            ("7", "value_error"),
            ("15", "unknown_reference"),
        ]
        created = [c["data"]["national_ids"][0]["value"] for c in await feed(registry) if c["entity"] == "firm"]
        expected = [0, 2, 1, 8, 9, 10, 11, 12, 14, 13, *range(17, 24)]
        assert created == [f"10900{i:05d}001" for i in expected]
        assert len(await firms_of(registry, agency)) == 17


async def test_jobs_adding_the_same_words_at_once_both_finish(registry_settings: RegistrySettings) -> None:
    """Two agencies import files that bring the same new words for typo search, in opposite
    orders, in small batches, at once: both finish with every row. A batch waiting for the
    batch before it holds no lock the other job's batches can wait on (the words go in once the
    batches before have committed, ``Written.publish``); else the two jobs could each wait on
    the other, one through a lock and the other through its batches' order, a deadlock
    PostgreSQL does not see. The interleaving that closes such a cycle is not forced here: the
    test shows the jobs share words without waiting for ever or failing on them."""
    settings = registry_settings.model_copy(update={"import_batch_rows": 5})
    rows = [firm_row(i, name=f"Tejidos Wordo{i} Yarnix{i}", street=f"Calle Strado{i}") for i in range(300)]
    async with running(create_app(settings)) as registry:
        agencies = [await make_agency(registry), await make_agency(registry)]
        responses = [
            await upload(registry, to_csv(ordered), agency)
            for agency, ordered in zip(agencies, (rows, rows[::-1]), strict=True)
        ]
        jobs = await asyncio.gather(
            *(
                finished(registry, response.json()["id"], agency, timeout=120)
                for agency, response in zip(agencies, responses, strict=True)
            )
        )
        assert [job["status"] for job in jobs] == ["completed", "completed"], jobs
        assert [job["progress"]["rows_accepted"] for job in jobs] == [300, 300]
        for agency in agencies:
            assert len(await firms_of(registry, agency)) == 300
