"""Firm rows validated a batch at a time, column by column: the fast path of ``prepare``.

``FirmCreate`` (pydantic) takes about 60 µs a row, and mapping, drafting and
rendering a row around it as much again. Here a batch's cells are read column by
column: a column is checked against in-memory sets of valid codes (countries,
subdivisions, ISIC, HS), bounds and patterns, and the cells of columns with few
distinct values (codes, roles, certificates, places) are converted once per
distinct value, not once per row. A row is *decided* here only when every one of
its cells is in a form this module knows ``FirmCreate`` accepts, and then it gets
exactly what the per-row path would make of it (the same document, natural key,
tags, folded search columns and ``COPY`` lines). Every other row is left
undecided (``None``) and goes through ``FirmCreate`` row by row, so a rejected
row's problems (field, code, message) are always those of ``POST /v1/firms``.
The property test in tests/registry/test_import_validation.py feeds generated
rows, good and bad, through both paths and compares what they make.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, NamedTuple

import pydantic_core

from services.common.bounds import FIRST_DAY, INT32_MAX, LAST_DAY, MAX_QUANTITY
from services.common.bulk import copy_value
from services.common.codes import MAX_DERIVED_ISIC, CodeSystem, country_codes, hs_codes, isic_codes, subdivision_codes
from services.common.ids import new_ids
from services.registry.clusters.models import Cluster
from services.registry.duplicates.detector import normalise_id
from services.registry.firms.resource import FIRMS
from services.registry.firms.schemas import AttestedBy, FirmCreate, FirmRole, Inclusion, SizeClass
from services.registry.firms.search import column_words, search_columns
from services.registry.imports.files import LIST_SEPARATOR, Mapping_, Row
from services.registry.imports.firm_writes import Staged, json_cell, render
from services.registry.records import Draft, Reference

# The create schema's fields in its order (``model_dump``'s, hence the document's and the
# content key's). A new field must be taught to this module first: until then, fail loudly.
_FIELDS = (
    "country",
    "subdivision",
    "latitude",
    "longitude",
    "agency_id",
    "name",
    "national_ids",
    "roles",
    "size_class",
    "employees",
    "women_employees",
    "women_owned",
    "women_led",
    "youth_led",
    "isic_codes",
    "code_system",
    "source_codes",
    "hs_codes",
    "certifications",
    "monthly_capacity",
    "capacity_unit",
    "quality_score",
    "on_time_delivery_rate",
    "capabilities",
    "street",
    "locality",
    "postal_code",
    "cluster_ids",
)
assert tuple(FirmCreate.model_fields) == _FIELDS, "FirmCreate changed: teach firm_columns its new fields"

_BAD: Any = object()  # a cell this module cannot decide: its row goes through FirmCreate

# What pydantic strips (``str_strip_whitespace``: Unicode White_Space, as Rust's ``trim``).
# Python's ``strip()`` also takes U+001C..U+001F, which pydantic keeps and then refuses.
_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_WHITESPACE += "\u2028\u2029\u202f\u205f\u3000"
_LINE_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # as services.common.bounds
_FREE_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Numbers and days in their plain forms only; pydantic reads more ("1e3", "1_000", " 7"),
# which the per-row path still accepts.
_INTEGER = re.compile(r"[0-9]{1,10}")
_DECIMAL = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,17})?")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_YES_NO = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}  # as files._claim_part

_SIZE_CLASSES = {member.value: member for member in SizeClass}
_ROLES = {member.value for member in FirmRole}
_ATTESTERS = {member.value for member in AttestedBy}
_CLAIMS = tuple(kind.value for kind in Inclusion)
_REQUIRED = ("name", "roles", "size_class", "isic_codes", "country")  # the rest may be left out
# Columns converted to (the document's JSON list, …) once per distinct cell: rows share the list.
_SHARED_JSON = ("roles", "isic_codes", "hs_codes", "certifications", "cluster_ids")
_TAG_ENTITY = FIRMS.entity


def _split(text: str) -> list[str]:
    """A list cell's parts, as ``files.to_input`` splits it."""
    return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]


