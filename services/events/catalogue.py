"""The event catalogue: every public event type, in one place.

``GET /v1/event-types`` serves it, the ``types`` filter of ``GET /v1/events`` and the
event types of a webhook endpoint are validated against it (``check_types``), and
``docs/events.md`` lists it. Types are dot-separated, ``<record>.<what happened>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.common.errors import invalid_field
from services.events.visibility import Audience


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    source: str  # the feed it comes from: registry, matching
    audience: Audience  # who may read it (services.events.visibility)


_REGISTRY_RECORDS = (
    ("programme", "A programme"),
    ("cluster", "A cluster"),
    ("firm", "A firm (supplier or lead firm)"),
    ("institution", "A support institution"),
    ("broker", "A broker (cluster development agent)"),
    ("network", "A horizontal or vertical network"),
    ("activity", "A programme activity"),
)
_DATA = {
    "created": "`{id, agency_id, version}`",
    "updated": "`{id, agency_id, version, changed}`: `changed` names the top-level fields that changed",
    "deleted": "`{id, agency_id, version}`",
}


def _registry_types() -> list[EventType]:
    return [
        EventType(f"{entity}.{op}", f"{what} was {op}. Data: {_DATA[op]}.", "registry", Audience.public)
        for entity, what in _REGISTRY_RECORDS
        for op in ("created", "updated", "deleted")
    ]


EVENT_TYPES: list[EventType] = [
    *_registry_types(),
    EventType(
        "firm.merged",
        "A duplicate firm was merged into another: `merged_id` no longer exists (a `firm.deleted` "
        "precedes this event), records that named it now name `survivor_id`. Data: `{merge_id, merged_id, "
        "survivor_id, agency_id}`. Public like the firms it names: a portal that mirrors firms repoints "
        "`merged_id` to `survivor_id` (the merge's details stay with the merging agency, at "
        "`/v1/duplicates/merges`).",
        "registry",
        Audience.public,
    ),
    EventType(
        "firm.unmerged",
        "A merge was undone: `merged_id` exists again (a `firm.created` precedes this event). "
        "Data: `{merge_id, merged_id, survivor_id, agency_id}`. Public, as `firm.merged`.",
        "registry",
        Audience.public,
    ),
    EventType(
        "shortlist.created",
        "A shortlist was computed and stored. Data: `{id, buyer_firm_id, eligible_count, listed}` "
        "(`listed`: how many suppliers it lists).",
        "matching",
        Audience.owner,
    ),
    EventType(
        "linkage.created",
        "A linkage was recorded between a buyer and a shortlisted supplier. "
        "Data: `{id, shortlist_id, supplier_id, supplier_kind, buyer_firm_id, stage}` "
        "(`supplier_kind`: firm, or network for a consortium).",
        "matching",
        Audience.owner,
    ),
    EventType(
        "linkage.stage_changed",
        "A linkage moved to another stage. "
        "Data: `{id, shortlist_id, supplier_id, supplier_kind, buyer_firm_id, from, to, on}`.",
        "matching",
        Audience.owner,
    ),
    *(
        EventType(
            f"request.{name}",
            f"{what}. Data: `{{id, shortlist_id, buyer_firm_id, status, previous_status, at, invited}}` "
            "(`invited`: how many suppliers)" + (", and `awarded_supplier_ids`." if name == "awarded" else "."),
            "matching",
            Audience.owner,
        )
        for name, what in (
            ("created", "A request for quotation was drafted"),
            ("opened", "A request was opened: its invitations were sent"),
            ("closed", "A request was closed to answers (by its buyer, or its deadline passed)"),
            ("awarded", "A request was awarded to one or more suppliers"),
            ("cancelled", "A request was cancelled"),
        )
    ),
    EventType(
        "scorecard.created",
        "A supplier's delivery or period was scored. "
        "Data: `{id, linkage_id, supplier_id, buyer_firm_id, kind, status, counts}`.",
        "matching",
        Audience.owner,
    ),
    EventType(
        "scorecard.status_changed",
        "A scorecard was appealed or decided. "
        "Data: `{id, linkage_id, supplier_id, buyer_firm_id, kind, from, to, counts}`.",
        "matching",
        Audience.owner,
    ),
    EventType(
        "standards.match",
        "A supplier now meets saved buyer standards with an alert (or entered their top N). "
        "Data: `{id, standards_id, buyer_firm_id, supplier_id, score, rank, criteria, matched_at}`.",
        "matching",
        Audience.owner,
    ),
    EventType(
        "certificate.expiring",
        "A certificate of a supplier in one of your active linkages expires within `days_ahead` days. "
        "Data: `{id, linkage_id, buyer_firm_id, supplier_id, scheme, valid_until, days_ahead}`.",
        "matching",
        Audience.owner,
    ),
    EventType(
        "webhook_endpoint.disabled",
        "One of your webhook endpoints was disabled: it answered 410 Gone, or its deliveries kept failing. "
        "Fix the receiver, enable the endpoint and replay what failed. Data: `{endpoint_id, url, reason}`.",
        "events",
        Audience.owner,
    ),
]
BY_NAME: dict[str, EventType] = {event_type.name: event_type for event_type in EVENT_TYPES}
assert len(BY_NAME) == len(EVENT_TYPES), "event type names are unique"


def check_types(names: Iterable[str], field: str, location: str = "query") -> list[str]:
    """``names`` without repeats, in order; a 422 naming ``field`` if one is not in the catalogue."""
    wanted = list(dict.fromkeys(names))
    unknown = [name for name in wanted if name not in BY_NAME]
    if unknown:
        raise invalid_field(
            field,
            f"unknown event type {', '.join(repr(n[:60]) for n in unknown[:5])}; see GET /v1/event-types",
            "unknown_event_type",
            location,
        )
    return wanted
