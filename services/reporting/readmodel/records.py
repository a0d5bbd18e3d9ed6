"""From a feed record (the owning API's JSON) to read-model rows.

Each entity the reporting service keeps has an ``EntityMap``: the model its record is
read as (``services.common.feeds``), the main table, the function that turns the
record into its row, and its child tables with theirs.
Entities not listed here (certification schemes, firm merges, buyer standards,
supplier performance aggregates) are not needed by any indicator and are skipped.
A record is read with the change's ``agency_id`` added where it names none (a
request's agency is its buyer's, known from the change).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from sqlalchemy import Table

from services.common.feeds import (
    ActivityRecord,
    AgencyRecord,
    BrokerRecord,
    ClusterRecord,
    FeedRecord,
    FirmResultRecord,
    InstitutionRecord,
    LinkageRecord,
    NetworkRecord,
    ProgrammeRecord,
    RegisteredFirmRecord,
    RegistryRecord,
    RequestRecord,
    ScorecardRecord,
    ShortlistRecord,
    StatusEventRecord,
    read_record,
)
from services.reporting.tables import (
    Activity,
    Agency,
    Broker,
    BrokerCluster,
    Cluster,
    Firm,
    FirmCluster,
    FirmResult,
    Institution,
    InstitutionCluster,
    JointAction,
    Linkage,
    LinkageEvent,
    LinkageMember,
    Network,
    NetworkMember,
    Programme,
    Request,
    RequestInvitation,
    Scorecard,
    Shortlist,
    ShortlistConsortium,
    ShortlistSupplier,
    table_of,
)

R = TypeVar("R", bound=FeedRecord)
Row = dict[str, Any]


def registered_on(record: RegistryRecord) -> date:
    """The UTC day a registry record was created."""
    return record.created_at.date()


@dataclass(frozen=True)
class Child(Generic[R]):
    table: Table
    key: str  # the column holding the parent's id
    rows: Callable[[R], list[Row]]


@dataclass(frozen=True)
class EntityMap(Generic[R]):
    entity: str
    record: type[R]  # what the feed's record is read as (services.common.feeds)
    table: Table
    row: Callable[[R], Row]
    children: tuple[Child[R], ...] = ()

    def read(self, data: dict[str, Any]) -> R:
        """The change's record; ``FeedContractError`` when it lacks a field this map reads."""
        return read_record(self.record, data)


def _links(key: str) -> Child[Any]:
    tables: dict[str, Any] = {"firm_id": FirmCluster, "institution_id": InstitutionCluster, "broker_id": BrokerCluster}
    return Child(table_of(tables[key]), key, lambda d: [{key: d.id, "cluster_id": c} for c in d.cluster_ids])


AGENCY = EntityMap(
    "agency", AgencyRecord, table_of(Agency), lambda d: {"id": d.id, "name": d.name, "country": d.country}
)

PROGRAMME = EntityMap(
    "programme",
    ProgrammeRecord,
    table_of(Programme),
    lambda d: {
        "id": d.id,
        "agency_id": d.agency_id,
        "name": d.name,
        "country": d.country,
        "phase": d.phase,
        "start_date": d.start_date,
        "end_date": d.end_date,
    },
)

CLUSTER = EntityMap(
    "cluster",
    ClusterRecord,
    table_of(Cluster),
    lambda d: {
        "id": d.id,
        "agency_id": d.agency_id,
        "programme_id": d.programme_id,
        "name": d.name,
        "country": d.country,
        "subdivision": d.subdivision,
        "sector_isic": d.sector_isic,
        "latitude": d.latitude,
        "longitude": d.longitude,
        "jobs": d.jobs,
        "smes": d.smes,
        "registered_on": registered_on(d),
    },
)

FIRM = EntityMap(
    "firm",
    RegisteredFirmRecord,
    table_of(Firm),
    lambda d: {
        "id": d.id,
        "agency_id": d.agency_id,
        "name": d.name,
        "size_class": d.size_class,
        "is_supplier": "supplier" in d.roles,
        "is_lead_firm": "lead_firm" in d.roles,
        "country": d.country,
        "subdivision": d.subdivision,
        "employees": d.employees,
        "registered_on": registered_on(d),
        "women_owned": d.women_owned.value if d.women_owned else None,
        "women_led": d.women_led.value if d.women_led else None,
        "youth_led": d.youth_led.value if d.youth_led else None,
        "women_employees": d.women_employees,
    },
    (_links("firm_id"),),
)  # certifications: see ReadModelConsumer, they keep their first-seen day