def _line(value: str, max_length: int, forbidden: re.Pattern[str] = _LINE_FORBIDDEN) -> Any:
    """A text cell as pydantic keeps it (stripped), or ``_BAD``. Empty cells never get here."""
    text = value.strip(_WHITESPACE)
    if not text or len(text) > max_length or forbidden.search(text):
        return _BAD
    return text


def _day(text: str) -> Any:
    if not _DAY.fullmatch(text):
        return _BAD
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return _BAD
    return day if FIRST_DAY <= day <= LAST_DAY else _BAD


def _decimal(low: float, high: float) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        if len(text) > 34 or not _DECIMAL.fullmatch(text):
            return _BAD
        number = float(text)
        return number if low <= number <= high else _BAD

    return convert


def _count(text: str) -> Any:
    if not _INTEGER.fullmatch(text):
        return _BAD
    number = int(text)
    return number if number <= INT32_MAX else _BAD


def _codes(valid: Callable[[str], str | None], max_items: int, facet: str | None) -> Callable[[str], Any]:
    """A list cell of codes: (the distinct codes, their tags), or ``_BAD``."""

    def convert(text: str) -> Any:
        parts = _split(text)
        if not parts or len(parts) > max_items:  # pydantic bounds the list before dropping repeats
            return _BAD
        codes = []
        for part in parts:
            code = valid(part)
            if code is None:
                return _BAD
            codes.append(code)
        distinct = list(dict.fromkeys(codes))
        tags = [(facet, code, None, None) for code in distinct] if facet else []
        return distinct, tags

    return convert


def _isic(part: str) -> str | None:
    code = part.upper()
    return code if len(part) <= 4 and code in isic_codes() else None


def _hs(part: str) -> str | None:
    code = part.replace(".", "")
    return code if 2 <= len(part) <= 7 and code in hs_codes() else None


def _role(part: str) -> str | None:
    return part if part in _ROLES else None


def _cluster(part: str) -> str | None:
    return part if _RECORD_ID.fullmatch(part) else None


def _country(text: str) -> Any:
    code = text.strip(_WHITESPACE).upper()
    return code if len(code) == 2 and code in country_codes() else _BAD


def _subdivision(text: str) -> Any:
    code = text.strip(_WHITESPACE).upper()
    return code if 4 <= len(code) <= 6 and code in subdivision_codes() else _BAD


def _certifications(text: str) -> Any:
    """A certifications cell: (the documents' list, the cert tags), or ``_BAD``."""
    parts = _split(text)
    if len(parts) > 50:
        return _BAD
    documents, tags = [], []
    for part in parts:
        pieces = [piece.strip() for piece in part.split(":")]  # as files._certification
        if len(pieces) > 3:
            return _BAD
        scheme = pieces[0]
        if not scheme or len(scheme) > 40 or _LINE_FORBIDDEN.search(scheme):
            return _BAD
        valid_from: Any = None
        valid_until: Any = None
        if len(pieces) == 2:
            valid_until = pieces[1] or None
        elif len(pieces) == 3:
            valid_from, valid_until = pieces[1] or None, pieces[2] or None
        if valid_from is not None and (valid_from := _day(valid_from)) is _BAD:
            return _BAD
        if valid_until is not None and (valid_until := _day(valid_until)) is _BAD:
            return _BAD
        if valid_from and valid_until and valid_until < valid_from:
            return _BAD
        documents.append(
            {
                "scheme": scheme,
                "issuer": None,
                "certificate_number": None,
                "valid_from": valid_from and valid_from.isoformat(),
                "valid_until": valid_until and valid_until.isoformat(),
            }
        )
        tags.append(("cert", scheme, valid_from, valid_until))
    return documents, tags


def _ids(text: str) -> Any:
    """A ``national_ids`` cell (``SCHEME:VALUE; …``): its entries, or ``_BAD``."""
    entries = []
    for part in _split(text):
        if ":" not in part:
            return _BAD
        scheme, value = part.split(":", 1)
        entries.append((scheme.strip(), value.strip()))
    return entries


def _national_id(scheme: str, value: str) -> bool:
    return (
        0 < len(scheme) <= 40
        and 0 < len(value) <= 60
        and not _LINE_FORBIDDEN.search(scheme)
        and not _LINE_FORBIDDEN.search(value)
    )


