"""Firm results: a firm's sales, exports, jobs and more per period, entered by its agency.

Private figures: only the owning agency (its staff and viewers), platform viewers and
admins read them (``ResourceSpec.private``); reporting turns them into the firm
outcome indicators through the change feed.
"""

from __future__ import annotations

from services.common.principal import Principal
from services.registry.firm_results.models import FirmResult
from services.registry.firm_results.schemas import (
    FirmResultCreate,
    FirmResultPublic,
    FirmResultQuery,
    FirmResultUpdate,
)
from services.registry.firms.models import Firm
from services.registry.records import ColumnFilter, Reference, ResourceSpec


def _references(data: FirmResultCreate) -> list[Reference]:
    return [Reference("firm_id", Firm, data.firm_id, "firm")]


def _entered_by(principal: Principal) -> dict[str, str]:
    return {"entered_by": principal.subject[:100]}


FIRM_RESULTS = ResourceSpec(
    entity="firm_result",
    path="/v1/firm-results",
    id_prefix="frr",
    table=FirmResult,
    create=FirmResultCreate,
    update=FirmResultUpdate,
    public=FirmResultPublic,
    query=FirmResultQuery,
    filters={
        "firm_id": ColumnFilter("firm_id"),
        "period": ColumnFilter("period"),
        "agency_id": ColumnFilter("agency_id"),
    },
    references=_references,
    unique=("firm_id", "period"),
    private=True,
    stamp=_entered_by,
    sort_fields=("period",),
)
