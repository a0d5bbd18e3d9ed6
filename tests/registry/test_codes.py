"""Code lookups for pickers: GET /v1/codes/isic and /v1/codes/hs."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import ADMIN, assert_problem


async def _codes(registry: httpx.AsyncClient, system: str, **params: Any) -> dict[str, Any]:
    response = await registry.get(f"/v1/codes/{system}", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_isic_code_prefix_lists_the_subtree_in_order(registry: httpx.AsyncClient) -> None:
    page = await _codes(registry, "isic", q="14", limit=50)
    assert [c["code"] for c in page["items"]] == ["14", "141", "1410", "142", "1420", "143", "1430"]
    first = page["items"][0]
    assert first == {
        "code": "14",
        "label": "Manufacture of wearing apparel",
        "level": "division",
        "parent": "C",
    }
    assert page["items"][2]["level"] == "class" and page["items"][2]["parent"] == "141"


async def test_isic_label_words_are_prefixes_folded(registry: httpx.AsyncClient) -> None:
    for q in ("knit", "KNÏT", "knitted croch"):
        page = await _codes(registry, "isic", q=q)
        assert "1430" in [c["code"] for c in page["items"]], q
    sections = await _codes(registry, "isic", q="agricultu")
    assert sections["items"][0] == {
        "code": "A",
        "label": "Agriculture, forestry and fishing",
        "level": "section",
        "parent": None,
    }
    assert (await _codes(registry, "isic", q="zzzq"))["items"] == []


async def test_hs_codes_by_prefix_with_dots_and_by_words(registry: httpx.AsyncClient) -> None:
    page = await _codes(registry, "hs", q="61.09")
    assert [c["code"] for c in page["items"]] == ["6109", "610910", "610990"]
    assert page["items"][0]["level"] == "heading" and page["items"][0]["parent"] == "61"
    assert page["items"][1]["level"] == "subheading" and page["items"][1]["parent"] == "6109"
    worded = await _codes(registry, "hs", q="t-shirts cotton", limit=100)
    assert "610910" in [c["code"] for c in worded["items"]]
    assert all("cotton" in c["label"].lower() for c in worded["items"])


async def test_code_lists_page_and_count_like_every_list(registry: httpx.AsyncClient) -> None:
    whole = await _codes(registry, "hs", q="61", limit=200, count="true")
    walked: list[str] = []
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"q": "61", "limit": 7} | ({"cursor": cursor} if cursor else {})
        page = await _codes(registry, "hs", **params)
        walked += [c["code"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == [c["code"] for c in whole["items"]]
    assert whole["total"] == len(walked) > 7
    every = await _codes(registry, "isic", count="true", limit=1)
    assert every["total"] == 766  # 21 sections, 88 divisions, 238 groups, 419 classes


async def test_code_lookup_refuses_bad_parameters(registry: httpx.AsyncClient) -> None:
    for system, params, field in (
        ("isic", {"sort": "label"}, "sort"),
        ("hs", {"cursor": "garbage!"}, "cursor"),
        ("hs", {"limit": 0}, "limit"),
        ("hs", {"lang": "fr"}, "lang"),  # no such parameter: labels are in English only
    ):
        response = await registry.get(f"/v1/codes/{system}", params=params, headers=ADMIN)
        assert_problem(response, 422, field=field)