class _Column:
    """One template column's cells of a batch, converted: a value per row, ``None`` where empty."""

    def __init__(self, cells: list[str | None], convert: Callable[[str], Any], *, memo: bool) -> None:
        seen: dict[str, Any] = {}
        if memo:  # few distinct values (codes, places): each converted once
            self.values = [
                None if cell is None else seen[cell] if cell in seen else seen.setdefault(cell, convert(cell))
                for cell in cells
            ]
        else:
            self.values = [None if cell is None else convert(cell) for cell in cells]
        self.distinct = list(seen.values())  # memo: each distinct value converted, once


def _present(cell: Any) -> Any:
    """A cell as ``files.to_input`` reads it: ``None`` when empty (blank text counts as empty)."""
    return None if cell is None or not cell.strip() else cell


_TEXT_COLUMNS: dict[str, Callable[[str], Any]] = {
    "name": lambda text: _line(text, 200),
    "capacity_unit": lambda text: _line(text, 30),
    "capabilities": lambda text: _line(text, 5000, _FREE_TEXT_FORBIDDEN),
    "street": lambda text: _line(text, 300),
    "locality": lambda text: _line(text, 200),
    "postal_code": lambda text: _line(text, 20),
}
# Columns converted once per distinct value (low cardinality in registers' exports).
_MEMO_COLUMNS: dict[str, Callable[[str], Any]] = {
    "roles": _codes(_role, 2, "role"),
    "size_class": lambda text: _SIZE_CLASSES.get(text, _BAD),  # an enum: exactly, not stripped
    "isic_codes": _codes(_isic, MAX_DERIVED_ISIC, "isic"),
    "hs_codes": _codes(_hs, 200, "hs"),
    "certifications": _certifications,
    "country": _country,
    "subdivision": _subdivision,
    "cluster_ids": _codes(_cluster, 20, None),
    "capacity_unit": _TEXT_COLUMNS["capacity_unit"],
    "locality": _TEXT_COLUMNS["locality"],
    "national_id_scheme": lambda text: text.strip(),
}
_NUMBER_COLUMNS: dict[str, Callable[[str], Any]] = {
    "employees": _count,
    "women_employees": _count,
    "monthly_capacity": _decimal(0, MAX_QUANTITY),
    "quality_score": _decimal(0, 1),
    "on_time_delivery_rate": _decimal(0, 1),
    "latitude": _decimal(-90, 90),
    "longitude": _decimal(-180, 180),
}


def _converter(name: str) -> tuple[Callable[[str], Any], bool] | None:
    if name in _MEMO_COLUMNS:
        return _MEMO_COLUMNS[name], True
    if name in _TEXT_COLUMNS:
        return _TEXT_COLUMNS[name], False
    if name in _NUMBER_COLUMNS:
        return _NUMBER_COLUMNS[name], False
    if name == "national_ids":
        return _ids, False
    if name == "national_id":
        return str.strip, False
    return None  # the inclusion claims' columns: read as they are, below


def _claim(value: str | None, by: str | None, on: str | None) -> Any:
    """An inclusion claim from its three cells: (its document, its Python value), None, or ``_BAD``."""
    if value is None and by is None and on is None:
        return None
    if value is None or by is None or on is None:
        return _BAD
    held = _YES_NO.get(value.strip().lower())
    day = _day(on)  # the date validator reads the cell as it is: no stripping
    if held is None or by not in _ATTESTERS or day is _BAD:
        return _BAD
    return {"value": held, "attested_by": by, "attested_on": day.isoformat()}, held


class Decided(NamedTuple):
    """A row this module validated: what ``prepare`` puts in its ``PreparedBatch``."""

    draft: Draft  # staged: only its checked part (``records.checked_part``)
    natural_key: str
    staged: Staged | None  # staged: the row's lines of firms and the outbox (``firm_writes.render``)
    tag_lines: bytes
    words: str


