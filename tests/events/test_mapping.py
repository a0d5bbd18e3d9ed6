"""From feed changes to public events: the mapping alone, on changes crafted as the feeds carry them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.common.changefeed import Change
from services.common.feeds import FeedContractError
from services.events.catalogue import BY_NAME, EVENT_TYPES, check_types
from services.events.mapping import State, event_id, events_of
from services.events.visibility import Audience

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def change(entity: str, entity_id: str, op: str, data: dict[str, Any] | None, *, seq: int = 1, **fields: Any) -> Change:
    return Change(
        seq=seq,
        entity=entity,
        entity_id=entity_id,
        op=op,
        version=fields.pop("version", 1),
        agency_id=fields.pop("agency_id", "agy_a"),
        occurred_at=NOW,
        data=data,
    )


def standards_match(**fields: Any) -> dict[str, Any]:
    return {
        "id": "smt_1",
        "standards_id": "std_1",
        "owner": "firm:frm_lead",
        "agency_id": "agy_a",
        "buyer_firm_id": "frm_lead",
        "supplier_id": "frm_s",
        "score": 0.82,
        "rank": 3,
        "criteria": [{"criterion": "quality", "value": 0.9, "contribution": 0.27}],
        "matched_at": "2026-12-07T02:00:00Z",
    } | fields


def test_standards_match_is_the_owners() -> None:
    (event,), state = events_of("matching", change("standards_match", "smt_1", "created", standards_match()), None)
    assert state is None
    assert (event.type, event.subject, event.owner, event.agency_id) == (
        "standards.match",
        "smt_1",
        "firm:frm_lead",
        "agy_a",
    )
    assert event.audience == Audience.owner
    assert event.data == {
        "id": "smt_1",
        "standards_id": "std_1",
        "buyer_firm_id": "frm_lead",
        "supplier_id": "frm_s",
        "score": 0.82,
        "rank": 3,
        "criteria": [{"criterion": "quality", "value": 0.9, "contribution": 0.27}],
        "matched_at": "2026-12-07T02:00:00Z",
    }
    (unranked,), _ = events_of(
        "matching", change("standards_match", "smt_2", "created", standards_match(rank=None)), None
    )
    assert unranked.data["rank"] is None


def test_certificate_expiring_is_the_owners() -> None:
    alert = {
        "id": "cex_1",
        "linkage_id": "lnk_1",
        "owner": "agency:agy_a",
        "agency_id": "agy_a",
        "buyer_firm_id": None,
        "supplier_id": "frm_s",
        "scheme": "iso-9001",
        "valid_until": "2027-01-06",
        "days_ahead": 30,
    }
    (event,), _ = events_of("matching", change("certificate_expiring", "cex_1", "created", alert), None)
    assert (event.type, event.owner, event.audience) == ("certificate.expiring", "agency:agy_a", Audience.owner)
    assert event.data == {k: v for k, v in alert.items() if k not in ("owner", "agency_id")}


def test_a_record_that_breaks_the_contract_fails_the_page() -> None:
    broken = standards_match()
    del broken["supplier_id"]
    with pytest.raises(FeedContractError, match="supplier_id"):
        events_of("matching", change("standards_match", "smt_1", "created", broken), None)


def request(history: list[str], **fields: Any) -> dict[str, Any]:
    status = history[-1]
    invitations = [
        {
            "supplier_id": supplier,
            "rank": rank,
            "development": False,
            "status": "awarded" if supplier == "frm_s1" and status == "awarded" else "invited",
            "answer": None,
            "awarded_quantity": None,
        }
        for rank, supplier in enumerate(("frm_s1", "frm_s2"), start=1)
    ]
    return {
        "id": "req_1",
        "owner": "firm:frm_lead",
        "firm_id": "frm_lead",
        "buyer_firm_id": "frm_lead",
        "shortlist_id": "sl_1",
        "status": status,
        "quantity": 100,
        "unit": "pieces",
        "respond_by": "2098-01-01T00:00:00Z",
        "history": [{"status": s, "at": f"2026-12-0{i + 1}T00:00:00Z"} for i, s in enumerate(history)],
        "invitations": invitations,
        "created_at": "2026-12-01T00:00:00Z",
    } | fields


def test_a_request_becomes_one_event_per_status_it_reaches() -> None:
    """Each status in the history once, in order, whatever changes carry them (answers add none)."""
    made, state = events_of("matching", change("request", "req_1", "created", request(["draft"])), None)
    assert [e.type for e in made] == ["request.created"] and made[0].data["previous_status"] is None
    made, state = events_of("matching", change("request", "req_1", "updated", request(["draft"])), state)
    assert made == []  # an answer or a message: no status reached
    made, state = events_of(
        "matching", change("request", "req_1", "updated", request(["draft", "open", "closed"])), state
    )
    assert [(e.type, e.data["previous_status"], e.data["at"]) for e in made] == [
        ("request.opened", "draft", "2026-12-02T00:00:00Z"),
        ("request.closed", "open", "2026-12-03T00:00:00Z"),
    ]
    awarded = request(["draft", "open", "closed", "awarded"])
    (made_award,), state = events_of("matching", change("request", "req_1", "updated", awarded), state)
    assert made_award.type == "request.awarded" and made_award.data["awarded_supplier_ids"] == ["frm_s1"]
    assert (made_award.owner, made_award.data["invited"]) == ("firm:frm_lead", 2)
    assert state == {"statuses": 4, "status": "awarded"}


def linkage(stage: str, history: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": "lnk_1",
        "owner": "firm:frm_lead",
        "firm_id": "frm_lead",
        "shortlist_id": "sl_1",
        "supplier_id": "frm_s1",
        "stage": stage,
        "gap": None,
        "created_at": "2026-12-01T00:00:00Z",
        "history": [{"stage": s, "on": on} for s, on in history],
    }


def test_a_linkage_reports_its_stage_changes_from_to() -> None:
    (created,), state = events_of(
        "matching", change("linkage", "lnk_1", "created", linkage("proposed", [("proposed", "2026-12-01")])), None
    )
    assert created.type == "linkage.created" and created.data["stage"] == "proposed"
    assert created.data["supplier_kind"] == "firm"  # a record from before networks were suppliers
    same, state = events_of(
        "matching", change("linkage", "lnk_1", "updated", linkage("proposed", [("proposed", "2026-12-01")])), state
    )
    assert same == []  # notes changed, not the stage
    moved = linkage("contracted", [("proposed", "2026-12-01"), ("contracted", "2026-12-05")])
    (changed,), state = events_of("matching", change("linkage", "lnk_1", "updated", moved), state)
    assert (changed.type, changed.data["from"], changed.data["to"], changed.data["on"]) == (
        "linkage.stage_changed",
        "proposed",
        "contracted",
        "2026-12-05",
    )


def test_a_registry_update_names_the_fields_that_changed() -> None:
    firm = {"id": "frm_1", "agency_id": "agy_a", "name": "Anna Knits", "capabilities": "knitting", "version": 1}
    (created,), state = events_of("registry", change("firm", "frm_1", "created", firm), None)
    assert (created.type, created.audience, created.owner) == ("firm.created", Audience.public, None)
    assert created.data == {"id": "frm_1", "agency_id": "agy_a", "version": 1}
    updated_firm = firm | {"capabilities": "knitting, dyeing", "version": 2, "updated_at": "x"}
    (updated,), state = events_of("registry", change("firm", "frm_1", "updated", updated_firm, version=2), state)
    assert updated.data == {"id": "frm_1", "agency_id": "agy_a", "version": 2, "changed": ["capabilities"]}
    (unknown,), _ = events_of("registry", change("firm", "frm_1", "updated", updated_firm, version=2), None)
    assert unknown.data["changed"] is None  # no earlier state seen: not known
    (deleted,), state = events_of("registry", change("firm", "frm_1", "deleted", None, version=3), state)
    assert deleted.type == "firm.deleted" and state is None


def test_a_merge_and_its_undo() -> None:
    merge = {"id": "mrg_1", "survivor_id": "frm_1", "merged_id": "frm_2"}
    (merged,), state = events_of("registry", change("firm_merge", "mrg_1", "created", merge), None)
    assert (merged.type, merged.audience, merged.agency_id) == ("firm.merged", Audience.public, "agy_a")
    assert merged.data == {"merge_id": "mrg_1", "merged_id": "frm_2", "survivor_id": "frm_1", "agency_id": "agy_a"}
    (undone,), state = events_of("registry", change("firm_merge", "mrg_1", "deleted", None, version=2), state)
    assert undone.type == "firm.unmerged" and undone.data == merged.data and state is None


def test_changes_that_make_no_event() -> None:
    for feed, entity in (("registry", "agency"), ("registry", "certification_scheme"), ("matching", "buyer_standards")):
        remembered: State = {"kept": True}
        assert events_of(feed, change(entity, "x_1", "created", {"id": "x_1"}), remembered) == ([], remembered)


def test_event_ids_are_stable_and_distinct() -> None:
    ids = {event_id(feed, seq, index) for feed in ("registry", "matching") for seq in range(1, 200) for index in (0, 1)}
    assert len(ids) == 2 * 199 * 2
    assert event_id("registry", 7, 0) == event_id("registry", 7, 0)
    assert all(i.startswith("evt_") and len(i) <= 40 for i in ids)


def test_the_catalogue_validates_types_by_name() -> None:
    assert check_types(["firm.created", "firm.created", "standards.match"], "types") == [
        "firm.created",
        "standards.match",
    ]
    with pytest.raises(Exception) as refused:
        check_types(["firm.created", "firm.exploded"], "event_types", "body")
    assert refused.value.errors[0].field == "event_types"  # type: ignore[attr-defined]
    assert len({t.name for t in EVENT_TYPES}) == len(BY_NAME) >= 30
    assert all(t.name.count(".") == 1 and t.description for t in EVENT_TYPES)


def test_the_guide_names_every_event_type() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text(encoding="utf-8")
    assert [t.name for t in EVENT_TYPES if f"`{t.name}`" not in guide] == []
