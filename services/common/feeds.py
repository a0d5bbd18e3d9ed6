"""The change feeds' records as their followers read them: the fields they rely on.

A change's ``data`` is the record as its owner's API shows it (the registry's
``FirmPublic``, matching's ``ShortlistPublic`` and ``LinkagePublic``…). A follower
does not read it as a dict: it reads it through one of these models, which name only
the fields some follower uses (matching's catalogue, reporting's read model), with
every one of them required, so a follower can read no field that is not named here.

``tests/common/test_feeds.py`` checks every model against the publisher's public
schema, so renaming or dropping a field there fails a test. Should a record still
come without a field named here (or with one of the wrong type), ``read_record``
raises ``FeedContractError``: the follower does not apply the page, its cursor
stays, and it logs ``feed_contract_broken`` and tries the page again (with backoff)
until the publisher is fixed. A follower never drops a change silently.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError


class FeedContractError(ValueError):
    """A feed record without a field its followers rely on, or with one of the wrong type."""


class FeedRecord(BaseModel):
    """A record of a change feed; fields the publisher adds and no follower reads are ignored."""

    model_config = ConfigDict(extra="ignore")


R = TypeVar("R", bound=FeedRecord)


def read_record(model: type[R], data: dict[str, Any]) -> R:
    """``data`` (a change's record) read as ``model``; ``FeedContractError`` if it does not fit."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise FeedContractError(f"{model.__name__} {data.get('id')!r} breaks the feed contract: {problems}") from exc


# --- the registry's feed ---------------------------------------------------------------


class RegistryRecord(FeedRecord):
    """What every registry record carries (``RecordPublic``)."""

    id: str
    agency_id: str
    created_at: datetime


class AgencyRecord(FeedRecord):
    id: str
    name: str
    country: str


class ProgrammeRecord(RegistryRecord):
    name: str
    country: str
    phase: str
    start_date: date
    end_date: date | None


class ClusterRecord(RegistryRecord):
    programme_id: str | None
    name: str
    country: str
    subdivision: str | None
    sector_isic: str
    latitude: float | None
    longitude: float | None
    jobs: int | None
    smes: int | None


class CertificateRecord(FeedRecord):
    scheme: str
    valid_from: date | None
    valid_until: date | None


class ObservedPerformanceRecord(FeedRecord):
    """A supplier's performance from buyers' scorecards (the registry's ``ObservedPerformance``)."""

    quality_score: float
    on_time_delivery_rate: float
    scorecards: int
    buyers: int


class InclusionClaimRecord(FeedRecord):
    """A firm's women-owned, women-led or youth-led claim (the registry's ``InclusionClaim``)."""

    value: bool
    attested_by: str
    attested_on: date


class FirmRecord(FeedRecord):
    """A firm as matching's catalogue reads it: a supplier's attributes."""

    id: str
    agency_id: str
    name: str
    roles: list[str]
    size_class: str
    country: str
    subdivision: str | None
    latitude: float | None
    longitude: float | None
    isic_codes: list[str]
    hs_codes: list[str]
    certifications: list[CertificateRecord]
    monthly_capacity: float | None
    capacity_unit: str | None
    quality_score: float | None
    on_time_delivery_rate: float | None
    capabilities: str | None
    cluster_ids: list[str]
    observed_performance: ObservedPerformanceRecord | None = None  # absent from records older than it
    # Inclusion claims: absent from records older than them (as not recorded).
    women_owned: InclusionClaimRecord | None = None
    women_led: InclusionClaimRecord | None = None
    youth_led: InclusionClaimRecord | None = None


class RegisteredCertificateRecord(CertificateRecord):
    certificate_number: str | None


class RegisteredFirmRecord(RegistryRecord):
    """A firm as reporting's read model reads it: who, where, and what it holds since when."""

    name: str
    roles: list[str]
    size_class: str
    employees: int | None
    country: str
    subdivision: str | None
    certifications: list[RegisteredCertificateRecord]
    cluster_ids: list[str]
    # Absent from records older than them (as not recorded).
    women_employees: int | None = None
    women_owned: InclusionClaimRecord | None = None
    women_led: InclusionClaimRecord | None = None
    youth_led: InclusionClaimRecord | None = None


class InstitutionRecord(RegistryRecord):
    name: str
    kind: str
    country: str
    subdivision: str | None
    cluster_ids: list[str]


class BrokerRecord(RegistryRecord):
    name: str
    country: str
    trained_on: date | None
    certified_on: date | None
    cluster_ids: list[str]


class MemberRecord(FeedRecord):
    firm_id: str
    role: str


class JointActionRecord(FeedRecord):
    kind: str
    started_on: date | None


class NetworkRecord(RegistryRecord):
    name: str
    kind: str
    status: str
    cluster_id: str | None
    broker_id: str | None
    formed_on: date | None
    members: list[MemberRecord]
    joint_actions: list[JointActionRecord]


class ParticipantsRecord(FeedRecord):
    entrepreneurs: int
    brokers: int
    policy_makers: int
    private_sector_leaders: int
    academics: int
    other: int


class FirmMergeRecord(FeedRecord):
    """A duplicate merge (``firm_merge``): ``merged_id`` was merged into ``survivor_id``."""

    id: str
    survivor_id: str
    merged_id: str


class ActivityRecord(FeedRecord):
    id: str
    agency_id: str
    title: str
    kind: str
    start_date: date
    end_date: date | None
    programme_id: str | None
    cluster_id: str | None
    country: str
    subdivision: str | None
    participants: ParticipantsRecord
    women_participants: int | None


class FirmResultRecord(FeedRecord):
    id: str
    agency_id: str
    firm_id: str
    period: str  # 2025 or 2025-Q2
    currency: str | None
    sales: float | None
    exports: float | None
    investments: float | None
    employees: int | None
    women_employees: int | None
    new_products: int | None


# --- matching's feed: the public record, plus its owner and the buyer firm -------------


class GapRecord(FeedRecord):
    kind: str
    scheme: str | None


class ListedRecord(FeedRecord):
    rank: int
    supplier_id: str
    gap: GapRecord | None


class ListedConsortiumRecord(FeedRecord):
    rank: int
    network_id: str


class ConsortiaRecord(FeedRecord):
    items: list[ListedConsortiumRecord]
    development: list[ListedConsortiumRecord] | None


class ShortlistRecord(FeedRecord):
    id: str
    owner: str
    firm_id: str | None
    created_at: datetime
    eligible_count: int
    items: list[ListedRecord]
    development_count: int | None
    development: list[ListedRecord] | None
    consortia: ConsortiaRecord | None = None  # the networks listed, when asked (older records: none)


class StageRecord(FeedRecord):
    stage: str
    on: date


class MemberShareRecord(FeedRecord):
    firm_id: str
    share: float


class LinkageRecord(FeedRecord):
    id: str
    shortlist_id: str
    supplier_id: str
    firm_id: str | None
    stage: str
    gap: dict[str, Any] | None  # the listed supplier's gap, as ``LinkagePublic`` has it
    created_at: datetime
    history: list[StageRecord]
    # A network as the supplier, and its members (older records: a firm, none).
    supplier_kind: str = "firm"
    members: list[MemberShareRecord] | None = None


class StatusEventRecord(FeedRecord):
    status: str
    at: datetime


class AnswerRecord(FeedRecord):
    kind: str
    submitted_at: datetime
    on_behalf: bool


class InvitationRecord(FeedRecord):
    supplier_id: str
    rank: int
    development: bool
    status: str
    answer: AnswerRecord | None
    awarded_quantity: float | None


class RequestRecord(FeedRecord):
    """A request for quotation (matching's ``RequestPublic``), with the change's agency: the buyer's."""

    id: str
    agency_id: str | None  # the change's, added by the follower: the record itself names none
    owner: str
    buyer_firm_id: str | None
    shortlist_id: str
    status: str
    quantity: float
    unit: str
    respond_by: datetime
    history: list[StatusEventRecord]
    invitations: list[InvitationRecord]
    created_at: datetime


class ScorecardRecord(FeedRecord):
    id: str
    linkage_id: str
    supplier_id: str
    buyer_firm_id: str | None
    kind: str
    observed_on: date
    quality: float
    on_time: float
    status: str
    counts: bool
    created_at: datetime


class StandardsMatchRecord(FeedRecord):
    """A supplier newly meeting saved buyer standards with an alert (``standards_match``)."""

    id: str
    standards_id: str
    owner: str
    agency_id: str | None
    buyer_firm_id: str | None
    supplier_id: str
    score: float
    rank: int | None
    criteria: list[dict[str, Any]]
    matched_at: datetime


class CertificateExpiringRecord(FeedRecord):
    """A certificate of a supplier in an active linkage that expires soon (``certificate_expiring``)."""

    id: str
    linkage_id: str
    owner: str
    agency_id: str | None
    buyer_firm_id: str | None
    supplier_id: str
    scheme: str
    valid_until: date
    days_ahead: int