def decide_firms(rows: Sequence[Row], mapping: Mapping_, agency_id: str, staged: bool) -> list[Decided | None]:
    """For each row of a batch, what ``prepare`` would make of it with ``FirmCreate``, where this
    module can decide it (``staged``: rendered for ``COPY`` too); None: left to ``FirmCreate``."""
    count = len(rows)
    headers = {name: header for header, name in mapping.by_input.items() if name is not None}
    if count == 0 or not _RECORD_ID.fullmatch(agency_id) or any(name not in headers for name in _REQUIRED):
        return [None] * count
    decided = [not row.errors for row in rows]
    cells = [row.cells for row in rows]
    columns: dict[str, list[Any]] = {}
    json_cells: dict[int, str] = {}  # by id of the converted values, alive until the rows are rendered
    for name, header in headers.items():
        raw = [row.get(header) for row in cells]
        if set(map(type, raw)) - {str, type(None)}:  # typed NDJSON values: the per-row path
            for index, cell in enumerate(raw):
                if cell is not None and not isinstance(cell, str):
                    decided[index] = False
            raw = [cell if isinstance(cell, str) else None for cell in raw]
        present = [cell if cell is not None and cell.strip() else None for cell in raw]  # as to_input: blank is empty
        found = _converter(name)
        if found is None:  # an inclusion claim's column: read with its two others, below
            columns[name] = present
            continue
        convert, memo = found
        column = _Column(present, convert, memo=memo)
        values = column.values
        columns[name] = values
        if staged and name in _SHARED_JSON:  # each distinct code list's cell of firms, rendered once
            json_cells.update((id(value[0]), json_cell(value[0])) for value in column.distinct if value is not _BAD)
        if _BAD in values or (name in _REQUIRED and None in values):
            for index, value in enumerate(values):
                if value is _BAD or (value is None and name in _REQUIRED):
                    decided[index] = False
    empty: list[Any] = [None] * count
    claims: list[list[Any]] = []
    for kind in _CLAIMS:
        parts = [columns.get(f"{kind}{suffix}", empty) for suffix in ("", "_attested_by", "_attested_on")]
        if all(part is empty for part in parts):
            claims.append(empty)
            continue
        claims.append([_claim(*cells_of) for cells_of in zip(*parts, strict=True)])
        for index, claim in enumerate(claims[-1]):
            if claim is _BAD:
                decided[index] = False
    ids = new_ids(FIRMS.id_prefix, count) if staged else []
    out: list[Decided | None] = [None] * count
    shared: dict[tuple[int, int], Draft] = {}  # one checked part per distinct (certificates, clusters)
    tag_memo: dict[tuple[Any, ...], tuple[list[Any], str]] = {}  # per distinct tagged cells
    code_system = CodeSystem.isic4.value
    names = (
        "country",
        "subdivision",
        "latitude",
        "longitude",
        "name",
        "national_ids",
        "national_id_scheme",
        "national_id",
        "roles",
        "size_class",
        "employees",
        "women_employees",
        "isic_codes",
        "hs_codes",
        "certifications",
        "monthly_capacity",
        "capacity_unit",
        "quality_score",
        "on_time_delivery_rate",
        "capabilities",
        "street",
        "locality",
        "postal_code",
        "cluster_ids",
    )
    for index, (
        country,
        subdivision,
        latitude,
        longitude,
        name,
        id_entries,
        scheme,
        id_value,
        roles,
        size_class,
        employees,
        women_employees,
        isic,
        hs,
        certifications,
        capacity,
        unit,
        quality,
        on_time,
        capabilities,
        street,
        locality,
        postal_code,
        clusters,
        women_owned,
        women_led,
        youth_led,
    ) in enumerate(zip(*(columns.get(name, empty) for name in names), *claims, strict=True)):
        if not decided[index]:
            continue
        # The rules across fields (Place's and FirmCreate's model validators).
        if subdivision is not None and subdivision.split("-", 1)[0] != country:
            continue
        if (latitude is None) != (longitude is None) or (capacity is None) != (unit is None):
            continue
        if women_employees is not None and (employees is None or women_employees > employees):
            continue
        national_ids = list(id_entries) if id_entries else []
        if scheme is not None or id_value is not None:
            if not scheme or not id_value:
                continue
            national_ids.insert(0, (scheme, id_value))
        if len(national_ids) > 10 or not all(_national_id(s, v) for s, v in national_ids):
            continue
        cert_documents = certifications[0] if certifications is not None else []
        cluster_ids = clusters[0] if clusters is not None else []
        document = {
            "country": country,
            "subdivision": subdivision,
            "latitude": latitude,
            "longitude": longitude,
            "agency_id": agency_id,
            "name": name,
            "national_ids": [{"scheme": s, "value": v} for s, v in national_ids],
            "roles": roles[0],
            "size_class": size_class.value,
            "employees": employees,
            "women_employees": women_employees,
            "women_owned": women_owned and women_owned[0],
            "women_led": women_led and women_led[0],
            "youth_led": youth_led and youth_led[0],
            "isic_codes": isic[0],
            "code_system": code_system,
            "source_codes": [],
            "hs_codes": hs[0] if hs is not None else [],
            "certifications": cert_documents,
            "monthly_capacity": capacity,
            "capacity_unit": unit,
            "quality_score": quality,
            "on_time_delivery_rate": on_time,
            "capabilities": capabilities,
            "street": street,
            "locality": locality,
            "postal_code": postal_code,
            "cluster_ids": cluster_ids,
        }
        document_json = None
        if national_ids:
            natural_key = "id:" + normalise_id(*national_ids[0])[:110]
        else:  # kinds.firm_key: a hash of the validated record, as FirmCreate renders it
            rendered = pydantic_core.to_json(document)  # finite numbers only: json_text's too
            natural_key = "row:" + hashlib.sha256(rendered).hexdigest()[:40]
            document_json = rendered.decode()
        derived = search_columns(document)
        words = " ".join(column_words(derived))
        held = (
            bool(women_owned and women_owned[1]),
            bool(women_led and women_led[1]),
            bool(youth_led and youth_led[1]),
        )
        tag_key = (id(roles), id(isic), id(hs), id(certifications), id(clusters), held)
        tagged = tag_memo.get(tag_key)
        if tagged is None:
            tags = _tags(roles, isic, hs, certifications, cluster_ids, held)
            tagged = tag_memo[tag_key] = (tags, "".join(_tag_suffix(tag) for tag in tags))
        references = [Reference(f"cluster_ids.{i}", Cluster, cid, "cluster") for i, cid in enumerate(cluster_ids)]
        if not staged:
            columns_of = {key: document[key] for key in _COLUMN_FIELDS}
            columns_of["size_class"], columns_of["code_system"] = size_class, CodeSystem.isic4
            draft = Draft(agency_id, document, columns_of | derived, list(tagged[0]), references)
            out[index] = Decided(draft, natural_key, None, b"", words)
            continue
        staged_row = render(
            document, derived, ids[index], agency_id, json_cells=json_cells, document_json=document_json
        )
        key = (id(certifications), id(clusters))  # memoised cells: equal cells, one object
        checked = shared.get(key)
        if checked is None:
            checked = shared[key] = Draft(agency_id, {"certifications": cert_documents}, {}, [], references)
        # Every line of the row's tags starts with its id (a firm has a role and an ISIC code).
        tag_lines = ids[index] + tagged[1].replace("\n", "\n" + ids[index], len(tagged[0]) - 1)
        out[index] = Decided(checked, natural_key, staged_row, tag_lines.encode(), words)
    return out


def _tags(
    roles: Any, isic: Any, hs: Any, certifications: Any, cluster_ids: list[str], held: tuple[bool, ...]
) -> list[tuple[str, str, date | None, date | None]]:
    """A firm's tags as ``records.draft`` gives them: distinct, sorted by facet and value."""
    tags = {
        *(certifications[1] if certifications is not None else ()),
        *(("cluster", cid, None, None) for cid in cluster_ids),
        *(hs[1] if hs is not None else ()),
        *(("inclusion", kind, None, None) for kind, true in zip(_CLAIMS, held, strict=True) if true),
        *isic[1],
        *roles[1],
    }
    return sorted(tags, key=lambda t: (t[0], t[1]))


def _tag_suffix(tag: tuple[str, str, date | None, date | None]) -> str:
    """A tag's line of ``record_tags`` after its record id (``firm_writes.stage``'s columns)."""
    return "\t" + "\t".join(copy_value(value) for value in (_TAG_ENTITY, *tag)) + "\n"


# The fields records.draft copies into table columns (the owner is a record column, set apart).
_COLUMN_FIELDS = tuple(
    name
    for name in _FIELDS
    if name != "agency_id" and name in FIRMS.table.__table__.columns  # type: ignore[attr-defined]
)
