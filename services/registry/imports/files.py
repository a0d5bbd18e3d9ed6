"""Reading import files row by row (CSV, XLSX, NDJSON), and mapping rows to records.

Files are streamed: CSV and NDJSON line by line, XLSX through openpyxl's
read-only mode, so memory does not grow with the file. A row becomes the input
of the create schema of its kind (``FirmCreate``, ``FirmResultCreate``: the schema
of single writes, so the same rules and error codes) through the column mapping
documented in docs/imports.md; its errors are reported back in the input's terms:
row number, column name, cell value. ``COLUMNS`` is the firms' template; the other
kinds' templates are in ``kinds.py``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from services.common.errors import FieldError, ValidationFailed

FORMATS = ("csv", "xlsx", "ndjson")
ENCODINGS = ("utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16")
LIST_SEPARATOR = ";"


@dataclass(frozen=True)
class Column:
    field: str  # the create schema's field it fills
    kind: str  # text, number, list, ids, id_scheme, id_value, certifications, claim, claim_by, claim_on
    required: bool = False
    description: str = ""
    example: str = ""


# An inclusion claim (FirmCreate.women_owned…) comes from three columns: which part each fills.
CLAIM_PARTS = {"claim": "value", "claim_by": "attested_by", "claim_on": "attested_on"}


COLUMNS: dict[str, Column] = {
    name: c
    for name, c in (
        ("name", Column("name", "text", True, "Registered name", "Textiles Andinos Cía. Ltda.")),
        ("national_id_scheme", Column("national_ids", "id_scheme", False, "Scheme of national_id", "RUC")),
        (
            "national_id",
            Column("national_ids", "id_value", False, "One national id (with national_id_scheme)", "1790012345001"),
        ),
        ("national_ids", Column("national_ids", "ids", False, "SCHEME:VALUE; SCHEME:VALUE", "RUC:1790012345001")),
        ("roles", Column("roles", "list", True, "supplier; lead_firm", "supplier")),
        ("size_class", Column("size_class", "text", True, "micro, small, medium or large", "small")),
        ("employees", Column("employees", "number", False, "Headcount", "45")),
        (
            "women_employees",
            Column("women_employees", "number", False, "Women among employees (needs employees)", "21"),
        ),
        *(
            column
            for claim, example in (("women_owned", "yes"), ("women_led", "yes"), ("youth_led", "no"))
            for column in (
                (claim, Column(claim, "claim", False, "yes or no (needs its _attested_by and _attested_on)", example)),
                (
                    f"{claim}_attested_by",
                    Column(claim, "claim_by", False, f"Who attested {claim}: agency, broker or self", "agency"),
                ),
                (f"{claim}_attested_on", Column(claim, "claim_on", False, f"When {claim} was attested", "2026-10-01")),
            )
        ),
        ("isic_codes", Column("isic_codes", "list", True, "ISIC Rev.4 codes; separated by ;", "1410; 1430")),
        ("hs_codes", Column("hs_codes", "list", False, "HS codes; separated by ;", "6109; 611020")),
        (
            "certifications",
            Column(
                "certifications",
                "certifications",
                False,
                "scheme[:valid_until] or scheme:valid_from:valid_until; separated by ;",
                "iso-9001:2024-01-01:2027-06-30; oeko-tex-100",
            ),
        ),
        ("monthly_capacity", Column("monthly_capacity", "number", False, "Output per month", "12000")),
        ("capacity_unit", Column("capacity_unit", "text", False, "Unit of monthly_capacity", "pieces")),
        ("quality_score", Column("quality_score", "number", False, "0 to 1", "0.8")),
        ("on_time_delivery_rate", Column("on_time_delivery_rate", "number", False, "0 to 1", "0.9")),
        ("capabilities", Column("capabilities", "text", False, "What it makes, in words", "knitted sweaters")),
        ("street", Column("street", "text", False, "Street address", "Av. Amazonas 123")),
        ("locality", Column("locality", "text", False, "Town or city", "Atuntaqui")),
        ("postal_code", Column("postal_code", "text", False, "Postal code", "100150")),
        ("country", Column("country", "text", True, "ISO 3166-1 alpha-2", "EC")),
        ("subdivision", Column("subdivision", "text", False, "ISO 3166-2", "EC-I")),
        ("latitude", Column("latitude", "number", False, "WGS84", "0.3317")),
        ("longitude", Column("longitude", "number", False, "WGS84", "-78.2139")),
        ("cluster_ids", Column("cluster_ids", "list", False, "Cluster ids; separated by ;", "")),
    )
}


def canonical(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


@dataclass
class Mapping_:
    """Which input column fills which template column (``None``: ignored)."""

    by_input: dict[str, str | None]  # input header -> template column name
    columns: dict[str, Column] = field(default_factory=lambda: COLUMNS)  # the template

    def column_of(self, field_path: str) -> str:
        """The input column that supplied an API field (for errors in the input's terms)."""
        top, _, rest = field_path.partition(".")
        part = rest.split(".", 1)[0]
        candidates = [
            (header, self.columns[name])
            for header, name in self.by_input.items()
            if name is not None and self.columns[name].field == top and self.columns[name].kind != "id_scheme"
        ]
        # An inclusion claim's columns fill one field: name the one that gave the part at fault.
        for header, column in candidates:
            if CLAIM_PARTS.get(column.kind) == part:
                return header
        return candidates[0][0] if candidates else ""


def resolve_mapping(
    header: list[str], mapping: Mapping[str, str | None] | None, columns: dict[str, Column] = COLUMNS
) -> Mapping_:
    """Map the input's header onto ``columns`` (a template); a 422 naming unknown and missing columns."""
    explicit = {k.strip(): v for k, v in (mapping or {}).items()}
    errors: list[FieldError] = []
    for source, target in explicit.items():
        if target is not None and canonical(target) not in columns:
            errors.append(
                FieldError(
                    location="query",
                    field=f"mapping.{source}",
                    message=f"'{target}' is not a template column ({', '.join(columns)})",
                    code="unknown_column",
                )
            )
    by_input: dict[str, str | None] = {}
    seen: dict[str, str] = {}
    for position, header_name in enumerate(header):
        header_name = header_name.strip()
        if not header_name:
            errors.append(
                FieldError(
                    location="file", field=f"column {position + 1}", message="has no header", code="missing_header"
                )
            )
            continue
        target = explicit[header_name] if header_name in explicit else canonical(header_name)
        if target is None:
            by_input[header_name] = None
            continue
        target = canonical(target)
        if target not in columns:
            errors.append(
                FieldError(
                    location="file",
                    field=header_name,
                    message=(
                        f"unknown column '{header_name}': name it after a template column "
                        f'({", ".join(columns)}), map it with mapping={{"{header_name}": "<column>"}} '
                        f'or ignore it with mapping={{"{header_name}": null}}'
                    ),
                    code="unknown_column",
                )
            )
            continue
        if target in seen:
            errors.append(
                FieldError(
                    location="file",
                    field=header_name,
                    message=f"fills '{target}' like column '{seen[target]}'",
                    code="duplicate_column",
                )
            )
            continue
        seen[target] = header_name
        by_input[header_name] = target
    errors += [
        FieldError(location="file", field=name, message=f"required column '{name}' is missing", code="missing_column")
        for name, column in columns.items()
        if column.required and name not in seen
    ]
    if ("national_id" in seen) != ("national_id_scheme" in seen):
        errors.append(
            FieldError(
                location="file",
                field="national_id",
                message="national_id and national_id_scheme go together",
                code="missing_column",
            )
        )
    if errors:
        raise ValidationFailed(
            "The file's columns do not fit the import template: " + ", ".join(e.field for e in errors), errors=errors
        )
    return Mapping_(by_input, columns)


# --------------------------------------------------------------------------- rows


@dataclass
class Row:
    number: int  # as the input counts: spreadsheet row (header = 1) or NDJSON line
    cells: dict[str, Any]
    errors: list[FieldError] = field(default_factory=list)  # unreadable row


class RowProblem(Exception):
    def __init__(self, column: str, code: str, message: str) -> None:
        super().__init__(message)
        self.column, self.code, self.message = column, code, message


def _split(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    text = str(value)
    return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]


def _certification(text: str) -> dict[str, Any]:
    parts = [p.strip() for p in text.split(":")]
    if len(parts) == 1:
        return {"scheme": parts[0]}
    if len(parts) == 2:
        return {"scheme": parts[0], "valid_until": parts[1] or None}
    if len(parts) == 3:
        return {"scheme": parts[0], "valid_from": parts[1] or None, "valid_until": parts[2] or None}
    raise ValueError(text)


_YES_NO = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


def _claim_part(kind: str, raw: Any) -> Any:
    """One cell of an inclusion claim: yes/no (or true/false, 1/0) for its value, as given otherwise."""
    if kind != "claim" or isinstance(raw, bool):
        return raw
    return _YES_NO.get(str(raw).strip().lower(), raw)  # anything else: FirmCreate names the bad value


def to_input(cells: Mapping[str, Any], mapping: Mapping_, agency_id: str) -> dict[str, Any]:
    """The create schema's input of one row: template columns converted, empty cells left out."""
    data: dict[str, Any] = {"agency_id": agency_id}
    scheme = value = None
    for header, raw in cells.items():
        name = mapping.by_input.get(header)
        if name is None or raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        column = mapping.columns[name]
        if column.kind in ("text", "number"):
            data[column.field] = raw
        elif column.kind == "list":
            data[column.field] = _split(raw)
        elif column.kind == "ids":
            entries = []
            for part in _split(raw):
                if isinstance(part, dict):
                    entries.append(part)
                    continue
                if ":" not in part:
                    raise RowProblem(header, "invalid_format", f"'{part}' is not SCHEME:VALUE (e.g. RUC:1790012345001)")
                s, v = part.split(":", 1)
                entries.append({"scheme": s.strip(), "value": v.strip()})
            data.setdefault("national_ids", []).extend(entries)
        elif column.kind == "id_scheme":
            scheme = str(raw).strip()
        elif column.kind == "id_value":
            value = str(raw).strip()
        elif column.kind == "certifications":
            certs = []
            for part in _split(raw):
                if isinstance(part, dict):
                    certs.append(part)
                    continue
                try:
                    certs.append(_certification(part))
                except ValueError:
                    raise RowProblem(
                        header,
                        "invalid_format",
                        f"'{part}' is not scheme[:valid_until] or scheme:valid_from:valid_until",
                    ) from None
            data["certifications"] = certs
        elif column.kind in CLAIM_PARTS:
            data.setdefault(column.field, {})[CLAIM_PARTS[column.kind]] = _claim_part(column.kind, raw)
    if value is not None or scheme is not None:
        if not value or not scheme:
            header = next((h for h, n in mapping.by_input.items() if n in ("national_id", "national_id_scheme")), "")
            raise RowProblem(header, "missing", "national_id and national_id_scheme go together")
        data.setdefault("national_ids", []).insert(0, {"scheme": scheme, "value": value})
    return data


def _cell_text(value: Any) -> Any:
    """An XLSX cell as the text a CSV would hold (codes keep their digits; dates are ISO)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class _Rows:
    """Rows of an open file; ``close`` closes the file even if no row was read."""

    def __init__(self, rows: Iterator[Row], close: Any) -> None:
        self._rows, self._close = rows, close

    def __iter__(self) -> _Rows:
        return self

    def __next__(self) -> Row:
        return next(self._rows)

    def close(self) -> None:
        self._rows.close()  # type: ignore[attr-defined]
        self._close()


class ImportFile:
    """One stored upload: its header and its rows, streamed."""

    def __init__(
        self, path: Path, fmt: str, *, encoding: str = "utf-8", delimiter: str | None = None, sheet: str | None = None
    ) -> None:
        self.path, self.format, self.encoding, self.delimiter, self.sheet = path, fmt, encoding, delimiter, sheet

    # --- header ----------------------------------------------------------------------
    def header(self) -> list[str]:
        """The column names; a 422 when the file is empty or unreadable as its format."""
        header, rows = self._open()
        rows.close()
        return header

    def _open(self) -> tuple[list[str], _Rows]:
        if self.format == "csv":
            return self._csv()
        if self.format == "xlsx":
            return self._xlsx()
        return self._ndjson()

    def rows(self, skip: int = 0) -> Iterator[Row]:
        """Data rows after the first ``skip`` ones (close the iterator when stopping early)."""
        _header, rows = self._open()
        try:
            for index, row in enumerate(rows):
                if index >= skip:
                    yield row
        finally:
            rows.close()

    def has_rows(self) -> bool:
        rows = self.rows()
        try:
            return next(rows, None) is not None
        finally:
            rows.close()  # type: ignore[attr-defined]

    # --- formats -----------------------------------------------------------------------
    def _text(self) -> io.TextIOWrapper:
        encoding = "utf-8-sig" if self.encoding == "utf-8" else self.encoding
        return open(self.path, encoding=encoding, newline="", errors="strict")  # closed by the reader

    def _csv(self) -> tuple[list[str], _Rows]:
        handle = self._text()
        first = handle.readline()
        if not first.strip():
            handle.close()
            raise _empty()
        delimiter = self.delimiter or max(",;\t|", key=first.count)
        handle.seek(0)
        reader = csv.reader(handle, delimiter=delimiter)
        header = [h.strip() for h in next(reader)]

        def rows() -> Iterator[Row]:
            number = 1
            for record in reader:
                number += 1
                if not record or not "".join(record).strip():  # blank: no cell holds a visible character
                    continue
                if len(record) != len(header):
                    problem = FieldError(
                        location="row",
                        field="",
                        message=f"has {len(record)} cells, the header has {len(header)}",
                        code="malformed_row",
                    )
                    yield Row(number, {}, [problem])
                    continue
                yield Row(number, dict(zip(header, record, strict=True)))

        return header, _Rows(rows(), handle.close)

    def _xlsx(self) -> tuple[list[str], _Rows]:
        import openpyxl  # here, not at the top: seconds of start-up every process and CSV import would pay

        try:
            workbook = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ValidationFailed(
                "The file is not a readable XLSX workbook",
                errors=[FieldError(location="file", field="", message=str(exc) or "unreadable", code="invalid_xlsx")],
            ) from None
        if self.sheet is not None and self.sheet not in workbook.sheetnames:
            workbook.close()
            raise ValidationFailed(
                f"No sheet '{self.sheet}' in the workbook (it has {', '.join(workbook.sheetnames)})",
                errors=[FieldError(location="query", field="sheet", message="no such sheet", code="unknown_sheet")],
            )
        sheet = workbook[self.sheet] if self.sheet else workbook.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        header: list[str] | None = None
        number = 0
        for record in values:
            number += 1
            if record and any(v is not None and str(v).strip() for v in record):
                header = [str(_cell_text(v) or "").strip() for v in record]
                while header and not header[-1]:
                    header.pop()
                break
        if header is None:
            workbook.close()
            raise _empty()
        width = len(header)

        def rows() -> Iterator[Row]:
            nonlocal number
            for record in values:
                number += 1
                cells = [_cell_text(v) for v in record[:width]]
                if not any(c is not None and str(c).strip() for c in cells):
                    continue
                cells += [None] * (width - len(cells))
                yield Row(number, dict(zip(header, cells, strict=True)))

        return header, _Rows(rows(), workbook.close)

    def _ndjson(self) -> tuple[list[str], _Rows]:
        handle = self._text()
        header: list[str] = []
        first: Row | None = None
        number = 0
        for line in handle:
            number += 1
            if line.strip():
                first = self._json_row(number, line)
                header = list(first.cells)
                break
        if first is None:
            handle.close()
            raise _empty()

        def rows() -> Iterator[Row]:
            nonlocal number
            assert first is not None
            yield first
            for line in handle:
                number += 1
                if line.strip():
                    yield self._json_row(number, line)

        return header, _Rows(rows(), handle.close)

    @staticmethod
    def _json_row(number: int, line: str) -> Row:
        try:
            value = json.loads(line)
        except ValueError as exc:
            return Row(
                number, {}, [FieldError(location="row", field="", message=f"not JSON: {exc}", code="malformed_json")]
            )
        if not isinstance(value, dict):
            return Row(
                number, {}, [FieldError(location="row", field="", message="not a JSON object", code="malformed_json")]
            )
        return Row(number, value)


def _empty() -> ValidationFailed:
    return ValidationFailed(
        "The file is empty: it needs a header row and at least one data row",
        errors=[FieldError(location="file", field="", message="no header and no rows", code="empty_file")],
    )


def template_rows(columns: dict[str, Column] = COLUMNS) -> tuple[list[str], list[str]]:
    """An import template: its header and one example row."""
    return list(columns), [c.example for c in columns.values()]


def template_xlsx(columns: dict[str, Column] = COLUMNS, title: str = "firms") -> bytes:
    import openpyxl  # only for XLSX, as in ``_xlsx``
    from openpyxl.styles import Font

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    sheet.append(list(columns))
    sheet.append([c.example for c in columns.values()])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for column in sheet.columns:  # text format: codes keep leading zeros
        for cell in column:
            cell.number_format = "@"
    notes = workbook.create_sheet("columns")
    notes.append(["column", "required", "meaning", "example"])
    for name, c in columns.items():
        notes.append([name, "yes" if c.required else "", c.description, c.example])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
