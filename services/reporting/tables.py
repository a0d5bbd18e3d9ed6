"""The reporting service's database: a read model of the registry and matching feeds.

Each table holds the columns indicators filter, group and count on, taken from the
records the feeds carry (``data``: the record as the owning service's API shows
it). Multi-valued attributes (a firm's clusters and certifications, a network's
members and joint actions, a shortlist's suppliers, a linkage's stage history) get
child tables, rewritten with their record. Rows are keyed by the source record's
id, so applying a change twice leaves the same rows: replaying a feed from zero
rebuilds the same read model.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.common.app import database_tables
from services.common.changefeed import feed_cursor_table
from services.common.db import UTCDateTime, new_registry

mapper_registry = new_registry()
metadata = mapper_registry.metadata
database_tables(metadata, outbox=False)
FEED_CURSORS = feed_cursor_table(metadata)


class ReportingTable(SQLModel, registry=mapper_registry):
    """Base of the reporting service's table models."""


class FeedState(ReportingTable, table=True):
    """How fresh each followed feed is: the last change applied, and when."""

    __tablename__ = "feed_state"

    feed: str = Field(primary_key=True, max_length=100)
    last_seq: int
    last_change_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    applied_at: datetime = Field(sa_type=UTCDateTime())


# --- registry records -----------------------------------------------------------------


class Agency(ReportingTable, table=True):
    __tablename__ = "agencies"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    country: str | None = Field(default=None, max_length=2)


class Programme(ReportingTable, table=True):
    __tablename__ = "programmes"

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str = Field(index=True, max_length=40)
    name: str = Field(max_length=200)
    country: str = Field(max_length=2)
    phase: str = Field(max_length=20)
    start_date: date = Field(sa_type=Date)
    end_date: date | None = Field(default=None, sa_type=Date)


class Cluster(ReportingTable, table=True):
    __tablename__ = "clusters"

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str = Field(index=True, max_length=40)
    programme_id: str | None = Field(default=None, index=True, max_length=40)
    name: str = Field(max_length=200)
    country: str = Field(index=True, max_length=2)
    subdivision: str | None = Field(default=None, max_length=6)
    sector_isic: str = Field(max_length=4)
    latitude: float | None = None
    longitude: float | None = None
    jobs: int | None = None
    smes: int | None = None
    registered_on: date = Field(sa_type=Date)


class Firm(ReportingTable, table=True):
    __tablename__ = "firms"

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str = Field(index=True, max_length=40)
    name: str = Field(max_length=200)
    size_class: str = Field(max_length=10)
    is_supplier: bool
    is_lead_firm: bool
    country: str = Field(index=True, max_length=2)
    subdivision: str | None = Field(default=None, max_length=6)
    employees: int | None = None
    registered_on: date = Field(sa_type=Date)
    # Inclusion claims' values (None: not recorded) and women among employees, where known.
    women_owned: bool | None = None
    women_led: bool | None = None
    youth_led: bool | None = None
    women_employees: int | None = None


class FirmCluster(ReportingTable, table=True):
    __tablename__ = "firm_clusters"

    firm_id: str = Field(primary_key=True, max_length=40)
    cluster_id: str = Field(primary_key=True, index=True, max_length=40)


class FirmCertification(ReportingTable, table=True):
    """A certificate a firm holds; ``obtained_on`` is its valid_from, else the day the
    registry first recorded it (the feed's change time, so replays agree)."""

    __tablename__ = "firm_certifications"
    __table_args__ = (Index("ix_firm_certifications_firm_scheme", "firm_id", "scheme"),)

    firm_id: str = Field(primary_key=True, max_length=40)
    position: int = Field(primary_key=True)
    scheme: str = Field(max_length=40)
    certificate_number: str | None = Field(default=None, max_length=100)
    valid_from: date | None = Field(default=None, sa_type=Date)
    valid_until: date | None = Field(default=None, sa_type=Date)
    recorded_on: date = Field(sa_type=Date)
    obtained_on: date = Field(sa_type=Date)


class Institution(ReportingTable, table=True):
    __tablename__ = "institutions"

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str = Field(index=True, max_length=40)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=40)
    country: str = Field(max_length=2)
    subdivision: str | None = Field(default=None, max_length=6)
    registered_on: date = Field(sa_type=Date)


class InstitutionCluster(ReportingTable, table=True):
    __tablename__ = "institution_clusters"

    institution_id: str = Field(primary_key=True, max_length=40)
    cluster_id: str = Field(primary_key=True, index=True, max_length=40)


class Broker(ReportingTable, table=True):
    __tablename__ = "brokers"

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str = Field(index=True, max_length=40)
    name: str = Field(max_length=200)
    country: str = Field(max_length=2)
    trained_on: date | None = Field(default=None, sa_type=Date)
    certified_on: date | None = Field(default=None, sa_type=Date)
    registered_on: date = Field(sa_type=Date)


