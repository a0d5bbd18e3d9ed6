"""From one feed change to the public events it makes (none, one or several).

Pure functions: ``events_of(feed, change, state)`` takes the change and what the
consumer remembers of the record (``source_states``, None for a record not seen
before) and returns the events and the state to remember (None: forget it). Records
are read through ``services.common.feeds``. Payloads are thin: ids, the version and
what changed, so any payload stays far below 20 kB and a receiver fetches the record
through the API (with its own key) for the rest.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.common.changefeed import Change
from services.common.feeds import (
    CertificateExpiringRecord,
    FirmMergeRecord,
    LinkageRecord,
    RequestRecord,
    ScorecardRecord,
    ShortlistRecord,
    StandardsMatchRecord,
    read_record,
)
from services.common.jsontext import json_text, json_time
from services.events.catalogue import BY_NAME

State = dict[str, Any]
REGISTRY_RECORDS = ("programme", "cluster", "firm", "institution", "broker", "network", "activity")
# Fields every registry update changes: not news.
_BOOKKEEPING = ("version", "updated_at")
# A request's status, and the event of reaching it.
REQUEST_EVENTS = {
    "draft": "request.created",
    "open": "request.opened",
    "closed": "request.closed",
    "awarded": "request.awarded",
    "cancelled": "request.cancelled",
}


@dataclass(frozen=True)
class NewEvent:
    """An event before it is stored (the consumer gives it its ``seq`` and ``id``)."""

    type: str
    subject: str
    data: dict[str, Any]
    owner: str | None
    agency_id: str | None

    @property
    def audience(self) -> str:
        return BY_NAME[self.type].audience.value


def event_id(feed: str, seq: int, index: int) -> str:
    """The public id of the ``index``-th event made from change ``seq`` of ``feed``: the same
    on every rebuild, and opaque (it tells nothing of the feeds)."""
    digest = hashlib.sha256(f"{feed}:{seq}:{index}".encode()).digest()[:16]
    return "evt_" + base64.b32encode(digest).decode().rstrip("=").lower()


def _digest(value: Any) -> str:
    return hashlib.sha256(json_text(value).encode()).hexdigest()[:12]


def _registry(change: Change, state: State | None) -> tuple[list[NewEvent], State | None]:
    entity, record_id, agency = change.entity, change.entity_id, change.agency_id
    data: dict[str, Any] = {"id": record_id, "agency_id": agency, "version": change.version}
    if change.op == "deleted" or change.data is None:
        return [NewEvent(f"{entity}.deleted", record_id, data, None, agency)], None
    digests = {name: _digest(value) for name, value in change.data.items() if name not in _BOOKKEEPING}
    if change.op == "created":
        return [NewEvent(f"{entity}.created", record_id, data, None, agency)], digests
    previous: State = state or {}
    changed = sorted(name for name in digests.keys() | previous.keys() if digests.get(name) != previous.get(name))
    data["changed"] = changed if state is not None else None  # None: not known (no earlier state seen)
    return [NewEvent(f"{entity}.updated", record_id, data, None, agency)], digests


def _merge(change: Change, state: State | None) -> tuple[list[NewEvent], State | None]:
    if change.op == "deleted":  # undone: the merge's own record is gone, its ids were remembered
        if state is None:
            return [], None
        return [NewEvent("firm.unmerged", change.entity_id, state, None, change.agency_id)], None
    merge = read_record(FirmMergeRecord, change.data or {})
    data = {
        "merge_id": merge.id,
        "merged_id": merge.merged_id,
        "survivor_id": merge.survivor_id,
        "agency_id": change.agency_id,
    }
    return [NewEvent("firm.merged", merge.id, data, None, change.agency_id)], data


def _shortlist(change: Change, state: State | None) -> tuple[list[NewEvent], State | None]:
    if change.op != "created" or change.data is None:
        return [], None
    shortlist = read_record(ShortlistRecord, change.data)
    data = {
        "id": shortlist.id,
        "buyer_firm_id": shortlist.firm_id,
        "eligible_count": shortlist.eligible_count,
        "listed": len(shortlist.items),
    }
    return [NewEvent("shortlist.created", shortlist.id, data, shortlist.owner, change.agency_id)], None


def _linkage(change: Change, state: State | None) -> tuple[list[NewEvent], State | None]:
    if change.data is None:
        return [], None
    linkage = read_record(LinkageRecord, change.data)
    owner = str(change.data["owner"])
    base = {
        "id": linkage.id,
        "shortlist_id": linkage.shortlist_id,
        "supplier_id": linkage.supplier_id,
        "supplier_kind": linkage.supplier_kind,  # firm, or network (a consortium)
        "buyer_firm_id": linkage.firm_id,
    }
    remembered = {"stage": linkage.stage}
    if change.op == "created" or state is None:
        return [NewEvent("linkage.created", linkage.id, base | {"stage": linkage.stage}, owner, change.agency_id)], (
            remembered
        )
    if state.get("stage") == linkage.stage:
        return [], remembered
    reached = next((s.on for s in reversed(linkage.history) if s.stage == linkage.stage), None)
    data = base | {"from": state.get("stage"), "to": linkage.stage, "on": reached.isoformat() if reached else None}
    return [NewEvent("linkage.stage_changed", linkage.id, data, owner, change.agency_id)], remembered


def _request(change: Change, state: State | None) -> tuple[list[NewEvent], State | None]:
    if change.data is None:
        return [], None
    request = read_record(RequestRecord, {"agency_id": change.agency_id} | change.data)
    seen = int((state or {}).get("statuses", 0))
    previous = (state or {}).get("status")
    events = []
    for entry in request.history[seen:]:
        event_type = REQUEST_EVENTS.get(entry.status)
        if event_type is not None:
            data: dict[str, Any] = {
                "id": request.id,
                "shortlist_id": request.shortlist_id,
                "buyer_firm_id": request.buyer_firm_id,
                "status": entry.status,
                "previous_status": previous,
                "at": json_time(entry.at),
                "invited": len(request.invitations),
            }
            if entry.status == "awarded":
                data["awarded_supplier_ids"] = [i.supplier_id for i in request.invitations if i.status == "awarded"]
            events.append(NewEvent(event_type, request.id, data, request.owner, change.agency_id))
        previous = entry.status
    return events, {"statuses": len(request.history), "status": request.status}


def _scorecard(change: Change, state: State | None) -> tuple[list[NewEvent], State | None]:
    if change.data is None:
        return [], None
    scorecard = read_record(ScorecardRecord, change.data)
    owner = str(change.data["owner"])
    base = {
        "id": scorecard.id,
        "linkage_id": scorecard.linkage_id,
        "supplier_id": scorecard.supplier_id,
        "buyer_firm_id": scorecard.buyer_firm_id,
        "kind": scorecard.kind,
    }
    remembered = {"status": scorecard.status}
    if change.op == "created" or state is None:
        data = base | {"status": scorecard.status, "counts": scorecard.counts}
        return [NewEvent("scorecard.created", scorecard.id, data, owner, change.agency_id)], remembered
    if state.get("status") == scorecard.status:
        return [], remembered
    data = base | {"from": state.get("status"), "to": scorecard.status, "counts": scorecard.counts}
    return [NewEvent("scorecard.status_changed", scorecard.id, data, owner, change.agency_id)], remembered


def _standards_match(change: Change, state: State | None) -> tuple[list[NewEvent], State | None]:
    if change.op != "created" or change.data is None:
        return [], None
    match = read_record(StandardsMatchRecord, change.data)
    data = {
        "id": match.id,
        "standards_id": match.standards_id,
        "buyer_firm_id": match.buyer_firm_id,
        "supplier_id": match.supplier_id,
        "score": match.score,
        "rank": match.rank,
        "criteria": match.criteria,
        "matched_at": json_time(match.matched_at),
    }
    agency = match.agency_id if match.agency_id is not None else change.agency_id
    return [NewEvent("standards.match", match.id, data, match.owner, agency)], None


def _certificate_expiring(change: Change, state: State | None) -> tuple[list[NewEvent], State | None]:
    if change.op != "created" or change.data is None:
        return [], None
    alert = read_record(CertificateExpiringRecord, change.data)
    data = {
        "id": alert.id,
        "linkage_id": alert.linkage_id,
        "buyer_firm_id": alert.buyer_firm_id,
        "supplier_id": alert.supplier_id,
        "scheme": alert.scheme,
        "valid_until": alert.valid_until.isoformat(),
        "days_ahead": alert.days_ahead,
    }
    agency = alert.agency_id if alert.agency_id is not None else change.agency_id
    return [NewEvent("certificate.expiring", alert.id, data, alert.owner, agency)], None


Mapper = Callable[[Change, State | None], tuple[list[NewEvent], State | None]]
# Per feed, the entities that make events (others, e.g. agencies, make none).
MAPPERS: dict[str, dict[str, Mapper]] = {
    "registry": {**dict.fromkeys(REGISTRY_RECORDS, _registry), "firm_merge": _merge},
    "matching": {
        "shortlist": _shortlist,
        "linkage": _linkage,
        "request": _request,
        "scorecard": _scorecard,
        "standards_match": _standards_match,
        "certificate_expiring": _certificate_expiring,
    },
}
# Entities whose state the consumer remembers between changes.
STATEFUL = {"registry": set(REGISTRY_RECORDS) | {"firm_merge"}, "matching": {"linkage", "request", "scorecard"}}


def events_of(feed: str, change: Change, state: State | None) -> tuple[list[NewEvent], State | None]:
    """The events ``change`` of ``feed`` makes, and the record's state to remember."""
    mapper = MAPPERS.get(feed, {}).get(change.entity)
    if mapper is None:
        return [], state
    return mapper(change, state)
