"""The demo data: real clusters, plausible firms, loaded once, every record in the change feed."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from services.common.db import create_engine, create_sessionmaker
from services.common.geo import distance_km
from services.registry.app import create_app
from services.registry.clusters.models import Cluster
from services.registry.demo import DemoReport, _resolve, build_plan, load_demo
from services.registry.duplicates.models import DuplicateCandidate
from services.registry.firms.models import Firm
from services.registry.records import OUTBOX
from services.registry.settings import RegistrySettings
from tests.registry.helpers import duplicates_checked
from tests.support import running

AS_OF = date(2025, 6, 30)
SCALE = 0.1  # about 35 firms a cluster: enough for every kind of network, quick on both backends


def km(lat1: float | None, lon1: float | None, lat2: float | None, lon2: float | None) -> float:
    assert lat1 is not None and lon1 is not None and lat2 is not None and lon2 is not None
    return distance_km(lat1, lon1, lat2, lon2)


class KeyAsId(dict[str, str]):
    """Resolves every planned reference to a stand-in id derived from its key (ids hold
    no ':'), so a plan validates without a database."""

    def __missing__(self, key: str) -> str:
        self[key] = stand_in = "key_" + hashlib.sha256(key.encode()).hexdigest()[:32]
        return stand_in


def test_full_size_plan_is_plausible_and_valid() -> None:
    plan = build_plan(as_of=AS_OF)
    counts = plan.counts()
    assert counts["agency"] == 2 and counts["programme"] == 6 and counts["cluster"] == 11
    assert 3000 <= counts["firm"] <= 4000
    assert counts["institution"] >= 30 and counts["broker"] >= 20
    assert counts["network"] >= 100 and counts["activity"] >= 100
    # Network members' figures for a baseline year and the last full year: the firm outcomes' input.
    assert counts["firm_result"] >= 1000 and counts["firm_result"] % 2 == 0

    validated: dict[str, Any] = {}
    ids = KeyAsId()
    for record in plan.records:  # what create_record gets, apart from the reference checks
        validated[record.key] = record.spec.create.model_validate(_resolve(record.data, ids))
    clusters = {ids[key]: c for key, c in validated.items() if key.startswith("cluster:")}
    firms = [f for key, f in validated.items() if key.startswith("firm:")]
    for firm in firms:
        cluster = clusters[firm.cluster_ids[0]]
        assert firm.subdivision == cluster.subdivision
        assert km(firm.latitude, firm.longitude, cluster.latitude, cluster.longitude) < 100, firm.name
    sizes = Counter(f.size_class for f in firms)
    assert sizes["micro"] > sizes["small"] > sizes["medium"] > sizes["large"] > 0
    leads = [f for f in firms if "lead_firm" in f.roles]
    assert 50 <= len(leads) <= 200 and all(f.size_class == "large" for f in leads)
    assert any("supplier" in f.roles for f in leads)
    assert len({f.name for f in firms}) == len(firms)
    registered_once = [f for key, f in validated.items() if key.startswith("firm:") and ":duplicate:" not in key]
    national_ids = [i.value for f in registered_once for i in f.national_ids]
    assert len(set(national_ids)) == len(national_ids)
    assert 10 <= len(firms) - len(registered_once) <= 100  # some registered twice, for the duplicate review queue
    recorded = [f for f in firms if f.women_owned is not None]
    assert 0.5 * len(firms) < len(recorded) < 0.7 * len(firms)  # programmes record it for most firms, not all
    women_owned = [f for f in recorded if f.women_owned and f.women_owned.value]
    assert 0.1 * len(recorded) < len(women_owned) < 0.3 * len(recorded)
    assert all(f.women_led and f.women_led.value for f in women_owned)
    micro = [f for f in recorded if f.size_class == "micro"]
    large = [f for f in recorded if f.size_class == "large"]
    share = {
        size: sum(bool(f.women_owned and f.women_owned.value) for f in group) / len(group)
        for size, group in (("micro", micro), ("large", large))
    }
    assert share["micro"] > share["large"]
    assert any(f.youth_led and f.youth_led.value for f in recorded)
    with_women = [f for f in firms if f.women_employees is not None]
    assert 0.6 * len(firms) < len(with_women) < 0.8 * len(firms)
    certificates = [c for f in firms for c in f.certifications]
    valid = sum(c.valid_on(AS_OF) for c in certificates)
    assert 0.5 * len(certificates) < valid < 0.95 * len(certificates)
    brokers = [b for key, b in validated.items() if key.startswith("broker:")]
    three_years_ago = AS_OF - timedelta(days=3 * 365)
    trained_lately = {b.cluster_ids[0] for b in brokers if b.trained_on and b.trained_on >= three_years_ago}
    assert trained_lately == set(clusters), "a cluster without a broker trained in the last three years"
    assert all(b.trained_on is None or b.trained_on <= AS_OF for b in brokers)
    networks = [n for key, n in validated.items() if key.startswith("network:")]
    vertical = [n for n in networks if n.kind == "vertical"]
    assert vertical and all(5 <= len(n.members) <= 21 for n in vertical)
    assert all(any(a.kind == "supplier_upgrading" for a in n.joint_actions) for n in vertical)
    assert all(3 <= len(n.members) <= 10 for n in networks if n.kind == "horizontal")


def test_plan_is_deterministic() -> None:
    first = build_plan(scale=0.1, as_of=AS_OF)
    second = build_plan(scale=0.1, as_of=AS_OF)
    assert [(r.key, r.data) for r in first.records] == [(r.key, r.data) for r in second.records]
    other_seed = build_plan(scale=0.1, as_of=AS_OF, seed=7)
    assert [r.data for r in other_seed.records] != [r.data for r in first.records]


async def test_load_demo_once_into_the_registry(registry_settings: RegistrySettings) -> None:
    engine = create_engine(registry_settings.effective_database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session:  # the migrations may publish changes of their own
            before = await session.scalar(select(func.coalesce(func.max(OUTBOX.c.seq), 0)))
        report = await load_demo(sessionmaker, scale=SCALE, as_of=AS_OF, batch_size=100)
        assert report.loaded
        assert report.counts["agency"] == 2 and report.counts["cluster"] == 11
        assert 300 <= report.counts["firm"] <= 500
        assert report.counts["network"] >= 11 and report.counts["broker"] >= 20

        async with sessionmaker() as session:
            clusters = {c.id: c for c in (await session.scalars(select(Cluster))).all()}
            firms = (await session.scalars(select(Firm))).all()
            columns = (OUTBOX.c.entity, OUTBOX.c.entity_id, OUTBOX.c.op)
            feed = (await session.execute(select(*columns).where(OUTBOX.c.seq > before))).all()

        by_name = {c.name: c for c in clusters.values()}
        atuntaqui = by_name["Atuntaqui garment cluster"]
        assert (atuntaqui.subdivision, atuntaqui.sector_isic) == ("EC-I", "1410")
        assert km(atuntaqui.latitude, atuntaqui.longitude, 0.332, -78.214) < 2
        tiruppur = by_name["Tiruppur knitwear cluster"]
        assert (tiruppur.subdivision, tiruppur.sector_isic) == ("IN-TN", "1430")
        assert km(tiruppur.latitude, tiruppur.longitude, 11.108, 77.341) < 2

        assert len(firms) == report.counts["firm"]
        for firm in firms:
            assert firm.cluster_ids, firm.name
            nearest = min(
                km(firm.latitude, firm.longitude, clusters[cid].latitude, clusters[cid].longitude)
                for cid in firm.cluster_ids
            )
            assert nearest < 100, firm.name

        # The firms registered twice reach the duplicate review queue, as through the API: the
        # duplicate check of a registry running on the database finds them behind the writes.
        async with running(create_app(registry_settings)) as registry:
            await duplicates_checked(registry)
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(DuplicateCandidate))

        # One "created" change per record, nothing else.
        assert len(feed) == sum(report.counts.values())
        assert {op for _, _, op in feed} == {"created"}
        assert Counter(entity for entity, _, _ in feed) == Counter(report.counts)
        assert len({entity_id for _, entity_id, _ in feed}) == len(feed)

        again = await load_demo(sessionmaker, scale=SCALE, as_of=AS_OF)
        assert again == DemoReport(loaded=False, counts={}, seconds=again.seconds)
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).where(OUTBOX.c.seq > before)) == len(feed)
            assert await session.scalar(select(func.count()).select_from(Firm)) == len(firms)
    finally:
        await engine.dispose()
