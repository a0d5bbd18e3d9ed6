from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from services.common.bounds import Code, Day, Note, RecordId, line
from services.common.pagination import ListQuery
from services.matching.shortlists.schemas import GapPublic
from services.matching.standards.schemas import Strict
from services.matching.tables import Linkage


class Stage(StrEnum):
    proposed = "proposed"
    contacted = "contacted"
    qualified = "qualified"
    contracted = "contracted"
    active = "active"
    dropped = "dropped"


# A linkage moves forward (stages may be skipped) or is dropped; a dropped one stays dropped.
STAGE_ORDER = [Stage.proposed, Stage.contacted, Stage.qualified, Stage.contracted, Stage.active]


class DevelopmentAction(Strict):
    action: line(500, 1) = Field(description="e.g. 'ISO 9001 gap audit and training'")  # type: ignore[valid-type]
    scheme: Code | None = Field(default=None, description="The certification it works towards")
    due_on: Day | None = None
    done_on: Day | None = None


class SupplierKind(StrEnum):
    firm = "firm"
    network = "network"  # a consortium: a horizontal network answering as one supplier


class MemberShare(BaseModel):
    """A member firm of a network supplier, and its share: as the shortlist listed it (its
    capacity share), or as awarded (its part of the awarded quantity, then with ``quantity``)."""

    firm_id: str
    name: str
    share: float = Field(description="Its part, 0 to 1; the members' shares add up to 1")
    quantity: float | None = Field(default=None, description="Its part of the awarded quantity, once awarded")


class LinkageCreate(Strict):
    shortlist_id: RecordId
    supplier_id: RecordId = Field(
        description="A supplier of that shortlist: a listed firm, or a network listed in its consortia"
    )
    stage: Stage = Stage.proposed
    on: Day | None = Field(default=None, description="When the stage was reached (today by default)")
    notes: Note | None = None
    development_actions: list[DevelopmentAction] = Field(default=[], max_length=50)


class LinkageUpdate(Strict):
    stage: Stage | None = None
    on: Day | None = None
    note: Annotated[Note, Field(max_length=1000)] | None = Field(
        default=None, description="Recorded with the stage change"
    )
    notes: Note | None = None
    development_actions: list[DevelopmentAction] | None = Field(default=None, max_length=50)


class StageEvent(BaseModel):
    stage: Stage
    on: date
    note: str | None = None


class LinkagePublic(BaseModel):
    id: str
    shortlist_id: str
    supplier_id: str
    supplier_kind: SupplierKind = Field(default=SupplierKind.firm, description="firm, or network (a consortium)")
    members: list[MemberShare] | None = Field(
        default=None,
        description="A network's members: as its shortlist listed them, then as awarded by a request; null for a firm",
    )
    firm_id: str | None
    stage: Stage
    history: list[StageEvent]
    development_actions: list[DevelopmentAction]
    gap: GapPublic | None = Field(description="What the supplier lacks, for a development candidate")
    gap_member_id: str | None = Field(
        default=None, description="For a network's gap: the member lacking the certification"
    )
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


def linkage_public(row: Linkage) -> LinkagePublic:
    return LinkagePublic(
        id=row.id,
        shortlist_id=row.shortlist_id,
        supplier_id=row.supplier_id,
        supplier_kind=SupplierKind(row.supplier_kind),
        members=[MemberShare.model_validate(m) for m in row.members] if row.members is not None else None,
        firm_id=row.firm_id,
        stage=Stage(row.stage),
        history=[StageEvent.model_validate(e) for e in row.history],
        development_actions=[DevelopmentAction.model_validate(a) for a in row.development_actions],
        gap=GapPublic.model_validate(row.gap) if row.gap else None,
        gap_member_id=(row.gap or {}).get("member_id"),
        notes=row.notes,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class LinkageQuery(ListQuery):
    shortlist_id: RecordId | None = None
    supplier_id: RecordId | None = None
    supplier_kind: SupplierKind | None = None
    stage: Stage | None = None
