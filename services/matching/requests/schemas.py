"""Requests for quotation: what a buyer asks, whom it invites, and what suppliers answer."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, Field, model_validator
from pydantic import Strict as Strict_

from services.common.bounds import Count, Day, Name, Note, PositiveQuantity, Quantity, RecordId, line, rule_broken
from services.common.codes import CountryCode, CurrencyCode, SubdivisionCode
from services.common.pagination import ListQuery
from services.matching.linkages.schemas import MemberShare, SupplierKind
from services.matching.shortlists.schemas import CriterionScore, GapPublic, ShortlistRequest
from services.matching.standards.schemas import Point, Strict


class RequestStatus(StrEnum):
    draft = "draft"  # the buyer is writing it; suppliers see nothing
    open = "open"  # invitations sent; suppliers answer until respond_by
    closed = "closed"  # no more answers (the deadline passed or the buyer closed it); awaiting award
    awarded = "awarded"
    cancelled = "cancelled"


class InvitationStatus(StrEnum):
    invited = "invited"
    bid = "bid"
    no_bid = "no_bid"
    no_answer = "no_answer"  # the request closed without an answer
    awarded = "awarded"
    not_awarded = "not_awarded"
    cancelled = "cancelled"  # the request was cancelled


class AnswerKind(StrEnum):
    bid = "bid"
    no_bid = "no_bid"


class NoBidReason(StrEnum):
    capacity = "capacity"  # cannot make that quantity by then
    lead_time = "lead_time"
    price = "price"  # the target price is below cost
    specification = "specification"  # cannot meet what is asked
    certification = "certification"
    not_interested = "not_interested"
    other = "other"


class Delivery(Strict):
    """Where the goods go: a point, a subdivision or a country, and optionally a place name."""

    point: Point | None = None
    subdivision: SubdivisionCode | None = None
    country: CountryCode | None = None
    place: line(200) | None = Field(default=None, description="e.g. 'Plant 2, Guayaquil'")  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _somewhere(self) -> Self:
        if self.point is None and self.subdivision is None and self.country is None:
            raise rule_broken("Delivery", [(("point",), "give a delivery point, subdivision or country")])
        if self.subdivision and self.country and not self.subdivision.startswith(f"{self.country}-"):
            raise rule_broken("Delivery", [(("subdivision",), f"is not in country {self.country}")])
        return self


class InviteFromShortlist(Strict):
    """Chosen suppliers of one of your stored shortlists (development candidates allowed): firms,
    or networks listed in its consortia."""

    shortlist_id: RecordId
    supplier_ids: Annotated[list[RecordId], Field(min_length=1, max_length=200)]


class InviteTopOf(Strict):
    """The top ``top`` firms of a fresh shortlist from these standards; when it asks
    include_consortia, also its ranked consortia (up to its consortium_limit)."""

    shortlist: ShortlistRequest = Field(description="As POST /v1/shortlists; its limit is replaced by top")
    top: Annotated[int, Strict_(), Field(ge=1, le=200)]


class RequestFields(Strict):
    title: Name
    description: Note | None = Field(default=None, description="What is needed, in words")
    quantity: PositiveQuantity
    unit: line(30, 1) = Field(description="e.g. pieces, kg, m2")  # type: ignore[valid-type]
    delivery: Delivery
    needed_by: Day = Field(description="When the goods must be delivered")
    respond_by: AwareDatetime = Field(description="Answers are accepted until this moment")
    target_price: PositiveQuantity | None = Field(default=None, description="Per unit, in currency")
    currency: CurrencyCode | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_request_fields(self)
        return self


def check_request_fields(fields: RequestFields | RequestUpdate) -> None:
    """Cross-field rules of a request, each error at its field."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if (fields.target_price is None) != (fields.currency is None):
        missing = "currency" if fields.currency is None else "target_price"
        problems.append(((missing,), "target_price and currency go together"))
    if fields.respond_by is not None and fields.needed_by is not None and fields.needed_by < fields.respond_by.date():
        problems.append((("needed_by",), f"is before respond_by ({fields.respond_by.date()})"))
    if problems:
        raise rule_broken(type(fields).__name__, problems)


class RequestCreate(RequestFields):
    """A new request, as a draft. Invite from a stored shortlist or from a fresh one."""

    invite: InviteFromShortlist | InviteTopOf


class RequestUpdate(Strict):
    """Changes to a draft (all optional); the invitations are replaced when invite is given."""

    title: Name | None = None
    description: Note | None = None
    quantity: PositiveQuantity | None = None
    unit: line(30, 1) | None = None  # type: ignore[valid-type]
    delivery: Delivery | None = None
    needed_by: Day | None = None
    respond_by: AwareDatetime | None = None
    target_price: PositiveQuantity | None = None
    currency: CurrencyCode | None = None
    invite: InviteFromShortlist | InviteTopOf | None = None


class Extension(Strict):
    respond_by: AwareDatetime = Field(description="The new deadline, later than the current one")
    note: line(500) | None = None  # type: ignore[valid-type]


