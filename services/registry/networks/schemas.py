from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from services.common.bounds import Day, FreeText, Name, RecordId, SearchQuery, rule_broken
from services.registry.schemas import CreateBase, RecordPublic, RecordQuery, Strict, partial


class NetworkKind(StrEnum):
    horizontal = "horizontal"  # competing SMEs acting jointly
    vertical = "vertical"  # a lead firm sourcing from, and upgrading, local suppliers


class NetworkStatus(StrEnum):
    forming = "forming"
    active = "active"
    dormant = "dormant"
    dissolved = "dissolved"


class MemberRole(StrEnum):
    lead_firm = "lead_firm"
    supplier = "supplier"
    member = "member"


class JointActionKind(StrEnum):
    joint_purchase = "joint_purchase"
    joint_marketing = "joint_marketing"
    shared_equipment = "shared_equipment"
    training = "training"
    supplier_upgrading = "supplier_upgrading"
    joint_production = "joint_production"
    quality_improvement = "quality_improvement"
    other = "other"


class NetworkMember(Strict):
    firm_id: RecordId
    role: MemberRole = Field(description="vertical: one lead_firm, the rest supplier; horizontal: all member")
    joined_on: Day | None = None


class JointAction(Strict):
    kind: JointActionKind
    description: FreeText | None = None
    started_on: Day | None = None
    completed_on: Day | None = None

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.started_on and self.completed_on and self.completed_on < self.started_on:
            raise ValueError("completed_on is before started_on")
        return self


class NetworkFields(CreateBase):
    name: Name
    kind: NetworkKind
    cluster_id: RecordId | None = None
    broker_id: RecordId | None = Field(default=None, description="The cluster development agent who builds it")
    members: Annotated[list[NetworkMember], Field(max_length=500)] = []
    joint_actions: Annotated[list[JointAction], Field(max_length=200)] = []
    status: NetworkStatus = NetworkStatus.forming
    formed_on: Day | None = None
    description: FreeText | None = None

    @model_validator(mode="after")
    def _members_fit_kind(self) -> Self:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        first: dict[str, int] = {}
        for i, member in enumerate(self.members):
            j = first.setdefault(member.firm_id, i)
            if j != i:
                problems.append((("members", i, "firm_id"), f"firm {member.firm_id} is already members.{j}"))
        if self.kind is NetworkKind.vertical:
            leads = [i for i, m in enumerate(self.members) if m.role is MemberRole.lead_firm]
            if not leads:
                problems.append((("members",), "a vertical network needs exactly one member with role lead_firm"))
            problems += [
                (("members", i, "role"), f"a vertical network has one lead_firm, already members.{leads[0]}")
                for i in leads[1:]
            ]
            problems += [
                (("members", i, "role"), "the other members of a vertical network are suppliers")
                for i, m in enumerate(self.members)
                if m.role is MemberRole.member
            ]
        else:
            problems += [
                (("members", i, "role"), "every member of a horizontal network has role member")
                for i, m in enumerate(self.members)
                if m.role is not MemberRole.member
            ]
        if problems:
            raise rule_broken(type(self).__name__, problems, self.members)
        return self


class NetworkCreate(NetworkFields):
    """A new network of firms."""


NetworkUpdate = partial(NetworkCreate, "NetworkUpdate")


class NetworkPublic(RecordPublic, NetworkFields):
    agency_id: str


class NetworkQuery(RecordQuery):
    kind: NetworkKind | None = None
    status: NetworkStatus | None = None
    cluster_id: RecordId | None = None
    broker_id: RecordId | None = None
    firm_id: RecordId | None = Field(default=None, description="Has this firm among its members")
    action: JointActionKind | None = Field(default=None, description="Has a joint action of this kind")
    agency_id: RecordId | None = None
    q: SearchQuery | None = Field(default=None, description="Text in the name or description")
