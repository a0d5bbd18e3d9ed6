"""``readable_events`` (SQL, for listing) and ``can_read`` (Python, for webhooks) agree on
every combination of an event's tenancy columns and a principal, edge cases included
(events of no agency, principals of no agency or firm)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from services.common.db import create_engine, create_sessionmaker
from services.common.principal import Principal, Role
from services.events.app import MIGRATIONS
from services.events.tables import EVENTS
from services.events.visibility import Audience, can_read, readable_events
from services.matching.ownership import owner_key
from tests.support import Backend

AGENCIES = ("agy_a", "agy_b", None)
FIRMS = ("frm_a", "frm_b", None)


def principals() -> list[Principal]:
    found = []
    for number, (role, agency, firm) in enumerate(itertools.product(Role, AGENCIES, FIRMS)):
        found.append(Principal(subject=f"key_{number}", role=role, agency_id=agency, firm_id=firm))
    return found


def events(people: list[Principal]) -> list[dict[str, Any]]:
    """An event of every audience for every owner key the principals have (and none), each
    of every agency (and none)."""
    owners = sorted({owner_key(p) for p in people}) + [None]
    rows = []
    for audience, owner, agency in itertools.product(Audience, owners, AGENCIES):
        if audience is not Audience.owner and owner is not None:
            continue
        rows.append({"audience": audience.value, "owner": owner, "agency_id": agency})
    return rows


async def test_the_filter_and_the_predicate_agree(backend: Backend) -> None:
    people = principals()
    rows = [
        row
        | {
            "id": f"evt_{number}",
            "type": "firm.created",
            "created_at": datetime(2026, 12, 7, tzinfo=UTC),
            "subject": "x",
            "source": "registry",
            "source_seq": number,
            "data": {},
        }
        for number, row in enumerate(events(people))
    ]
    engine = create_engine(await backend.fresh(MIGRATIONS))
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(insert(EVENTS), rows)
        async with create_sessionmaker(engine)() as session:
            stored = [r._mapping for r in await session.execute(select(EVENTS))]
            assert len(stored) == len(rows) > 100
            for principal in people:
                selected = set(
                    (await session.scalars(select(EVENTS.c.id).where(readable_events(principal, EVENTS)))).all()
                )
                assert selected == {r["id"] for r in stored if can_read(principal, r)}, principal
    finally:
        await engine.dispose()


def test_the_rule_itself() -> None:
    lead_a = Principal(subject="k1", role=Role.lead_firm, firm_id="frm_a", agency_id="agy_a")
    mine = {"audience": "owner", "owner": "firm:frm_a", "agency_id": "agy_a"}
    theirs = {"audience": "owner", "owner": "firm:frm_b", "agency_id": "agy_a"}
    public = {"audience": "public", "owner": None, "agency_id": "agy_b"}
    assert can_read(lead_a, mine) and not can_read(lead_a, theirs)
    assert can_read(lead_a, public)
    viewer_a = Principal(subject="k2", role=Role.viewer, agency_id="agy_a")
    assert can_read(viewer_a, theirs)
    assert not can_read(Principal(subject="k3", role=Role.viewer, agency_id="agy_b"), theirs)
    assert can_read(Principal(subject="k4", role=Role.viewer), theirs)  # a platform viewer
    assert not can_read(Principal(subject="k5", role=Role.agency, agency_id="agy_a"), theirs)  # another owner's
    supplier = Principal(subject="k7", role=Role.supplier, firm_id="frm_a", agency_id="agy_a")
    assert [can_read(supplier, e) for e in (mine, theirs, public)] == [False, False, True]
