"""Imported rows are validated exactly like ``POST /v1/firms``: a property test over generated rows.

Each generated row, good or bad, goes both ways: as a cell of a CSV through
``POST /v1/imports`` (its problems read back from ``errors.csv``) and as the
equivalent JSON body through ``POST /v1/firms``. Both must accept it or both
reject it, with the same problems (field, code and message).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.common.bulk import pick
from services.registry.imports.files import COLUMNS, Mapping_, Row
from services.registry.imports.firm_columns import decide_firms
from services.registry.imports.kinds import KINDS
from services.registry.imports.prepare import prepare
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


# --- the worker's two paths: column-wise (firm_columns) and FirmCreate row by row ----------

_WORKER_HEADER = [*COLUMNS]


def _cell(draw: st.DrawFn, good: list[str], odd: list[str], is_odd: bool) -> str:
    """A cell: one of the odd forms (padding, case, bounds, control characters) where the
    column-wise check must agree with FirmCreate or step aside; else good, now and then empty."""
    if is_odd:
        return draw(st.sampled_from(odd))
    if draw(st.integers(0, 99)) == 0:
        return draw(st.sampled_from(["", "  ", "\u3000"]))
    return draw(st.sampled_from(good))


_PADDED = [" EC ", "\xa0ec", "\x1cEC", "E C", "EC\x85"]
_NUMBERS = ["0", "7", "007", "45", "2147483647", "2147483648", "-1", " 7", "7.0", "1e3", "1_000", "+7", "٣"]
_DECIMALS = ["0", "0.5", "1", "1.0", "-0", "0.3317", "-78.2139", "90", "-90.0000001", "1e-1", ".5", "5.", "nan"]
_DAYS = ["2024-01-01", "2099-12-31", "1899-12-31", "2024-02-30", "2024-1-01", " 2024-01-01", "٢٠٢٤-01-01"]


_DAY, _LATER = _DAYS[:2]
# Each template column's good cells and odd ones (subdivision: by country, below).
_WORKER_VALUES: dict[str, tuple[list[str], list[str]]] = {
    "name": (["Sri Balaji Textiles", "Tejidos Ñandú", "C:\\N\\t \\"], ["x" * 201, "a\x00b", " pad ", "\x85"]),
    "national_id_scheme": (["RUC", "GSTIN"], ["", "R\x01", "x" * 41]),
    "national_id": (["1790012345001", "0990012345001"], ["", "x" * 61, "a\tb"]),
    "national_ids": (["UDYAM:UP-01-0000001", "RUC:179; GSTIN:24AB"], ["nocolon", ":x", "A:", "A:b;" * 6]),
    "roles": (
        ["supplier", "supplier; lead_firm", "lead_firm;supplier;"],
        ["buyer", " supplier", "supplier; supplier; lead_firm"],
    ),
    "size_class": (["micro", "small", "large"], ["Small", " small", "huge"]),
    "employees": (["12", "400"], _NUMBERS),
    "women_employees": (["0", "5", "12"], _NUMBERS),
    "isic_codes": (["1410", "1410; 1430", "C; 14", "1410; 1410"], ["9999", "c", "14100", " 1410 ;", ";"]),
    "hs_codes": (["6109", "6109; 611020"], ["61.09", "99", "123", "6109.10"]),
    "certifications": (
        ["iso-9001", f"iso-9001:{_LATER}", f"oeko-tex-100:{_DAY}:{_LATER}", "gots:2030-01-01; iso-9001:2020-01-01:"],
        ["a:b:c:d", "x" * 41, f"iso:{_LATER}:{_DAY}", "iso-9001\\x", *(f"iso:{day}" for day in _DAYS)],
    ),
    "monthly_capacity": (["12000", "0.5"], _DECIMALS),
    "capacity_unit": (["pieces", "kg"], ["x" * 31, "p\x7f"]),
    "quality_score": (["0.8", "1"], _DECIMALS),
    "on_time_delivery_rate": (["0.95", "0"], _DECIMALS),
    "capabilities": (["knitting\tdyeing", "line one\nline two", "tejidos de punto"], ["a\x0bb", "x" * 5001]),
    "street": (["Av. Amazonas 123"], ["x" * 301]),
    "locality": (["Atuntaqui", "Ludhiana", "Cañar"], ["x" * 201, "\u2028Ibarra"]),
    "postal_code": (["100150", "141001"], ["x" * 21]),
    "country": (["EC", "IN", "ec"], [*_PADDED, "XX", "ECU"]),
    "subdivision": ([], ["EC-ZZ", " EC-I", "IN-PB\x1c", "IN-PB"]),
    "latitude": (["0.3317", "-1.2"], _DECIMALS),
    "longitude": (["-78.2139", "75.85"], [*_DECIMALS, "180.5"]),
    "cluster_ids": (["clu_01JABC", "clu_1; clu_2; clu_1"], ["bad id", "x" * 41]),
    **{
        column: values
        for claim in ("women_owned", "women_led", "youth_led")
        for column, values in (
            (claim, (["yes", "no", "TRUE", "0"], ["maybe", ""])),
            (f"{claim}_attested_by", (["agency", "self"], ["Agency", " broker", ""])),
            (f"{claim}_attested_on", ([_DAY], ["", *_DAYS])),
        )
    },
}
assert set(_WORKER_VALUES) == set(COLUMNS)


@st.composite
def worker_cells(draw: st.DrawFn) -> dict[str, str]:
    """One CSV row of every template column, as text: good values, and now and then one or two
    odd cells, so that each odd form is met beside an otherwise valid row."""
    odd_columns = {draw(st.sampled_from(_WORKER_HEADER)) for _ in range(draw(st.integers(0, 2)))}
    claims = {claim for claim in ("women_owned", "women_led", "youth_led") if draw(st.booleans())}
    cells: dict[str, str] = {}
    for column, (good, odd) in _WORKER_VALUES.items():
        if column == "subdivision":
            good = ["IN-PB"] if cells["country"] == "IN" else ["EC-I", "ec-p"]
        if (
            column.split("_attested")[0] in ("women_owned", "women_led", "youth_led")
            and column.split("_attested")[0] not in claims
        ):
            cells[column] = ""  # a claim is its three cells, or none
        else:
            cells[column] = _cell(draw, good, odd, column in odd_columns)
    return cells


def _worker_outcomes(rows: list[Row], staged: bool, column_wise: bool) -> list[Any]:
    """What ``prepare`` makes of ``rows``, with or without the column-wise path; the parts that
    differ by nature (a new firm id, the order of a set's words or of tags) put aside."""
    kind = KINDS["firms"]
    mapping = Mapping_({name: name for name in _WORKER_HEADER}, kind.columns)
    chosen = kind if column_wise else dataclasses.replace(kind, decide=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(KINDS, "firms", chosen)
        batch = prepare(iter(rows), len(rows), mapping, "agn_01JAGENCY", "firms", staged=staged)
    assert len(batch) == len(rows)
    assert batch.rejected + len(batch.numbers) == len(rows)
    outcomes: list[Any] = []
    for row in rows:  # the batch's columns read back a row at a time
        errors = [e for e in batch.errors if e["row_number"] == row.number]
        if row.number not in batch.numbers:
            outcomes.append((row.number, errors, "", None, set(), "", "", []))
            continue
        index = batch.numbers.index(row.number)
        line = change = tag_lines = ""
        if staged:  # the new id put aside: lines of firms, the outbox and record_tags
            firm_id = batch.ids[index]
            line = pick(batch.lines, batch.line_ends, [index]).decode().replace(firm_id, "<id>")
            change = pick(batch.change_lines, batch.change_ends, [index]).decode().replace(firm_id, "<id>")
            tag_lines = pick(batch.tag_lines, batch.tag_ends, [index]).decode()
            assert line.startswith("<id>\t") and change.startswith("firm\t<id>\t")
            assert all(tag.split("\t", 1)[0] == firm_id for tag in tag_lines.splitlines())
        tags = sorted(tag.split("\t", 1)[1] for tag in tag_lines.splitlines())
        words = set(batch.words[index].split())
        outcomes.append((row.number, errors, batch.natural_keys[index], batch.drafts[index], words, line, change, tags))
    return outcomes


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(worker_cells(), min_size=1, max_size=8), staged=st.booleans())
def test_column_wise_validation_makes_what_firm_create_makes(cells: list[dict[str, str]], staged: bool) -> None:
    """Each row the column-wise path decides gets exactly what FirmCreate's path gives it (the
    document, natural key, tags, COPY lines); every other row goes through FirmCreate itself."""
    rows = [Row(number, row) for number, row in enumerate(cells, start=2)]
    decided = decide_firms(rows, Mapping_({name: name for name in _WORKER_HEADER}), "agn_01JAGENCY", staged)
    fast = _worker_outcomes(rows, staged, column_wise=True)
    slow = _worker_outcomes(rows, staged, column_wise=False)
    assert fast == slow
    for outcome, done in zip(slow, decided, strict=True):
        if done is not None:
            assert not outcome[1], "a row the column-wise path accepts, FirmCreate accepts too"
    event(f"decided by columns: {sum(d is not None for d in decided)} of {len(rows)}")
    event("some rejected" if any(outcome[1] for outcome in slow) else "none rejected")


def test_plain_rows_are_decided_column_wise() -> None:
    """A register's ordinary rows never reach FirmCreate: the fast path is taken, not skipped."""
    good = {
        "name": "Textiles Andinos Cía. Ltda.",
        "national_id_scheme": "RUC",
        "national_id": "1790012345001",
        "roles": "supplier; lead_firm",
        "size_class": "small",
        "employees": "45",
        "women_employees": "21",
        "women_owned": "yes",
        "women_owned_attested_by": "agency",
        "women_owned_attested_on": "2026-10-01",
        "isic_codes": "1410; 1430",
        "hs_codes": "6109; 611020",
        "certifications": "iso-9001:2024-01-01:2027-06-30; oeko-tex-100",
        "monthly_capacity": "12000",
        "capacity_unit": "pieces",
        "quality_score": "0.8",
        "country": "EC",
        "subdivision": "EC-I",
        "latitude": "0.3317",
        "longitude": "-78.2139",
        "cluster_ids": "clu_01JABC",
    }
    rows = [
        Row(2, good),
        Row(3, good | {"national_id": "", "national_id_scheme": ""}),
        Row(4, good | {"country": "XX"}),
    ]
    mapping = Mapping_({name: name for name in good})
    for staged in (False, True):
        decided = decide_firms(rows, mapping, "agn_01JAGENCY", staged)
        assert [d is not None for d in decided] == [True, True, False]