INSTITUTION = EntityMap(
    "institution",
    InstitutionRecord,
    table_of(Institution),
    lambda d: {
        "id": d.id,
        "agency_id": d.agency_id,
        "name": d.name,
        "kind": d.kind,
        "country": d.country,
        "subdivision": d.subdivision,
        "registered_on": registered_on(d),
    },
    (_links("institution_id"),),
)

BROKER = EntityMap(
    "broker",
    BrokerRecord,
    table_of(Broker),
    lambda d: {
        "id": d.id,
        "agency_id": d.agency_id,
        "name": d.name,
        "country": d.country,
        "trained_on": d.trained_on,
        "certified_on": d.certified_on,
        "registered_on": registered_on(d),
    },
    (_links("broker_id"),),
)

NETWORK = EntityMap(
    "network",
    NetworkRecord,
    table_of(Network),
    lambda d: {
        "id": d.id,
        "agency_id": d.agency_id,
        "name": d.name,
        "kind": d.kind,
        "status": d.status,
        "cluster_id": d.cluster_id,
        "broker_id": d.broker_id,
        "formed_on": d.formed_on,
        "registered_on": registered_on(d),
    },
    (
        Child(
            table_of(NetworkMember),
            "network_id",
            lambda d: [{"network_id": d.id, "firm_id": m.firm_id, "role": m.role} for m in d.members],
        ),
        Child(
            table_of(JointAction),
            "network_id",
            lambda d: [
                {"network_id": d.id, "position": i, "kind": a.kind, "started_on": a.started_on}
                for i, a in enumerate(d.joint_actions)
            ],
        ),
    ),
)

PARTICIPANT_GROUPS = ("entrepreneurs", "brokers", "policy_makers", "private_sector_leaders", "academics", "other")

ACTIVITY = EntityMap(
    "activity",
    ActivityRecord,
    table_of(Activity),
    lambda d: {
        "id": d.id,
        "agency_id": d.agency_id,
        "title": d.title,
        "kind": d.kind,
        "start_date": d.start_date,
        "end_date": d.end_date,
        "programme_id": d.programme_id,
        "cluster_id": d.cluster_id,
        "country": d.country,
        "subdivision": d.subdivision,
        **d.participants.model_dump(include=set(PARTICIPANT_GROUPS)),
        "women_participants": d.women_participants,
    },
)


def period_days(period: str) -> tuple[date, date, int]:
    """The first and last day of a firm result's period (``2025`` or ``2025-Q2``) and its months."""
    year, _, quarter = period.partition("-Q")
    if not quarter:
        return date(int(year), 1, 1), date(int(year), 12, 31), 12
    first_month = 3 * (int(quarter) - 1) + 1
    following = date(int(year) + 1, 1, 1) if first_month == 10 else date(int(year), first_month + 3, 1)
    return date(int(year), first_month, 1), date.fromordinal(following.toordinal() - 1), 3


def _firm_result_row(d: FirmResultRecord) -> Row:
    start, end, months = period_days(d.period)
    return {
        "id": d.id,
        "agency_id": d.agency_id,
        "firm_id": d.firm_id,
        "period": d.period,
        "period_start": start,
        "period_end": end,
        "months": months,
        "currency": d.currency,
        "sales": d.sales,
        "exports": d.exports,
        "investments": d.investments,
        "employees": d.employees,
        "women_employees": d.women_employees,
        "new_products": d.new_products,
    }


FIRM_RESULT = EntityMap("firm_result", FirmResultRecord, table_of(FirmResult), _firm_result_row)


def _listed(d: ShortlistRecord) -> list[Row]:
    rows: list[Row] = []
    for listed_as, items in (("item", d.items), ("development", d.development or [])):
        for item in items:
            rows.append(
                {
                    "shortlist_id": d.id,
                    "listed_as": listed_as,
                    "supplier_id": item.supplier_id,
                    "rank": item.rank,
                    "gap_kind": item.gap.kind if item.gap else None,
                    "gap_scheme": item.gap.scheme if item.gap else None,
                }
            )
    return rows


def _consortia(d: ShortlistRecord) -> list[Row]:
    if d.consortia is None:
        return []
    return [
        {"shortlist_id": d.id, "listed_as": listed_as, "network_id": item.network_id, "rank": item.rank}
        for listed_as, items in (("item", d.consortia.items), ("development", d.consortia.development or []))
        for item in items
    ]