class Cancellation(Strict):
    reason: line(500, 1)  # type: ignore[valid-type]


class StatusEvent(BaseModel):
    status: RequestStatus
    at: datetime
    by: str = Field(description="The key that made the change")
    note: str | None = None


class AnswerFields(Strict):
    kind: AnswerKind
    no_bid_reason: NoBidReason | None = None
    unit_price: PositiveQuantity | None = Field(default=None, description="Per unit, in currency")
    currency: CurrencyCode | None = None
    lead_time_days: Count | None = Field(default=None, description="Days from award to delivery")
    capacity_offered: Quantity | None = Field(default=None, description="How much of the quantity it can supply")
    note: Note | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.kind is AnswerKind.bid:
            required = ("unit_price", "currency", "lead_time_days")
            problems += [((f,), "a bid needs it") for f in required if getattr(self, f) is None]
            if self.no_bid_reason is not None:
                problems.append((("no_bid_reason",), "a bid has none"))
        else:
            if self.no_bid_reason is None:
                problems.append((("no_bid_reason",), "a no-bid needs one"))
            offered = ("unit_price", "lead_time_days", "capacity_offered")
            problems += [((f,), "a no-bid offers none") for f in offered if getattr(self, f) is not None]
        if problems:
            raise rule_broken(type(self).__name__, problems)
        return self


class AnswerCreate(AnswerFields):
    supplier_id: RecordId | None = Field(
        default=None, description="The supplier answered for; a supplier's own key may leave it out"
    )


class AnswerPublic(AnswerFields):
    supplier_id: str
    version: int
    submitted_at: datetime
    submitted_by: str = Field(description="The key that submitted this version")
    submitted_by_role: str
    on_behalf: bool = Field(description="Submitted by a broker or agency for the supplier")
    member_id: str | None = Field(
        default=None, description="For a network: the member firm whose own key submitted this version"
    )


class InvitationPublic(BaseModel):
    """An invited supplier: how it ranked in the shortlist, its status and its answer."""

    supplier_id: str
    supplier_kind: SupplierKind = Field(default=SupplierKind.firm, description="firm, or network (a consortium)")
    name: str
    status: InvitationStatus
    rank: int
    development: bool = Field(description="A development candidate: it failed one upgradeable constraint")
    score: float
    criteria: list[CriterionScore]
    gap: GapPublic | None
    gap_member_id: str | None = Field(
        default=None, description="For a network's gap: the member lacking the certification"
    )
    members: list[MemberShare] | None = Field(
        default=None, description="A network's members as its shortlist listed them; null for a firm"
    )
    answer: AnswerPublic | None
    awarded_quantity: float | None
    awarded_members: list[MemberShare] | None = Field(
        default=None, description="A network's award: each member's share and quantity; null otherwise"
    )


class DeliveryPublic(BaseModel):
    point: Point | None = None
    subdivision: str | None = None
    country: str | None = None
    place: str | None = None


class RequestPublic(BaseModel):
    id: str
    title: str
    description: str | None
    quantity: float
    unit: str
    delivery: DeliveryPublic
    needed_by: date
    respond_by: datetime
    target_price: float | None
    currency: str | None
    status: RequestStatus
    buyer_firm_id: str | None
    shortlist_id: str
    invitations: list[InvitationPublic] = Field(description="Every invitation to the buyer; only its own to a supplier")
    history: list[StatusEvent]
    version: int
    created_at: datetime
    updated_at: datetime


class MemberAward(Strict):
    firm_id: RecordId
    quantity: Quantity = Field(description="Its part of the network's awarded quantity")


class Award(Strict):
    supplier_id: RecordId
    quantity: PositiveQuantity
    members: Annotated[list[MemberAward], Field(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="A network's award: its members' parts, adding up to quantity; by default the shares "
        "its shortlist listed",
    )


class AwardCreate(Strict):
    awards: Annotated[list[Award], Field(min_length=1, max_length=200)]
    note: line(500) | None = None  # type: ignore[valid-type]


class MessageCreate(Strict):
    supplier_id: RecordId | None = Field(
        default=None, description="The thread's supplier; a supplier's own key may leave it out"
    )
    body: Annotated[Note, Field(min_length=1, description="Plain text")]

    @model_validator(mode="after")
    def _text(self) -> Self:
        if not self.body.strip():
            raise rule_broken("MessageCreate", [(("body",), "is empty")])
        return self


class MessagePublic(BaseModel):
    id: str
    request_id: str
    supplier_id: str
    side: str = Field(description="buyer or supplier")
    author_role: str
    body: str
    created_at: datetime


class RequestQuery(ListQuery):
    status: RequestStatus | None = None


class MessageQuery(ListQuery):
    supplier_id: RecordId | None = Field(default=None, description="The thread (required for the buyer)")


class InvitationQuery(ListQuery):
    supplier_id: RecordId | None = None
    status: InvitationStatus | None = None