class BrokerCluster(ReportingTable, table=True):
    __tablename__ = "broker_clusters"

    broker_id: str = Field(primary_key=True, max_length=40)
    cluster_id: str = Field(primary_key=True, index=True, max_length=40)


class Network(ReportingTable, table=True):
    __tablename__ = "networks"

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str = Field(index=True, max_length=40)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    status: str = Field(max_length=20)
    cluster_id: str | None = Field(default=None, index=True, max_length=40)
    broker_id: str | None = Field(default=None, max_length=40)
    formed_on: date | None = Field(default=None, sa_type=Date)
    registered_on: date = Field(sa_type=Date)


class NetworkMember(ReportingTable, table=True):
    __tablename__ = "network_members"

    network_id: str = Field(primary_key=True, max_length=40)
    firm_id: str = Field(primary_key=True, index=True, max_length=40)
    role: str = Field(max_length=20)


class JointAction(ReportingTable, table=True):
    __tablename__ = "joint_actions"

    network_id: str = Field(primary_key=True, max_length=40)
    position: int = Field(primary_key=True)
    kind: str = Field(max_length=40)
    started_on: date | None = Field(default=None, sa_type=Date)


class Activity(ReportingTable, table=True):
    __tablename__ = "activities"

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str = Field(index=True, max_length=40)
    title: str = Field(max_length=200)
    kind: str = Field(max_length=40)
    start_date: date = Field(sa_type=Date, index=True)
    end_date: date | None = Field(default=None, sa_type=Date)
    programme_id: str | None = Field(default=None, index=True, max_length=40)
    cluster_id: str | None = Field(default=None, index=True, max_length=40)
    country: str = Field(max_length=2)
    subdivision: str | None = Field(default=None, max_length=6)
    entrepreneurs: int = 0
    brokers: int = 0
    policy_makers: int = 0
    private_sector_leaders: int = 0
    academics: int = 0
    other: int = 0
    women_participants: int | None = None  # women among the participants, where the activity records it


# --- matching records -----------------------------------------------------------------


class Shortlist(ReportingTable, table=True):
    __tablename__ = "shortlists"

    id: str = Field(primary_key=True, max_length=40)
    owner: str = Field(max_length=80)
    buyer_firm_id: str | None = Field(default=None, max_length=40)
    issued_at: datetime = Field(sa_type=UTCDateTime())
    issued_on: date = Field(sa_type=Date, index=True)
    eligible_count: int
    development_count: int | None = None


class ShortlistSupplier(ReportingTable, table=True):
    """A supplier a shortlist listed: a ranked ``item`` or a ``development`` candidate with its gap."""

    __tablename__ = "shortlist_suppliers"

    shortlist_id: str = Field(primary_key=True, max_length=40)
    listed_as: str = Field(primary_key=True, max_length=12)
    supplier_id: str = Field(primary_key=True, index=True, max_length=40)
    rank: int
    gap_kind: str | None = Field(default=None, max_length=20)
    gap_scheme: str | None = Field(default=None, max_length=40)


class ShortlistConsortium(ReportingTable, table=True):
    """A network a shortlist listed in its consortia: a ranked ``item`` or a ``development`` candidate."""

    __tablename__ = "shortlist_consortia"

    shortlist_id: str = Field(primary_key=True, max_length=40)
    listed_as: str = Field(primary_key=True, max_length=12)
    network_id: str = Field(primary_key=True, index=True, max_length=40)
    rank: int


class Linkage(ReportingTable, table=True):
    __tablename__ = "linkages"

    id: str = Field(primary_key=True, max_length=40)
    shortlist_id: str = Field(index=True, max_length=40)
    supplier_id: str = Field(index=True, max_length=40)
    supplier_kind: str = Field(default="firm", max_length=10)  # firm, or network (a consortium)
    buyer_firm_id: str | None = Field(default=None, max_length=40)
    stage: str = Field(max_length=20)
    gap_kind: str | None = Field(default=None, max_length=20)
    gap_scheme: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime())


class LinkageMember(ReportingTable, table=True):
    """A member firm of a linkage's network supplier, with its share (as listed, or as awarded)."""

    __tablename__ = "linkage_members"

    linkage_id: str = Field(primary_key=True, max_length=40)
    firm_id: str = Field(primary_key=True, index=True, max_length=40)
    share: float


class LinkageEvent(ReportingTable, table=True):
    """One entry of a linkage's stage history: the stage reached and its date."""

    __tablename__ = "linkage_events"

    linkage_id: str = Field(primary_key=True, max_length=40)
    position: int = Field(primary_key=True)
    stage: str = Field(max_length=20)
    reached_on: date = Field(sa_type=Date)


