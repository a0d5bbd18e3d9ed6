"""The live catalogue: feed pages, the delta, rebuilds, snapshots and restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.common.changefeed import Change, ChangePage
from services.common.feeds import FeedContractError
from services.matching.catalogue import snapshot
from services.matching.catalogue.catalogue import Catalogue
from services.matching.catalogue.lifecycle import CatalogueLifecycle
from services.matching.catalogue.query import Query
from services.matching.catalogue.store import CatalogueStore, decode, encode
from services.matching.settings import MatchingSettings
from tests.matching.test_exactness import bare_supplier
from tests.support import running

ON = date(2026, 6, 1)


def firm(index: int, **overrides: Any) -> dict[str, Any]:
    return {
        "id": f"frm_{index:05d}",
        "name": f"Firm {index}",
        "agency_id": "agy_1",
        "roles": ["supplier"],
        "country": "IN",
        "subdivision": "IN-TN",
        "latitude": 11.0 + index / 100,
        "longitude": 77.0,
        "size_class": "small",
        "isic_codes": ["1430" if index % 2 else "1050"],
        "hs_codes": [],
        "certifications": [],
        "monthly_capacity": 100.0 * index,
        "capacity_unit": "pieces",
        "quality_score": None,
        "on_time_delivery_rate": None,
        "capabilities": "knitted sweaters" if index % 2 else "milk and cheese",
        "cluster_ids": [],
    } | overrides


class Feed:
    def __init__(self) -> None:
        self.seq = 0

    def page(self, *changes: tuple[str, dict[str, Any] | str], has_more: bool = False) -> ChangePage:
        items = []
        for op, payload in changes:
            self.seq += 1
            entity_id = payload if isinstance(payload, str) else payload["id"]
            items.append(
                Change(
                    seq=self.seq,
                    entity="firm",
                    entity_id=entity_id,
                    op=op,
                    version=1,
                    agency_id="agy_1",
                    occurred_at=datetime.now(UTC),
                    data=None if isinstance(payload, str) else payload,
                )
            )
        return ChangePage(items=items, next_after=self.seq, has_more=has_more)


def ids(catalogue: Catalogue, **query: Any) -> list[str]:
    return [r.id for r in catalogue.query(Query(on_date=ON, limit=100, **query)).items]


async def test_pages_deltas_rebuilds_and_restarts(tmp_path: Path) -> None:
    store = CatalogueStore(tmp_path / "store.sqlite3")
    live = CatalogueLifecycle(store, snapshots=tmp_path / "snapshots", delta_limit=5, small_catalogue=0)
    catalogue = live.catalogue
    assert await live.load_cursor() == 0
    feed = Feed()
    # A catch-up in two pages: nothing is published until the feed is drained.
    await live.apply(feed.page(*[("created", firm(i)) for i in range(1, 6)], has_more=True))
    assert not catalogue.loaded.is_set()
    await live.apply(feed.page(*[("created", firm(i)) for i in range(6, 13)]))
    assert catalogue.loaded.is_set()
    assert ids(catalogue, isic_codes=("1430",)) == [f"frm_{i:05d}" for i in (1, 3, 5, 7, 9, 11)]
    first_version = catalogue.version
    assert first_version is not None
    assert snapshot.latest(tmp_path / "snapshots") is not None

    # Small changes go to the delta: the main segment and the text model stay.
    await live.apply(feed.page(("updated", firm(1, isic_codes=["1050"])), ("deleted", "frm_00003")))
    assert catalogue.view is not None and len(catalogue.view.delta_records) == 2
    assert catalogue.version is not None and catalogue.version.split(".")[0] == first_version.split(".")[0]
    assert ids(catalogue, isic_codes=("1430",)) == [f"frm_{i:05d}" for i in (5, 7, 9, 11)]
    assert "frm_00001" in ids(catalogue, isic_codes=("1050",))

    # A restart opens the snapshot and puts later changes back in the delta.
    restarted = CatalogueLifecycle(
        CatalogueStore(tmp_path / "store.sqlite3"), snapshots=tmp_path / "snapshots", delta_limit=5, small_catalogue=0
    )
    assert await restarted.load_cursor() == feed.seq
    await restarted.caught_up()
    assert ids(restarted.catalogue, isic_codes=("1430",)) == ids(catalogue, isic_codes=("1430",))
    assert restarted.catalogue.version == catalogue.version

    # Past the delta limit the main segment is rebuilt in the background: a new epoch.
    await live.apply(feed.page(*[("created", firm(i)) for i in range(20, 26)]))
    await live.wait_rebuilt()
    assert catalogue.view is not None and catalogue.view.delta_records == {}
    assert catalogue.version is not None and catalogue.version.split(".")[0] != first_version.split(".")[0]
    assert ids(catalogue, isic_codes=("1430",)) == [f"frm_{i:05d}" for i in (5, 7, 9, 11, 21, 23, 25)]


async def test_a_lead_firm_only_firm_is_not_a_supplier(tmp_path: Path) -> None:
    live = CatalogueLifecycle(CatalogueStore(tmp_path / "store.sqlite3"))
    catalogue = live.catalogue
    await live.load_cursor()
    feed = Feed()
    await live.apply(feed.page(("created", firm(1)), ("created", firm(2, roles=["lead_firm"]))))
    assert ids(catalogue) == ["frm_00001"]
    await live.apply(feed.page(("updated", firm(1, roles=["lead_firm"]))))
    assert ids(catalogue) == []


async def test_queries_run_while_the_feed_applies(tmp_path: Path) -> None:
    """Views are immutable: a query in a thread never sees a half-applied page."""
    live = CatalogueLifecycle(CatalogueStore(tmp_path / "store.sqlite3"), delta_limit=3, small_catalogue=0)
    catalogue = live.catalogue
    await live.load_cursor()
    feed = Feed()
    await live.apply(feed.page(*[("created", firm(i)) for i in range(1, 40)]))

    async def query_loop() -> None:
        for _ in range(50):
            result = await asyncio.to_thread(catalogue.query, Query(on_date=ON, limit=200))
            assert result.eligible_count == len(result.items)

    writer = asyncio.gather(*[live.apply(feed.page(("updated", firm(i, name=f"Renamed {i}")))) for i in range(1, 10)])
    await asyncio.gather(query_loop(), writer)
    await live.wait_rebuilt()
    names = {r.name for r in catalogue.query(Query(on_date=ON, limit=200)).items}
    assert {f"Renamed {i}" for i in range(1, 10)} <= names


def observed(scorecards: int, buyers: int, quality: float, on_time: float) -> dict[str, Any]:
    return {
        "observed_performance": {
            "quality_score": quality,
            "on_time_delivery_rate": on_time,
            "scorecards": scorecards,
            "buyers": buyers,
            "latest_on": "2026-05-01",
        }
    }


async def test_observed_performance_replaces_the_declared_from_three_scorecards(tmp_path: Path) -> None:
    """In the main segment, in the delta and after a restart from a snapshot."""
    declared = {"quality_score": 0.5, "on_time_delivery_rate": 0.5}
    live = CatalogueLifecycle(
        CatalogueStore(tmp_path / "store.sqlite3"), snapshots=tmp_path / "snapshots", delta_limit=5, small_catalogue=0
    )
    await live.load_cursor()
    feed = Feed()
    await live.apply(
        feed.page(
            ("created", firm(1, **declared)),
            ("created", firm(2, **declared, **observed(2, 1, 1.0, 1.0))),  # too few: declared
            ("created", firm(3, **declared, **observed(4, 2, 0.9, 0.7))),
        )
    )

    def performance(catalogue: Catalogue) -> dict[str, tuple[float, tuple[int, int] | None]]:
        weights = {"text": 0.0, "certifications": 0.0, "proximity": 0.0, "capacity": 0.0, "performance": 1.0}
        result = catalogue.query(Query(on_date=ON, limit=10, weights=weights))
        return {r.id: (r.values["performance"], r.performance_basis) for r in result.items}

    expected = {
        "frm_00001": (0.5, None),
        "frm_00002": (0.5, None),
        "frm_00003": (pytest.approx(0.8), (4, 2)),
    }
    assert performance(live.catalogue) == expected
    await live.apply(feed.page(("updated", firm(1, **declared, **observed(3, 3, 0.6, 0.6)))))  # into the delta
    assert live.catalogue.view is not None and live.catalogue.view.delta_records
    expected["frm_00001"] = (pytest.approx(0.6), (3, 3))
    assert performance(live.catalogue) == expected

    restarted = CatalogueLifecycle(
        CatalogueStore(tmp_path / "store.sqlite3"), snapshots=tmp_path / "snapshots", delta_limit=5, small_catalogue=0
    )
    await restarted.load_cursor()
    await restarted.caught_up()
    assert performance(restarted.catalogue) == expected


async def test_a_firm_that_breaks_the_feed_contract_stops_the_page(tmp_path: Path) -> None:
    """A firm record without a field the catalogue reads is not skipped: the page is
    refused whole, the cursor stays, and the page applies once the record is whole."""
    store = CatalogueStore(tmp_path / "store.sqlite3")
    live = CatalogueLifecycle(store)
    catalogue = live.catalogue
    await live.load_cursor()
    feed = Feed()
    await live.apply(feed.page(("created", firm(1))))
    broken = firm(3)
    del broken["size_class"]
    page = feed.page(("created", firm(2)), ("created", broken))
    with pytest.raises(FeedContractError, match=r"FirmRecord 'frm_00003' breaks the feed contract: size_class"):
        await live.apply(page)
    assert store.cursor() == 1 and store.count() == 1
    assert ids(catalogue) == ["frm_00001"]
    page.items[1].data = firm(3)  # the publisher, fixed, serves the page again
    await live.apply(page)
    assert store.cursor() == 3 and ids(catalogue) == ["frm_00001", "frm_00002", "frm_00003"]


def test_stored_suppliers_keep_their_inclusion_classes() -> None:
    """The local store gives back what it was given: a stored supplier is hashed and compared
    (reverse matching keys its records), so its classes come back as a tuple, and a record
    stored before they existed reads as holding none."""
    record = bare_supplier("frm_1", inclusion=("women_owned", "women_led"))
    again = decode(encode(record))
    assert again == record and hash(again) == hash(record)
    older = encode(bare_supplier("frm_2")).replace(',"inclusion":[]', "")
    assert "inclusion" not in older and decode(older).inclusion == ()


async def test_the_consortium_figures_budget_is_a_matching_setting(
    tmp_path: Path, matching_settings: MatchingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MATCHING_CONSORTIUM_FIGURES_BYTES`` reaches the catalogue's network index (which
    caps the figures its views keep), and a negative budget is refused at start-up."""
    from services.matching.app import create_app

    monkeypatch.setenv("MATCHING_CONSORTIUM_FIGURES_BYTES", "4096")
    assert MatchingSettings().consortium_figures_bytes == 4096
    monkeypatch.setenv("MATCHING_CONSORTIUM_FIGURES_BYTES", "-1")
    with pytest.raises(ValidationError, match="consortium_figures_bytes"):
        MatchingSettings()
    app = create_app(matching_settings.model_copy(update={"consortium_figures_bytes": 4096}), http_mounts={})
    async with running(app):
        assert app.state.lifecycle.figures_bytes == 4096
    live = CatalogueLifecycle(CatalogueStore(tmp_path / "store.sqlite3"), figures_bytes=4096)
    await live.load_cursor()
    assert live.catalogue.view is not None and live.catalogue.view.networks.figures_bytes == 4096