SHORTLIST = EntityMap(
    "shortlist",
    ShortlistRecord,
    table_of(Shortlist),
    lambda d: {
        "id": d.id,
        "owner": d.owner,
        "buyer_firm_id": d.firm_id,
        "issued_at": d.created_at,
        "issued_on": d.created_at.date(),
        "eligible_count": d.eligible_count,
        "development_count": d.development_count,
    },
    (
        Child(table_of(ShortlistSupplier), "shortlist_id", _listed),
        Child(table_of(ShortlistConsortium), "shortlist_id", _consortia),
    ),
)

LINKAGE = EntityMap(
    "linkage",
    LinkageRecord,
    table_of(Linkage),
    lambda d: {
        "id": d.id,
        "shortlist_id": d.shortlist_id,
        "supplier_id": d.supplier_id,
        "supplier_kind": d.supplier_kind,
        "buyer_firm_id": d.firm_id,
        "stage": d.stage,
        "gap_kind": (d.gap or {}).get("kind"),
        "gap_scheme": (d.gap or {}).get("scheme"),
        "created_at": d.created_at,
    },
    (
        Child(
            table_of(LinkageEvent),
            "linkage_id",
            lambda d: [
                {"linkage_id": d.id, "position": i, "stage": e.stage, "reached_on": e.on}
                for i, e in enumerate(d.history)
            ],
        ),
        Child(
            table_of(LinkageMember),
            "linkage_id",
            lambda d: [{"linkage_id": d.id, "firm_id": m.firm_id, "share": m.share} for m in d.members or []],
        ),
    ),
)


def _last_at(history: list[StatusEventRecord], status: str, *, first: bool = False) -> date | None:
    """The UTC day of the last (or first) history entry with ``status``."""
    days = [e.at.date() for e in history if e.status == status]
    if not days:
        return None
    return days[0] if first else days[-1]


def _answers_closed_on(d: RequestRecord) -> date | None:
    """When answering stopped: the last recorded close, or the deadline of a request still shown open."""
    if d.status == "open":
        return d.respond_by.date()
    if d.status in ("closed", "awarded"):
        return _last_at(d.history, "closed") or d.respond_by.date()
    return None


def _request_row(d: RequestRecord) -> Row:
    return {
        "id": d.id,
        "agency_id": d.agency_id,  # the change's: the buyer's agency
        "owner": d.owner,
        "buyer_firm_id": d.buyer_firm_id,
        "shortlist_id": d.shortlist_id,
        "status": d.status,
        "quantity": d.quantity,
        "unit": d.unit,
        "respond_by": d.respond_by,
        "opened_on": _last_at(d.history, "open", first=True),
        "answers_closed_on": _answers_closed_on(d),
        "awarded_on": _last_at(d.history, "awarded") if d.status == "awarded" else None,
        "created_at": d.created_at,
    }


def _invitations(d: RequestRecord) -> list[Row]:
    return [
        {
            "request_id": d.id,
            "supplier_id": i.supplier_id,
            "rank": i.rank,
            "development": i.development,
            "status": i.status,
            "answer_kind": i.answer.kind if i.answer else None,
            "answered_at": i.answer.submitted_at if i.answer else None,
            "answered_on": i.answer.submitted_at.date() if i.answer else None,
            "on_behalf": i.answer.on_behalf if i.answer else None,
            "awarded_quantity": i.awarded_quantity,
        }
        for i in d.invitations
    ]


REQUEST = EntityMap(
    "request",
    RequestRecord,
    table_of(Request),
    _request_row,
    (Child(table_of(RequestInvitation), "request_id", _invitations),),
)

SCORECARD = EntityMap(
    "scorecard",
    ScorecardRecord,
    table_of(Scorecard),
    lambda d: {
        "id": d.id,
        "linkage_id": d.linkage_id,
        "supplier_id": d.supplier_id,
        "buyer_firm_id": d.buyer_firm_id,
        "kind": d.kind,
        "observed_on": d.observed_on,
        "quality": d.quality,
        "on_time": d.on_time,
        "status": d.status,
        "counts": d.counts,
        "created_at": d.created_at,
    },
)


REGISTRY_ENTITIES = {
    m.entity: m for m in (AGENCY, PROGRAMME, CLUSTER, FIRM, INSTITUTION, BROKER, NETWORK, ACTIVITY, FIRM_RESULT)
}
MATCHING_ENTITIES = {m.entity: m for m in (SHORTLIST, LINKAGE, REQUEST, SCORECARD)}