class Request(ReportingTable, table=True):
    """A buyer's request for quotation, with the days it moved on (from its status history).

    ``agency_id`` is the buyer's agency (the change's). ``answers_closed_at`` is when answering
    stopped: the last recorded close, or the deadline of a request still recorded open (the
    feed shows it open until the next write records the close); none for drafts and
    cancelled requests."""

    __tablename__ = "requests"

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str | None = Field(default=None, index=True, max_length=40)
    owner: str = Field(max_length=80)
    buyer_firm_id: str | None = Field(default=None, max_length=40)
    shortlist_id: str = Field(max_length=40)
    status: str = Field(max_length=20)
    quantity: float
    unit: str = Field(max_length=30)
    respond_by: datetime = Field(sa_type=UTCDateTime())
    opened_on: date | None = Field(default=None, sa_type=Date, index=True)
    answers_closed_on: date | None = Field(default=None, sa_type=Date, index=True)
    awarded_on: date | None = Field(default=None, sa_type=Date, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime())


class RequestInvitation(ReportingTable, table=True):
    """A supplier invited to a request: its status, its answer's kind and day, what it was awarded."""

    __tablename__ = "request_invitations"

    request_id: str = Field(primary_key=True, max_length=40)
    supplier_id: str = Field(primary_key=True, index=True, max_length=40)
    rank: int
    development: bool
    status: str = Field(max_length=20)
    answer_kind: str | None = Field(default=None, max_length=10)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    answered_on: date | None = Field(default=None, sa_type=Date)
    on_behalf: bool | None = None
    awarded_quantity: float | None = None


class Scorecard(ReportingTable, table=True):
    """A delivery or period scorecard of a linkage; ``counts`` while settled or upheld."""

    __tablename__ = "scorecards"

    id: str = Field(primary_key=True, max_length=40)
    linkage_id: str = Field(index=True, max_length=40)
    supplier_id: str = Field(index=True, max_length=40)
    buyer_firm_id: str | None = Field(default=None, max_length=40)
    kind: str = Field(max_length=20)
    observed_on: date = Field(sa_type=Date, index=True)
    quality: float
    on_time: float
    status: str = Field(max_length=20)
    counts: bool
    created_at: datetime = Field(sa_type=UTCDateTime())


class FirmResult(ReportingTable, table=True):
    """A firm's figures for one period (a year or a quarter), with the period's first and
    last day and its length in months, so outcomes compare like with like."""

    __tablename__ = "firm_results"
    # A firm's results by period end: its baseline and latest result (indicators/service.py).
    __table_args__ = (Index("ix_firm_results_firm_id_period_end", "firm_id", "period_end"),)

    id: str = Field(primary_key=True, max_length=40)
    agency_id: str = Field(index=True, max_length=40)
    firm_id: str = Field(max_length=40)
    period: str = Field(max_length=7)
    period_start: date = Field(sa_type=Date)
    period_end: date = Field(sa_type=Date, index=True)
    months: int  # 12 for a year, 3 for a quarter
    currency: str | None = Field(default=None, max_length=3)
    sales: float | None = None
    exports: float | None = None
    investments: float | None = None
    employees: int | None = None
    women_employees: int | None = None
    new_products: int | None = None


# --- the reporting service's own records: results frameworks -----------------------------


class ResultIndicator(ReportingTable, table=True):
    """An indicator of a programme's results framework: the result it serves, its baseline
    and means of verification; its targets are ``ResultTarget`` rows. Owned by the
    programme's agency (``agency_id``, from the registry feed when it was created)."""

    __tablename__ = "result_indicators"
    __table_args__ = (UniqueConstraint("programme_id", "indicator"),)

    id: str = Field(primary_key=True, max_length=40)
    programme_id: str = Field(index=True, max_length=40)
    agency_id: str = Field(index=True, max_length=40)
    indicator: str = Field(max_length=60)
    level: str = Field(max_length=10)
    statement: str = Field(max_length=500)
    baseline_value: float
    baseline_date: date = Field(sa_type=Date)
    means_of_verification: str = Field(max_length=1000)
    version: int
    created_at: datetime = Field(sa_type=UTCDateTime())
    updated_at: datetime = Field(sa_type=UTCDateTime())


class ResultTarget(ReportingTable, table=True):
    """A target of a framework indicator for one period (a year or a milestone)."""

    __tablename__ = "result_targets"

    result_indicator_id: str = Field(primary_key=True, max_length=40)
    position: int = Field(primary_key=True)
    label: str = Field(max_length=40)
    start: date | None = Field(default=None, sa_type=Date)
    end: date = Field(sa_type=Date)
    value: float


def table_of(model: type[ReportingTable]):  # type: ignore[no-untyped-def]
    """The Core table of a model (queries are written against tables)."""
    return model.__table__  # type: ignore[attr-defined]
