"""From a feed record (the owning API's JSON) to read-model rows.

Each entity the reporting service keeps has an ``EntityMap``: the main table, the
function that turns the record into its row, and its child tables with theirs.
Entities not listed here (certification schemes, firm merges, buyer standards,
supplier performance aggregates) are not needed by any indicator and are skipped.
A row function sees the record with the change's ``agency_id`` added where the record
has none (a request's agency is its buyer's, known from the change).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table

from services.reporting.tables import (
    Activity,
    Agency,
    Broker,
    BrokerCluster,
    Cluster,
    Firm,
    FirmCluster,
    Institution,
    InstitutionCluster,
    JointAction,
    Linkage,
    LinkageEvent,
    Network,
    NetworkMember,
    Programme,
    Request,
    RequestInvitation,
    Scorecard,
    Shortlist,
    ShortlistSupplier,
    table_of,
)

Record = dict[str, Any]
Row = dict[str, Any]


def day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def registered_on(data: Record) -> date:
    """The UTC day a registry record was created."""
    return moment(data["created_at"]).date()


@dataclass(frozen=True)
class Child:
    table: Table
    key: str  # the column holding the parent's id
    rows: Callable[[Record], list[Row]]


@dataclass(frozen=True)
class EntityMap:
    entity: str
    table: Table
    row: Callable[[Record], Row]
    children: tuple[Child, ...] = ()


def _links(key: str, owner: str) -> Child:
    tables: dict[str, Any] = {"firm_id": FirmCluster, "institution_id": InstitutionCluster, "broker_id": BrokerCluster}
    table = tables[key]
    return Child(table_of(table), key, lambda d: [{key: d["id"], "cluster_id": c} for c in d.get(owner) or []])


AGENCY = EntityMap(
    "agency", table_of(Agency), lambda d: {"id": d["id"], "name": d["name"], "country": d.get("country")}
)

PROGRAMME = EntityMap(
    "programme",
    table_of(Programme),
    lambda d: {
        "id": d["id"],
        "agency_id": d["agency_id"],
        "name": d["name"],
        "country": d["country"],
        "phase": d["phase"],
        "start_date": day(d["start_date"]),
        "end_date": day(d.get("end_date")),
    },
)

CLUSTER = EntityMap(
    "cluster",
    table_of(Cluster),
    lambda d: {
        "id": d["id"],
        "agency_id": d["agency_id"],
        "programme_id": d.get("programme_id"),
        "name": d["name"],
        "country": d["country"],
        "subdivision": d.get("subdivision"),
        "sector_isic": d["sector_isic"],
        "latitude": d.get("latitude"),
        "longitude": d.get("longitude"),
        "jobs": d.get("jobs"),
        "smes": d.get("smes"),
        "registered_on": registered_on(d),
    },
)

FIRM = EntityMap(
    "firm",
    table_of(Firm),
    lambda d: {
        "id": d["id"],
        "agency_id": d["agency_id"],
        "name": d["name"],
        "size_class": d["size_class"],
        "is_supplier": "supplier" in d["roles"],
        "is_lead_firm": "lead_firm" in d["roles"],
        "country": d["country"],
        "subdivision": d.get("subdivision"),
        "employees": d.get("employees"),
        "registered_on": registered_on(d),
    },
    (_links("firm_id", "cluster_ids"),),
)  # certifications: see FeedApplier, they keep their first-seen day

INSTITUTION = EntityMap(
    "institution",
    table_of(Institution),
    lambda d: {
        "id": d["id"],
        "agency_id": d["agency_id"],
        "name": d["name"],
        "kind": d["kind"],
        "country": d["country"],
        "subdivision": d.get("subdivision"),
        "registered_on": registered_on(d),
    },
    (_links("institution_id", "cluster_ids"),),
)

BROKER = EntityMap(
    "broker",
    table_of(Broker),
    lambda d: {
        "id": d["id"],
        "agency_id": d["agency_id"],
        "name": d["name"],
        "country": d["country"],
        "trained_on": day(d.get("trained_on")),
        "certified_on": day(d.get("certified_on")),
        "registered_on": registered_on(d),
    },
    (_links("broker_id", "cluster_ids"),),
)

NETWORK = EntityMap(
    "network",
    table_of(Network),
    lambda d: {
        "id": d["id"],
        "agency_id": d["agency_id"],
        "name": d["name"],
        "kind": d["kind"],
        "status": d["status"],
        "cluster_id": d.get("cluster_id"),
        "broker_id": d.get("broker_id"),
        "formed_on": day(d.get("formed_on")),
        "registered_on": registered_on(d),
    },
    (
        Child(
            table_of(NetworkMember),
            "network_id",
            lambda d: [
                {"network_id": d["id"], "firm_id": m["firm_id"], "role": m["role"]} for m in d.get("members") or []
            ],
        ),
        Child(
            table_of(JointAction),
            "network_id",
            lambda d: [
                {"network_id": d["id"], "position": i, "kind": a["kind"], "started_on": day(a.get("started_on"))}
                for i, a in enumerate(d.get("joint_actions") or [])
            ],
        ),
    ),
)

PARTICIPANT_GROUPS = ("entrepreneurs", "brokers", "policy_makers", "private_sector_leaders", "academics", "other")

ACTIVITY = EntityMap(
    "activity",
    table_of(Activity),
    lambda d: {
        "id": d["id"],
        "agency_id": d["agency_id"],
        "title": d["title"],
        "kind": d["kind"],
        "start_date": day(d["start_date"]),
        "end_date": day(d.get("end_date")),
        "programme_id": d.get("programme_id"),
        "cluster_id": d.get("cluster_id"),
        "country": d["country"],
        "subdivision": d.get("subdivision"),
        **{group: int((d.get("participants") or {}).get(group) or 0) for group in PARTICIPANT_GROUPS},
    },
)


def _listed(d: Record) -> list[Row]:
    rows: list[Row] = []
    for listed_as, items in (("item", d.get("items") or []), ("development", d.get("development") or [])):
        for position, item in enumerate(items):
            gap = item.get("gap") or {}
            rows.append(
                {
                    "shortlist_id": d["id"],
                    "listed_as": listed_as,
                    "supplier_id": item["supplier_id"],
                    "rank": item.get("rank", position + 1),
                    "gap_kind": gap.get("kind"),
                    "gap_scheme": gap.get("scheme"),
                }
            )
    return rows


SHORTLIST = EntityMap(
    "shortlist",
    table_of(Shortlist),
    lambda d: {
        "id": d["id"],
        "owner": d.get("owner") or "",
        "buyer_firm_id": d.get("firm_id"),
        "issued_at": moment(d["created_at"]),
        "issued_on": moment(d["created_at"]).date(),
        "eligible_count": d.get("eligible_count") or 0,
        "development_count": d.get("development_count"),
    },
    (Child(table_of(ShortlistSupplier), "shortlist_id", _listed),),
)

LINKAGE = EntityMap(
    "linkage",
    table_of(Linkage),
    lambda d: {
        "id": d["id"],
        "shortlist_id": d["shortlist_id"],
        "supplier_id": d["supplier_id"],
        "buyer_firm_id": d.get("firm_id"),
        "stage": d["stage"],
        "gap_kind": (d.get("gap") or {}).get("kind"),
        "gap_scheme": (d.get("gap") or {}).get("scheme"),
        "created_at": moment(d["created_at"]),
    },
    (
        Child(
            table_of(LinkageEvent),
            "linkage_id",
            lambda d: [
                {"linkage_id": d["id"], "position": i, "stage": e["stage"], "reached_on": day(e["on"])}
                for i, e in enumerate(d.get("history") or [])
            ],
        ),
    ),
)


def utc_day(value: str) -> date:
    """The UTC day of a moment the feed gives with its offset."""
    at = moment(value)
    return (at.astimezone(UTC) if at.tzinfo is not None else at).date()


def _last_at(history: list[Record], status: str, *, first: bool = False) -> date | None:
    """The day of the last (or first) history entry with ``status``."""
    days = [utc_day(e["at"]) for e in history if e.get("status") == status]
    if not days:
        return None
    return days[0] if first else days[-1]


def _answers_closed_on(d: Record) -> date | None:
    """When answering stopped: the last recorded close, or the deadline of a request still shown open."""
    status = d["status"]
    if status == "open":
        return utc_day(d["respond_by"])
    if status in ("closed", "awarded"):
        return _last_at(d.get("history") or [], "closed") or utc_day(d["respond_by"])
    return None


def _request_row(d: Record) -> Row:
    history = d.get("history") or []
    return {
        "id": d["id"],
        "agency_id": d.get("agency_id"),  # the change's: the buyer's agency
        "owner": d.get("owner") or "",
        "buyer_firm_id": d.get("buyer_firm_id") or d.get("firm_id"),
        "shortlist_id": d["shortlist_id"],
        "status": d["status"],
        "quantity": d["quantity"],
        "unit": d["unit"],
        "respond_by": moment(d["respond_by"]),
        "opened_on": _last_at(history, "open", first=True),
        "answers_closed_on": _answers_closed_on(d),
        "awarded_on": _last_at(history, "awarded") if d["status"] == "awarded" else None,
        "created_at": moment(d["created_at"]),
    }


def _invitations(d: Record) -> list[Row]:
    rows: list[Row] = []
    for invitation in d.get("invitations") or []:
        answer = invitation.get("answer") or None
        answered_at = moment(answer["submitted_at"]) if answer else None
        rows.append(
            {
                "request_id": d["id"],
                "supplier_id": invitation["supplier_id"],
                "rank": invitation["rank"],
                "development": bool(invitation.get("development")),
                "status": invitation["status"],
                "answer_kind": answer["kind"] if answer else None,
                "answered_at": answered_at,
                "answered_on": utc_day(answer["submitted_at"]) if answer else None,
                "on_behalf": bool(answer.get("on_behalf")) if answer else None,
                "awarded_quantity": invitation.get("awarded_quantity"),
            }
        )
    return rows


REQUEST = EntityMap(
    "request", table_of(Request), _request_row, (Child(table_of(RequestInvitation), "request_id", _invitations),)
)

SCORECARD = EntityMap(
    "scorecard",
    table_of(Scorecard),
    lambda d: {
        "id": d["id"],
        "linkage_id": d["linkage_id"],
        "supplier_id": d["supplier_id"],
        "buyer_firm_id": d.get("buyer_firm_id"),
        "kind": d["kind"],
        "observed_on": day(d["observed_on"]),
        "quality": float(d["quality"]),
        "on_time": float(d["on_time"]),
        "status": d["status"],
        "counts": bool(d["counts"]),
        "created_at": moment(d["created_at"]),
    },
)


REGISTRY_ENTITIES = {m.entity: m for m in (AGENCY, PROGRAMME, CLUSTER, FIRM, INSTITUTION, BROKER, NETWORK, ACTIVITY)}
MATCHING_ENTITIES = {m.entity: m for m in (SHORTLIST, LINKAGE, REQUEST, SCORECARD)}
