"""Saved-standards alerts and expiring certificates on matching's feed, on SQLite and PostgreSQL:
published when a supplier newly meets alerted standards (within min_score and top_n), once,
however many replicas apply the same registry change; and the index agrees with a naive loop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.changefeed import Change, ChangePage
from services.common.geo import distance_km
from services.matching.alerts.reverse import (
    Alert,
    Evaluation,
    Match,
    StandardsIndex,
    SupplierChange,
    evaluate,
    reverse_match,
)
from services.matching.alerts.service import CertificateSweeper, StandardsWatcher
from services.matching.catalogue.catalogue import View, build_view, run_query, with_delta
from services.matching.catalogue.lifecycle import CatalogueLifecycle
from services.matching.catalogue.query import CRITERIA, Query
from services.matching.catalogue.records import Certificate, SupplierRecord
from services.matching.catalogue.segment import Segment
from services.matching.catalogue.store import CatalogueStore
from tests.matching.helpers import KNITWEAR, VALID, Market
from tests.registry.helpers import firm_body
from tests.support import assert_problem, feed_items

BOTH_CERTS = [{"scheme": "iso-9001", **VALID}, {"scheme": "oeko-tex-100", **VALID}]


def matching_client(market: Market) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=market.stack.upstreams["matching"]), base_url="http://m")


async def published(market: Market, entity: str) -> list[dict[str, Any]]:
    async with matching_client(market) as client:
        return [i["data"] for i in await feed_items(client) if i["entity"] == entity]


async def until_published(market: Market, entity: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while len(found := await published(market, entity)) < count:
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)
    return found


async def standards_with_alert(market: Market, name: str, alert: dict[str, Any] | None) -> str:
    standards = await market.post("/v1/buyer-standards", {"name": name, **KNITWEAR}, market.lead_a)
    if alert is not None:
        response = await market.client.put(
            f"/v1/buyer-standards/{standards['id']}/alert", json=alert, headers=market.lead_a
        )
        assert response.status_code == 200, response.text
        assert (response.json()["min_score"], response.json()["top_n"]) == (alert.get("min_score"), alert.get("top_n"))
    return str(standards["id"])


async def update_firm(market: Market, firm_id: str, change: dict[str, Any]) -> None:
    current = await market.client.get(f"/v1/firms/{firm_id}", headers=market.agency)
    response = await market.client.patch(
        f"/v1/firms/{firm_id}", json=change, headers=market.agency | {"If-Match": current.headers["ETag"]}
    )
    assert response.status_code == 200, response.text


async def test_alerts_publish_suppliers_newly_meeting_standards_once(market: Market, tmp_path: Path) -> None:
    # Scored by performance alone (no description, point or preferred schemes): anna 0.9 leads.
    anything = await standards_with_alert(market, "any", {})
    leader = await standards_with_alert(market, "top 1", {"top_n": 1})
    good = await standards_with_alert(market, "good", {"min_score": 0.92})
    await standards_with_alert(market, "no alert", None)
    farming = await market.post(
        "/v1/buyer-standards", {"name": "farming", "constraints": {"isic_codes": ["01"]}}, market.lead_a
    )
    await market.client.put(f"/v1/buyer-standards/{farming['id']}/alert", json={}, headers=market.lead_a)

    knits = {"isic_codes": ["1430"], "country": "IN", "subdivision": "IN-TN", "certifications": BOTH_CERTS}
    esha = await market.post("/v1/firms", firm_body(name="Esha Knits", quality_score=0.98, **knits), market.agency)
    farah = await market.post("/v1/firms", firm_body(name="Farah Knits", quality_score=0.7, **knits), market.agency)
    await update_firm(market, esha["id"], {"capabilities": "Sweaters, and now socks"})  # still meets them all
    devi = market.suppliers["devi"]  # quality 0.95, lacks OEKO-TEX: not eligible until it holds it
    await update_firm(market, devi, {"certifications": BOTH_CERTS})

    matches = await until_published(market, "standards_match", 6)
    await asyncio.sleep(0.2)  # nothing more comes
    matches = await published(market, "standards_match")
    found = {(m["standards_id"], m["supplier_id"]): m for m in matches}
    assert sorted(found) == sorted(
        [
            (anything, esha["id"]),
            (anything, farah["id"]),
            (anything, devi),
            (leader, esha["id"]),  # enters the top 1 (0.94 over anna's 0.9); farah and devi do not
            (good, esha["id"]),
            (good, devi),  # 0.925
        ]
    ), matches
    assert len(matches) == 6
    top = found[(leader, esha["id"])]
    assert (top["rank"], top["score"], found[(anything, esha["id"])]["rank"]) == (1, 0.94, None)
    assert top["owner"].startswith("firm:") and top["buyer_firm_id"] == top["owner"].removeprefix("firm:")
    assert [(c["criterion"], c["value"], c["weight"], c["contribution"]) for c in top["criteria"]] == [
        ("performance", 0.94, 1.0, 0.94)
    ]
    assert found[(good, devi)]["score"] == 0.925

    # Two more replicas, each with its own catalogue, apply the same registry changes at once: no-ops.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=market.stack.upstreams["registry"]), base_url="http://r"
    ) as registry:
        items = await feed_items(registry, vocabulary=True)
    page = ChangePage(items=[Change.model_validate(i) for i in items], next_after=items[-1]["seq"], has_more=False)
    app = market.stack.apps["matching"]
    replicas, watchers = [], []
    for name in ("b", "c"):
        store = CatalogueStore(tmp_path / name / "store.sqlite3")
        watchers.append(StandardsWatcher(app.state.sessionmaker, app.state.clock))
        replica = CatalogueLifecycle(store, watcher=watchers[-1])
        await replica.load_cursor()
        replicas.append(replica)
    try:
        await asyncio.gather(*(replica.apply(page) for replica in replicas))
        assert [len(watcher.index) for watcher in watchers] == [4, 4]  # the four alerts
    finally:
        for replica in replicas:
            replica.store.close()
    after = await published(market, "standards_match")
    from sqlalchemy import text as sql_text

    async with app.state.sessionmaker() as session:
        keys = [tuple(r) for r in await session.execute(sql_text("select key, created_at from alert_publications"))]
    keys = [(k.replace(leader, "top").replace(esha["id"], "esha").replace(anything, "any"), c) for k, c in keys]
    assert len(after) == 6


async def test_alerts_are_their_owners_and_refuse_bad_settings(market: Market) -> None:
    standards = await standards_with_alert(market, "mine", {"min_score": 0.5, "top_n": 10})
    path = f"/v1/buyer-standards/{standards}/alert"
    for method, change in (("GET", None), ("PUT", {"top_n": 1}), ("DELETE", None)):
        response = await market.client.request(method, path, json=change, headers=market.lead_b)
        assert_problem(response, 404, "not-found")
    assert (await market.client.get(path, headers=market.lead_a)).json()["top_n"] == 10
    for body, field in (
        ({"min_score": 1.5}, "min_score"),
        ({"min_score": "high"}, "min_score"),
        ({"top_n": 0}, "top_n"),
        ({"top_n": 201}, "top_n"),
        ({"top_n": 1, "every": "day"}, "every"),
    ):
        assert_problem(await market.client.put(path, json=body, headers=market.lead_a), 422, field=field)
    assert (await market.client.get(path, headers=market.lead_a)).json()["min_score"] == 0.5
    changed = await market.client.put(path, json={"top_n": 3}, headers=market.lead_a)
    assert (changed.json()["min_score"], changed.json()["top_n"]) == (None, 3)
    assert (await market.client.delete(path, headers=market.lead_a)).status_code == 204
    assert_problem(await market.client.get(path, headers=market.lead_a), 404, "not-found")
    assert_problem(await market.client.delete(path, headers=market.lead_a), 404, "not-found")
    async with matching_client(market) as client:
        alerts = [i for i in await feed_items(client) if i["entity"] == "standards_alert"]
    assert [(i["entity_id"], i["op"]) for i in alerts] == [
        (standards, "created"),
        (standards, "updated"),
        (standards, "deleted"),
    ]


async def test_expiring_certificates_of_ongoing_linkages_publish_once(market: Market) -> None:
    soon = (date.today() + timedelta(days=10)).isoformat()
    later = (date.today() + timedelta(days=40)).isoformat()
    bala, chitra = market.suppliers["bala"], market.suppliers["chitra"]
    expiring = [
        {"scheme": "iso-9001", "valid_from": "2020-01-01", "valid_until": soon},
        {"scheme": "oeko-tex-100", "valid_from": "2020-01-01", "valid_until": later},  # beyond the horizon
    ]
    for supplier in (bala, chitra):
        await update_firm(market, supplier, {"certifications": expiring})
    shortlist = await market.shortlist()
    contracted = await market.post(
        "/v1/linkages", {"shortlist_id": shortlist["id"], "supplier_id": bala, "stage": "contracted"}, market.lead_a
    )
    await market.post(
        "/v1/linkages", {"shortlist_id": shortlist["id"], "supplier_id": chitra}, market.lead_a
    )  # proposed
    app = market.stack.apps["matching"]
    store: CatalogueStore = app.state.supplier_store
    deadline = time.monotonic() + 10
    while any(c.valid_until != date.fromisoformat(soon) for c in store.records([chitra])[chitra].certificates[:1]):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    sweeper: CertificateSweeper = app.state.certificates
    other = CertificateSweeper(app.state.sessionmaker, store, app.state.clock, days=30, interval_seconds=60)
    counts = await asyncio.gather(sweeper.sweep(), other.sweep())
    assert sorted(counts) == [0, 1]
    assert await sweeper.sweep() == 0
    [alert] = await published(market, "certificate_expiring")
    assert {k: v for k, v in alert.items() if k != "id"} == {
        "linkage_id": contracted["id"],
        "owner": alert["owner"],
        "agency_id": alert["agency_id"],  # the lead firm's agency: who may see the event
        "buyer_firm_id": alert["owner"].removeprefix("firm:"),
        "supplier_id": bala,
        "scheme": "iso-9001",
        "valid_until": soon,
        "days_ahead": 10,
    }
    assert alert["id"].startswith("cex") and alert["agency_id"].startswith("agy")


# --- the index against a naive loop over every standards ----------------------------------

ISIC = ["1410", "1430", "1061", "2220"]
SCHEMES = ["iso-9001", "oeko-tex-100", "gots"]
ON = date(2026, 6, 30)
OLD = datetime(2020, 1, 1, tzinfo=UTC)


@st.composite
def suppliers(draw: st.DrawFn, index: int) -> SupplierRecord:
    schemes = draw(st.lists(st.sampled_from(SCHEMES), unique=True, max_size=3))
    expired = draw(st.booleans())
    located = draw(st.booleans())
    return SupplierRecord(
        id=f"frm{index:03d}",
        name=f"Firm {index}",
        agency_id=None,
        country=draw(st.sampled_from(["IN", "EC"])),
        subdivision=draw(st.sampled_from([None, "IN-TN", "EC-I"])),
        latitude=draw(st.floats(10, 12)) if located else None,
        longitude=draw(st.floats(76, 78)) if located else None,
        size_class=draw(st.sampled_from(["micro", "small", "medium", "large"])),
        isic_codes=tuple(draw(st.lists(st.sampled_from(ISIC), unique=True, min_size=1, max_size=2))),
        hs_codes=tuple(draw(st.lists(st.sampled_from(["6109", "611020", "0401"]), unique=True, max_size=2))),
        certificates=tuple(Certificate(s, date(2020, 1, 1), date(2025, 1, 1) if expired else None) for s in schemes),
        monthly_capacity=draw(st.sampled_from([None, 500.0, 5000.0])),
        capacity_unit="pieces",
        quality_score=draw(st.sampled_from([None, 0.5, 0.9])),
        on_time_delivery_rate=0.8,
        capabilities=draw(st.sampled_from(["cotton sweaters", "milk and cheese", "plastic parts"])),
        cluster_ids=tuple(draw(st.lists(st.sampled_from(["cl1", "cl2"]), unique=True, max_size=1))),
    )


@st.composite
def alerts(draw: st.DrawFn, index: int) -> Alert:
    near = draw(st.booleans())
    query = Query(
        on_date=ON,
        isic_codes=tuple(draw(st.lists(st.sampled_from(["14", "143", "1061", "C", "A"]), unique=True, max_size=2))),
        hs_codes=tuple(draw(st.lists(st.sampled_from(["61", "6109", "04"]), unique=True, max_size=1))),
        required_certifications=tuple(draw(st.lists(st.sampled_from(SCHEMES), unique=True, max_size=2))),
        min_monthly_capacity=draw(st.sampled_from([None, 1000.0])),
        capacity_unit="pieces",
        countries=tuple(draw(st.lists(st.sampled_from(["IN", "EC"]), unique=True, max_size=1))),
        subdivisions=tuple(draw(st.lists(st.sampled_from(["IN-TN"]), max_size=1))),
        cluster_ids=tuple(draw(st.lists(st.sampled_from(["cl1", "cl2"]), unique=True, max_size=1))),
        size_classes=tuple(draw(st.lists(st.sampled_from(["small", "medium"]), unique=True, max_size=1))),
        latitude=11.0 if near else None,
        longitude=77.0 if near else None,
        max_distance_km=draw(st.sampled_from([None, 50.0, 150.0])) if near else None,
        exclude_ids=tuple(draw(st.lists(st.sampled_from(["frm000", "frm001"]), unique=True, max_size=1))),
        description=draw(st.sampled_from([None, "cotton sweaters"])),
    )
    top_n = draw(st.sampled_from([None, 1, 3]))
    return Alert(
        standards_id=f"bst{index:03d}",
        version=1,
        owner="firm:x",
        agency_id=None,
        firm_id="x",
        query=replace(query, limit=top_n or 1),
        min_score=draw(st.sampled_from([None, 0.5, 0.7])),
        top_n=top_n,
        enabled_at=OLD,
    )


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[SupplierRecord], list[Alert]]:
    records = [draw(suppliers(i)) for i in range(draw(st.integers(3, 10)))]
    return records, [draw(alerts(i)) for i in range(draw(st.integers(1, 20)))]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_the_index_finds_what_every_standards_tested_finds(world: tuple[list[SupplierRecord], list[Alert]]) -> None:
    records, standards = world
    view = build_view(records, 1, 1)
    index = StandardsIndex()
    for alert in standards:
        index.put(alert)
    index.remove(standards[0].standards_id)  # slots are reused
    index.put(standards[0])
    now = datetime.now(UTC)
    changes = [SupplierChange(r.id, 2, now, None, r) for r in records]  # new suppliers
    for i, r in enumerate(records):  # changed ones: a soft change, or a hard one
        before = replace(r, quality_score=0.1) if i % 2 else replace(r, certificates=r.certificates[1:])
        changes.append(SupplierChange(r.id, 3, now, before, r))

    def found(naive: bool) -> list[tuple[str, str, int, float, int | None]]:
        matches = reverse_match(index, changes, view, ON, naive=naive)
        return sorted(
            (m.alert.standards_id, m.supplier_id, m.version, m.evaluation.ranked.score, m.evaluation.rank)
            for m in matches
        )

    segments: dict[SupplierRecord, Segment] = {}

    def meets(alert: Alert, record: SupplierRecord) -> Evaluation | None:
        segment = segments.get(record) or segments.setdefault(record, Segment.build([record], view.text))
        return evaluate(index, alert, segment, view, ON, record.id)

    indexed = found(naive=False)
    assert indexed == found(naive=True)
    expected = []  # every standards tested on the records before and after, without shortcuts
    for change in changes:
        assert change.after is not None
        for alert in standards:
            now_met = meets(alert, change.after)
            if now_met is not None and (change.before is None or meets(alert, change.before) is None):
                key = (alert.standards_id, change.supplier_id, change.version, now_met.ranked.score, now_met.rank)
                expected.append(key)
    assert indexed == sorted(expected)
    # Its score is the one the engine's shortlist of the whole catalogue gives it.
    for standards_id, supplier_id, _, score, _ in indexed:
        query = replace(index.alerts[standards_id].query, limit=len(records))
        items = {item.id: item.score for item in run_query(view, query).items}
        assert items[supplier_id] == score


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[SupplierRecord], list[Alert], list[tuple[int, SupplierRecord | None]]]:
    """Suppliers, broad top N standards (their fields are kept and matter), and a sequence
    of supplier changes: new records, edits and deletions."""
    records = [draw(suppliers(i)) for i in range(draw(st.integers(3, 8)))]
    standards = []
    for i in range(draw(st.integers(1, 6))):
        query = Query(
            on_date=ON,
            isic_codes=draw(st.sampled_from([(), ("14",), ("C",)])),
            required_certifications=draw(st.sampled_from([(), ("iso-9001",)])),
            description=draw(st.sampled_from([None, "cotton sweaters"])),
        )
        top_n = draw(st.integers(1, 3))
        standards.append(Alert(f"bst{i:03d}", 1, "firm:x", None, "x", replace(query, limit=top_n), None, top_n, OLD))
    steps = []
    for _ in range(draw(st.integers(8, 24))):
        index = draw(st.integers(0, len(records)))  # len(records): a supplier new to the catalogue
        steps.append((index, None if draw(st.integers(0, 3)) == 0 else draw(suppliers(index))))
    return records, standards, steps


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_kept_top_n_fields_follow_changes_and_deletions(
    history: tuple[list[SupplierRecord], list[Alert], list[tuple[int, SupplierRecord | None]]],
) -> None:
    # One index told of every change keeps its top N fields across the views (of one text
    # model); each change's matches are those of a fresh index, which keeps nothing.
    records, standards, steps = history
    first = build_view(records, 1, 1)
    index = StandardsIndex()
    for alert in standards:
        index.put(alert)
    current: dict[str, SupplierRecord | None] = {r.id: r for r in records}
    delta: dict[str, tuple[int, SupplierRecord | None]] = {}
    now = datetime.now(UTC)
    for seq, (number, after) in enumerate(steps, start=2):
        supplier_id = f"frm{number:03d}"
        change = SupplierChange(supplier_id, seq, now, current.get(supplier_id), after)
        current[supplier_id] = after
        delta[supplier_id] = (seq, after)
        view = with_delta(first, dict(delta), seq)
        index.changed([change])
        fresh = StandardsIndex()
        for alert in standards:
            fresh.put(alert)

        def found(
            of: StandardsIndex, change: SupplierChange = change, view: View = view
        ) -> list[tuple[str, float, int | None]]:
            return sorted(
                (m.alert.standards_id, m.evaluation.ranked.score, m.evaluation.rank)
                for m in reverse_match(of, [change], view, ON)
            )

        assert found(index) == found(fresh)


def knitter(index: int, quality: float) -> SupplierRecord:
    return SupplierRecord(
        id=f"frm{index:03d}",
        name=f"Knitter {index}",
        agency_id=None,
        country="IN",
        subdivision="IN-TN",
        latitude=None,
        longitude=None,
        size_class="small",
        isic_codes=("1430",),
        hs_codes=(),
        certificates=(),
        monthly_capacity=None,
        capacity_unit=None,
        quality_score=quality,
        on_time_delivery_rate=None,
        capabilities="sweaters",
        cluster_ids=(),
    )


def test_a_kept_top_n_field_is_forgotten_when_a_change_may_move_it() -> None:
    leader = Alert("bst1", 1, "firm:x", None, "x", Query(on_date=ON, isic_codes=("143",)), None, 1, OLD)
    index = StandardsIndex()
    index.put(leader)
    first, second, third = knitter(1, 0.9), knitter(2, 0.95), knitter(3, 0.92)
    now = datetime.now(UTC)
    view = build_view([first], 1, 1)
    assert [m.supplier_id for m in reverse_match(index, [SupplierChange(first.id, 1, now, None, first)], view, ON)] == [
        first.id
    ]  # the field of the top 1 is kept: [first]
    view = build_view([first, second], 2, 1)  # the same text model's epoch: the field is kept…
    index.changed([SupplierChange(second.id, 1, now, None, second)])  # …unless a change may move it
    view = build_view([first, second, third], 3, 1)
    change = SupplierChange(third.id, 1, now, None, third)
    index.changed([change])
    assert reverse_match(index, [change], view, ON) == []  # second leads: third (0.92) is not the top 1


# --- the columnar fast path against the engine, standards by standards ---------------------

WORDS = ["cotton", "knit", "sweaters", "dairy", "cheese", "plastic", "moulded", "parts", "organic", "yarn"]
POINTS = [(11.0, 77.0), (-0.2, -78.5), (9.0, 38.7)]
QUERY_ISIC = ["14", "1430", "1061", "C", "A", "X"]  # "X": no section, no class


def texts(draw: st.DrawFn) -> str:
    return " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=0, max_size=6)))


@st.composite
def varied_suppliers(draw: st.DrawFn, index: int) -> SupplierRecord:
    certificates = []
    for scheme in draw(st.lists(st.sampled_from([*SCHEMES, "haccp"]), max_size=4)):  # a scheme may repeat
        start = draw(st.sampled_from([None, date(2020, 1, 1), date(2026, 7, 1)]))  # the last not yet valid
        until = draw(st.sampled_from([None, date(2025, 1, 1), date(2027, 1, 1)]))
        certificates.append(Certificate(scheme, start, until))
    located = draw(st.integers(0, 4)) > 0
    lat, lon = draw(st.sampled_from(POINTS))
    return SupplierRecord(
        id=f"frm{index:03d}",
        name=f"Firm {index}",
        agency_id=None,
        country=draw(st.sampled_from(["IN", "EC"])),
        subdivision=draw(st.sampled_from([None, "IN-TN", "EC-P"])),
        latitude=lat + draw(st.floats(-3, 3)) if located else None,
        longitude=lon + draw(st.floats(-3, 3)) if located else None,
        size_class=draw(st.sampled_from(["micro", "small", "medium"])),
        # "C" is no class: in no section's rows, as the engine reads it
        isic_codes=tuple(draw(st.lists(st.sampled_from([*ISIC, "C"]), unique=True, min_size=1, max_size=2))),
        hs_codes=tuple(draw(st.lists(st.sampled_from(["6109", "611020", "0401"]), unique=True, max_size=2))),
        certificates=tuple(certificates),
        monthly_capacity=draw(st.sampled_from([None, 0.0, 300.0, 999.5, 1000.0, 4096.0, 1e6])),
        capacity_unit=draw(st.sampled_from([None, "pieces", " Pieces ", "kg"])),
        quality_score=draw(st.sampled_from([None, 0.0, 0.4321, 0.9])),
        on_time_delivery_rate=draw(st.sampled_from([None, 0.8, 1.0])),
        capabilities=texts(draw),
        cluster_ids=tuple(draw(st.lists(st.sampled_from(["cl1", "cl2"]), unique=True, max_size=2))),
        performance_scorecards=draw(st.sampled_from([0, 0, 3, 70000])),
        performance_buyers=draw(st.sampled_from([0, 2])),
        inclusion=draw(st.sampled_from([(), (), ("women_owned", "women_led"), ("youth_led",)])),
    )


@st.composite
def varied_alerts(draw: st.DrawFn, index: int, records: list[SupplierRecord]) -> Alert:
    point = draw(st.sampled_from([None, *POINTS]))
    distance = draw(st.sampled_from([None, 30.0, 150.0, 400.0])) if point else None
    located = [r for r in records if r.latitude is not None and r.longitude is not None]
    if point and located and draw(st.booleans()):  # a close call: a supplier within metres of the limit
        other = draw(st.sampled_from(located))
        assert other.latitude is not None and other.longitude is not None
        reach = distance_km(point[0], point[1], float(np.float32(other.latitude)), float(np.float32(other.longitude)))
        distance = max(0.0, reach + draw(st.sampled_from([-1e-3, -1e-9, 0.0, 1e-9, 1e-3, 0.9, -0.9])))
    weights = {c: draw(st.sampled_from([0.0, 0.1, 0.3, 1.0])) for c in CRITERIA}

    def some(values: list[str], most: int = 1) -> tuple[str, ...]:
        """A constraint in one standards out of four: one value or more of ``values``."""
        if draw(st.integers(0, 3)):
            return ()
        return tuple(draw(st.lists(st.sampled_from(values), unique=True, min_size=1, max_size=most)))

    query = Query(
        on_date=ON,
        isic_codes=some(QUERY_ISIC, 2),
        hs_codes=some(["61", "6109", "04"]),
        required_certifications=some(SCHEMES, 2),
        min_monthly_capacity=draw(st.sampled_from([None, None, None, 0.0, 999.5, 1000.0])),
        capacity_unit=draw(st.sampled_from([None, "pieces", "kg "])),
        countries=some(["IN", "EC"]),
        subdivisions=some(["IN-TN"]),
        cluster_ids=some(["cl1", "cl2"]),
        size_classes=some(["small", "medium"]),
        latitude=point[0] if point else None,
        longitude=point[1] if point else None,
        max_distance_km=distance,
        exclude_ids=some(["frm000", "frm001"]),
        require_women_owned=draw(st.integers(0, 4)) == 0,
        require_women_led=draw(st.integers(0, 4)) == 0,
        require_youth_led=draw(st.integers(0, 4)) == 0,
        description=draw(st.sampled_from([None, "", "unknownword"])) if draw(st.booleans()) else texts(draw),
        preferred_certifications=tuple(draw(st.lists(st.sampled_from([*SCHEMES, "haccp"]), max_size=3))),
        desired_monthly_capacity=draw(st.sampled_from([None, 500.0, 2000.0])),
        weights=weights,
    )
    top_n = draw(st.sampled_from([None, 1, 2, 4]))
    return Alert(
        standards_id=f"bst{index:03d}",
        version=1,
        owner="firm:x",
        agency_id=None,
        firm_id="x",
        query=replace(query, limit=top_n or 1),
        min_score=draw(st.sampled_from([None, 0.0, 0.3, 0.6])),
        top_n=top_n,
        enabled_at=draw(st.sampled_from([OLD, OLD, OLD, datetime(2030, 1, 1, tzinfo=UTC)])),  # the last not yet
    )


@st.composite
def varied_histories(
    draw: st.DrawFn,
) -> tuple[list[SupplierRecord], list[Alert], list[tuple[int, SupplierRecord | None]]]:
    records = [draw(varied_suppliers(i)) for i in range(draw(st.integers(2, 8)))]
    standards = [draw(varied_alerts(i, records)) for i in range(draw(st.integers(1, 25)))]
    steps = []
    for _ in range(draw(st.integers(1, 10))):
        number = draw(st.integers(0, len(records)))  # len(records): a supplier new to the catalogue
        if number < len(records) and draw(st.booleans()):  # a soft change, or a hard one
            edit = draw(st.sampled_from(["quality", "certificates", "capacity", "place"]))
            base = records[number]
            after: SupplierRecord | None = {
                "quality": replace(base, quality_score=draw(st.sampled_from([None, 0.1, 0.99]))),
                "certificates": replace(base, certificates=base.certificates[1:]),
                "capacity": replace(base, monthly_capacity=draw(st.sampled_from([None, 999.5, 5000.0]))),
                "place": replace(base, latitude=None, longitude=None),
            }[edit]
        else:
            after = None if draw(st.integers(0, 4)) == 0 else draw(varied_suppliers(number))
        steps.append((number, after))
    return records, standards, steps


def explained(matches: list[Match]) -> list[tuple[Any, ...]]:
    """Every published field of ``matches``: who, the score, each value and contribution, the rank."""
    return sorted(
        (
            m.alert.standards_id,
            m.supplier_id,
            m.version,
            m.evaluation.ranked.name,
            m.evaluation.ranked.score,
            list(m.evaluation.ranked.values.items()),
            list(m.evaluation.ranked.contributions.items()),
            m.evaluation.ranked.performance_basis,
            list(m.evaluation.weights.items()),
            m.evaluation.rank,
        )
        for m in matches
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(varied_histories())
def test_the_fast_path_explains_exactly_what_the_engine_does_standards_by_standards(
    history: tuple[list[SupplierRecord], list[Alert], list[tuple[int, SupplierRecord | None]]],
) -> None:
    # Each change of a history (new suppliers, edits, deletions, over views with a delta) finds
    # the same matches with the same explained scores and ranks, bit for bit, through the
    # index and the columns as through the engine standards by standards; and each match's
    # explanation is the one the shortlist of the whole catalogue gives the supplier.
    records, standards, steps = history
    first = build_view(records, 1, 1)
    index = StandardsIndex()
    for alert in standards:
        index.put(alert)
    current: dict[str, SupplierRecord | None] = {r.id: r for r in records}
    delta: dict[str, tuple[int, SupplierRecord | None]] = {}
    now = datetime(2026, 6, 1, tzinfo=UTC)
    changes = [SupplierChange(r.id, 1, now, None, r) for r in records]
    views = [first] * len(changes)
    for seq, (number, after) in enumerate(steps, start=2):
        supplier_id = f"frm{number:03d}"
        changes.append(SupplierChange(supplier_id, seq, now, current.get(supplier_id), after))
        current[supplier_id] = after
        delta[supplier_id] = (seq, after)
        views.append(with_delta(first, dict(delta), seq))
    for change, view in zip(changes, views, strict=True):
        index.changed([change])
        fast = reverse_match(index, [change], view, ON)
        assert explained(fast) == explained(reverse_match(index, [change], view, ON, naive=True))
        for match in fast:
            query = replace(match.alert.query, on_date=ON, limit=len(records) + 1)
            items = {item.id: item for item in run_query(view, query).items}
            item, ranked = items[match.supplier_id], match.evaluation.ranked
            assert (item.score, item.values, item.contributions) == (ranked.score, ranked.values, ranked.contributions)
