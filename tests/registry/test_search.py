"""Firm search (``q`` on GET /v1/firms): folding, places, relevance, one typo, search as you type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from services.common.db import UTCDateTime, create_engine
from services.common.migrations import upgrade
from services.registry.app import MIGRATIONS
from tests.registry.helpers import create, firm_body, firm_row, import_csv, make_agency
from tests.support import ADMIN, Backend


async def _search(registry: httpx.AsyncClient, q: str, **params: Any) -> list[str]:
    """The names the search returns, in order (one page of up to 100)."""
    query: dict[str, Any] = {"q": q, "limit": 100} | params
    response = await registry.get("/v1/firms", params=query, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [firm["name"] for firm in response.json()["items"]]


async def _firm(registry: httpx.AsyncClient, agency: str, name: str, **fields: Any) -> dict[str, Any]:
    body = firm_body(name=name, capabilities=fields.pop("capabilities", None)) | fields
    return await create(registry, "/v1/firms", body, agency)


async def test_accents_and_case_are_folded_both_ways(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    await _firm(registry, agency, "Carpintería San José")
    await _firm(registry, agency, "Textiles del Norte")
    for q in ("carpinteria", "CARPINTERÍA", "Carpintería", "san jose", "JOSÉ"):
        assert await _search(registry, q) == ["Carpintería San José"], q


async def test_towns_and_subdivisions_are_searched(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    await _firm(registry, agency, "Muebles Uno", locality="Cuenca", subdivision="EC-A")  # EC-A: Azuay
    await _firm(registry, agency, "Muebles Dos", locality="Ibarra", subdivision="EC-I")  # EC-I: Imbabura
    assert await _search(registry, "cuenca") == ["Muebles Uno"]
    assert await _search(registry, "azuay") == ["Muebles Uno"]
    assert await _search(registry, "muebles imbabura") == ["Muebles Dos"]


async def test_every_word_must_match_and_the_last_may_be_a_prefix(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    await _firm(registry, agency, "Lácteos Andinos", capabilities="Quesos frescos y yogur", locality="Cayambe")
    await _firm(registry, agency, "Lácteos del Valle", capabilities="Leche pasteurizada", locality="Machachi")
    assert await _search(registry, "lacteos ques") == ["Lácteos Andinos"]
    assert await _search(registry, "lacteos q") == ["Lácteos Andinos"]
    assert sorted(await _search(registry, "lact")) == ["Lácteos Andinos", "Lácteos del Valle"]
    assert await _search(registry, "lacteos chocolate") == []
    # Words start where a word starts: "teos" is inside "lacteos", not the start of a word.
    assert await _search(registry, "teos") == []


async def test_one_typo_in_longer_words_but_not_in_short_ones(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    await _firm(registry, agency, "Carpintería Moderna", capabilities="Puertas de pino y oro")
    for q in ("carpinetria", "carpintreia", "karpinteria", "carpinteira", "carpintera", "puerats"):
        assert await _search(registry, q) == ["Carpintería Moderna"], q
    assert await _search(registry, "carpintxyia") == []  # two typos
    assert await _search(registry, "ora") == []  # short words must be exact
    assert await _search(registry, "oro") == ["Carpintería Moderna"]


async def test_relevance_orders_name_place_capabilities_then_typos_then_id(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    in_text_1 = await _firm(registry, agency, "Acme Uno", capabilities="Madera tratada")
    in_name = await _firm(registry, agency, "Maderas del Sur")
    in_place = await _firm(registry, agency, "Acme Dos", locality="La Madera")
    in_text_2 = await _firm(registry, agency, "Acme Tres", capabilities="Trabajos en madera")
    typo_in_name = await _firm(registry, agency, "Madersa Hnos")
    response = await registry.get("/v1/firms", params={"q": "madera", "limit": 100}, headers=ADMIN)
    got = [f["id"] for f in response.json()["items"]]
    text_ids = sorted([in_text_1["id"], in_text_2["id"]])
    assert got == [in_name["id"], in_place["id"], *text_ids, typo_in_name["id"]]


async def test_relevance_pages_walk_the_same_order_and_count(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    for i, (name, capabilities) in enumerate(
        [("Panadería Uno", None), ("Dulces", "pan y pasteles"), ("Panes Finos", None), ("Otro", "panes")] * 2
    ):
        await _firm(registry, agency, f"{name} {i}", capabilities=capabilities)
    await _firm(registry, agency, "Metales", capabilities="acero")
    whole = (await registry.get("/v1/firms", params={"q": "pan", "limit": 100}, headers=ADMIN)).json()
    walked: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"q": "pan", "limit": 3, "count": "true"} | ({"cursor": cursor} if cursor else {})
        page = (await registry.get("/v1/firms", params=params, headers=ADMIN)).json()
        assert page["total"] == 8
        walked += [f["id"] for f in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == [f["id"] for f in whole["items"]]
    assert len(set(walked)) == 8


async def test_an_explicit_sort_replaces_relevance(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    await _firm(registry, agency, "Zeta Maderas")
    await _firm(registry, agency, "Alfa", capabilities="maderas")
    assert await _search(registry, "maderas") == ["Zeta Maderas", "Alfa"]
    assert await _search(registry, "maderas", sort="name") == ["Alfa", "Zeta Maderas"]


async def test_search_follows_updates(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    firm = await _firm(registry, agency, "Calzado Viejo")
    patched = await registry.patch(
        f"/v1/firms/{firm['id']}",
        json={"name": "Zapatería Nueva", "locality": "Ambato"},
        headers=ADMIN | {"If-Match": f'"{firm["version"]}"'},
    )
    assert patched.status_code == 200, patched.text
    assert await _search(registry, "calzado") == []
    assert await _search(registry, "zapateria ambato") == ["Zapatería Nueva"]
    assert await _search(registry, "zapatreia") == ["Zapatería Nueva"]  # the new word is in the typo index


async def test_imported_firms_are_found_with_a_typo(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    job = await import_csv(registry, [firm_row(1, name="Ebanistería Quiteña"), firm_row(2)], agency)
    assert job["status"] == "completed", job
    assert await _search(registry, "ebanisteria") == ["Ebanistería Quiteña"]
    assert await _search(registry, "ebanistreia quitena") == ["Ebanistería Quiteña"]


async def test_a_query_without_words_filters_nothing(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    await _firm(registry, agency, "Uno")
    await _firm(registry, agency, "Dos")
    assert sorted(await _search(registry, "¡¿-!")) == ["Dos", "Uno"]


async def test_the_upgrade_fills_search_columns_of_existing_firms(backend: Backend) -> None:
    """Migration 0007: firms written before it are found like new ones, typos included."""
    url = await backend.empty()
    await upgrade(MIGRATIONS, url, "0006")
    now = datetime.now(UTC)
    texts = ("id", "agency_id", "name", "size_class", "country", "subdivision", "locality", "capabilities")
    lists = ("roles", "isic_codes", "national_ids", "hs_codes", "certifications", "cluster_ids")
    firms = sa.table(
        "firms",
        sa.column("version", sa.Integer),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
        *(sa.column(name, sa.String) for name in texts),
        *(sa.column(name, sa.JSON) for name in lists),
    )
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                firms.insert().values(
                    id="frm_old",
                    agency_id="agy_old",
                    version=1,
                    created_at=now,
                    updated_at=now,
                    name="Tejidos Añejos",
                    roles=["supplier"],
                    size_class="small",
                    isic_codes=["1391"],
                    country="EC",
                    subdivision="EC-A",
                    locality="Gualaceo",
                    capabilities="Macanas de ikat",
                    national_ids=[],
                    hs_codes=[],
                    certifications=[],
                    cluster_ids=[],
                )
            )
        await upgrade(MIGRATIONS, url, "head")
        async with engine.connect() as connection:
            row = (await connection.execute(sa.text("SELECT search_name, search_place, search_text FROM firms"))).one()
            words = set((await connection.scalars(sa.text("SELECT DISTINCT word FROM search_words"))).all())
    finally:
        await engine.dispose()
    assert tuple(row) == (" tejidos anejos ", " gualaceo azuay ", " macanas de ikat ")
    assert {"tejidos", "anejos", "gualaceo", "azuay", "macanas", "ikat"} <= words
