"""The matching service's database: buyer standards, shortlists, requests and linkages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from services.common.app import database_tables
from services.common.db import UTCDateTime, new_registry

mapper_registry = new_registry()
metadata = mapper_registry.metadata
database_tables(metadata)
OUTBOX = metadata.tables["outbox"]


class MatchingTable(SQLModel, registry=mapper_registry):
    """Base of the matching service's table models."""


class OwnedColumns(MatchingTable):
    """Who owns a matching record: a lead firm, an agency or an integrator key."""

    id: str = Field(primary_key=True, max_length=40)
    owner: str = Field(index=True, max_length=80)
    firm_id: str | None = Field(default=None, index=True, max_length=40)  # the buyer, when known
    agency_id: str | None = Field(default=None, index=True, max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime())


class BuyerStandard(OwnedColumns, table=True):
    """A lead firm's saved buyer standards; each change makes a new version."""

    __tablename__ = "buyer_standards"

    name: str = Field(max_length=200)
    version: int = 1
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(sa_type=UTCDateTime())


class BuyerStandardVersion(MatchingTable, table=True):
    __tablename__ = "buyer_standard_versions"

    standards_id: str = Field(primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    name: str = Field(max_length=200)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime())


class Shortlist(OwnedColumns, table=True):
    """A shortlist as it was returned: request, catalogue version and ranked suppliers."""

    __tablename__ = "shortlists"

    standards_id: str | None = Field(default=None, index=True, max_length=40)
    standards_version: int | None = None
    catalogue_version: str = Field(max_length=40)
    request: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class Linkage(OwnedColumns, table=True):
    """What came of a shortlisted supplier: the stage reached, with dates and actions."""

    __tablename__ = "linkages"
    __table_args__ = (Index("ix_linkages_shortlist_supplier", "shortlist_id", "supplier_id", unique=True),)

    shortlist_id: str = Field(max_length=40)
    supplier_id: str = Field(index=True, max_length=40)
    supplier_kind: str = Field(default="firm", max_length=10)  # firm, or network (a consortium)
    # A network's members: as its shortlist listed them (firm_id, name, share), then as awarded (with quantity).
    members: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    request_id: str | None = Field(default=None, index=True, max_length=40)  # the request that last moved it
    stage: str = Field(max_length=20, index=True)
    history: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    development_actions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    gap: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    notes: str | None = None
    version: int = 1
    updated_at: datetime = Field(sa_type=UTCDateTime())


class BuyerRequest(OwnedColumns, table=True):
    """A buyer's request for quotation to invited suppliers: draft, open, closed, awarded or cancelled."""

    __tablename__ = "requests"

    title: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    quantity: float
    unit: str = Field(max_length=30)
    delivery: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    needed_by: date
    respond_by: datetime = Field(sa_type=UTCDateTime())
    target_price: float | None = None
    currency: str | None = Field(default=None, max_length=3)
    shortlist_id: str = Field(index=True, max_length=40)
    status: str = Field(index=True, max_length=20)
    history: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    version: int = 1
    updated_at: datetime = Field(sa_type=UTCDateTime())


class Invitation(MatchingTable, table=True):
    """One invited supplier of a request: how it ranked, and its answer (one per request, revisable)."""

    __tablename__ = "request_invitations"
    __table_args__ = (Index("ix_request_invitations_request_supplier", "request_id", "supplier_id", unique=True),)

    id: str = Field(primary_key=True, max_length=40)
    request_id: str = Field(max_length=40)
    supplier_id: str = Field(index=True, max_length=40)
    supplier_name: str = Field(max_length=200)
    supplier_agency_id: str | None = Field(default=None, index=True, max_length=40)
    supplier_kind: str = Field(default="firm", max_length=10)  # firm, or network (a consortium)
    ranking: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # the shortlist item
    # A network's members as the shortlist listed them (firm_id, name, share); awarded: with quantities.
    members: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    awarded_members: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    status: str = Field(max_length=20)
    answer: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    answer_version: int = 0
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    awarded_quantity: float | None = None
    created_at: datetime = Field(sa_type=UTCDateTime())


class InvitationMember(MatchingTable, table=True):
    """The member firms of an invited network, so a member's own key finds the invitations it may answer."""

    __tablename__ = "request_invitation_members"

    invitation_id: str = Field(primary_key=True, max_length=40)
    firm_id: str = Field(primary_key=True, index=True, max_length=40)


class InvitationCluster(MatchingTable, table=True):
    """The clusters of an invited supplier, so a broker finds the invitations it may answer."""

    __tablename__ = "request_invitation_clusters"

    invitation_id: str = Field(primary_key=True, max_length=40)
    cluster_id: str = Field(primary_key=True, index=True, max_length=40)


class RequestMessage(MatchingTable, table=True):
    """A clarification: one thread per request and invited supplier, in plain text."""

    __tablename__ = "request_messages"
    __table_args__ = (Index("ix_request_messages_thread", "request_id", "supplier_id", "id"),)

    id: str = Field(primary_key=True, max_length=40)
    request_id: str = Field(max_length=40)
    supplier_id: str = Field(max_length=40)
    side: str = Field(max_length=10)  # buyer or supplier
    author: str = Field(max_length=80)  # the key that wrote it
    author_role: str = Field(max_length=20)
    body: str = Field(max_length=4000)
    created_at: datetime = Field(sa_type=UTCDateTime())


class Scorecard(OwnedColumns, table=True):
    """A buyer's record of one delivery, or of a period, by a contracted supplier.

    It counts in the supplier's performance unless under appeal or voided.
    """

    __tablename__ = "scorecards"

    linkage_id: str = Field(index=True, max_length=40)
    supplier_id: str = Field(index=True, max_length=40)
    supplier_agency_id: str | None = Field(default=None, index=True, max_length=40)
    kind: str = Field(max_length=10)  # delivery or period
    details: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # as recorded
    observed_on: date  # the delivery date or the period's end: what recency is measured by
    quality: float  # accepted share of the delivery, or the period's figure
    on_time: float  # 1 or 0 for a delivery, the period's share
    status: str = Field(max_length=20, index=True)
    appeal: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    version: int = 1
    updated_at: datetime = Field(sa_type=UTCDateTime())


class SupplierPerformance(MatchingTable, table=True):
    """A supplier's performance from its counting scorecards (what the registry is told)."""

    __tablename__ = "supplier_performance"

    supplier_id: str = Field(primary_key=True, max_length=40)
    supplier_agency_id: str | None = Field(default=None, max_length=40)
    body: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # None: no scorecards
    version: int = 1


class StandardsAlert(MatchingTable, table=True):
    """An alert on saved buyer standards: publish ``standards_match`` when a supplier newly meets them.

    Its owner is the standards' owner; ``min_score`` and ``top_n`` narrow what counts as meeting them.
    """

    __tablename__ = "standards_alerts"

    standards_id: str = Field(primary_key=True, max_length=40)
    min_score: float | None = None
    top_n: int | None = None
    enabled_at: datetime = Field(sa_type=UTCDateTime())  # supplier changes before it raise no alert
    updated_at: datetime = Field(sa_type=UTCDateTime())


class AlertPublication(MatchingTable, table=True):
    """One published alert, by its natural key (``standards_match``: standards, supplier and
    supplier version; ``certificate_expiring``: linkage, scheme and expiry date), written in the
    outbox row's transaction: a second replica's insert of the same key does nothing."""

    __tablename__ = "alert_publications"

    kind: str = Field(primary_key=True, max_length=30)
    key: str = Field(primary_key=True, max_length=200)
    change_id: str = Field(max_length=40)  # the published change's entity id
    created_at: datetime = Field(sa_type=UTCDateTime())
