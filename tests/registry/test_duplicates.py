"""Duplicate firms: detection with reasons on create and import, review, merge and its undo."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pydantic_core
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.principal import Role
from services.registry.duplicates import detector
from services.registry.duplicates.service import UnpackedProfiles
from tests.registry.helpers import (
    HEADER,
    checked_job,
    create,
    duplicates_checked,
    feed,
    firm_body,
    firm_row,
    firms_of,
    make_agency,
    network_body,
    to_csv,
    upload,
)
from tests.support import ADMIN, agency_headers, assert_problem, principal_headers


def india_firm(**overrides: Any) -> dict[str, Any]:
    return (
        firm_body(
            name="Shree Ganesh Knitting Mills Pvt. Ltd.",
            country="IN",
            subdivision="IN-TN",
            locality="Tiruppur",
            postal_code="641604",
            street="14 Kumaran Road",
            latitude=11.1085,
            longitude=77.3411,
            isic_codes=["1391", "1430"],
            national_ids=[{"scheme": "GSTIN", "value": "33AAACS1234F1Z5"}],
        )
        | overrides
    )


async def candidates(registry: httpx.AsyncClient, headers: Mapping[str, str], **params: str) -> list[dict[str, Any]]:
    """The review queue once the duplicate check has caught up with every write so far."""
    await duplicates_checked(registry)
    response = await registry.get("/v1/duplicates", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def codes(candidate: dict[str, Any]) -> set[str]:
    return {r["code"] for r in candidate["reasons"]}


# --- the detector itself -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Shree Ganesh Textiles Pvt. Ltd.", "Sri Ganesh Textiles Private Limited"),  # transliteration, legal form
        ("Lakshmi Engineering Works", "Laxmi Engg. Works"),  # transliteration, abbreviation
        ("Textiles Andinos Cía. Ltda.", "Andinos Textiles Compañía Limitada"),  # word order, legal form
        ("Confecciones Imbabura S.A.", "Confeciones Imbabura SA"),  # typo
    ],
)
def test_names_that_differ_in_form_only_are_alike(a: str, b: str) -> None:
    pa = detector.profile(id="a", name=a, country="IN", postal_code="641604")
    pb = detector.profile(id="b", name=b, country="IN", postal_code="641604")
    assert set(detector.blocking_keys(pa)) & set(detector.blocking_keys(pb))
    (match,) = detector.score_pairs([(pa, pb)])
    assert match.likely and "name_similar" in {r.code for r in match.reasons}, match


def test_different_firms_with_similar_names_are_not_paired() -> None:
    pa = detector.profile(id="a", name="Shree Ganesh Textiles", country="IN", postal_code="641604", isic_codes=["1391"])
    pb = detector.profile(id="b", name="Shree Ganesh Exports", country="IN", postal_code="641604", isic_codes=["4641"])
    pc = detector.profile(id="c", name="Ganesh Textiles Unit 2", country="IN", postal_code="641604")
    pd = detector.profile(id="d", name="Ganesh Textiles Unit 3", country="IN", postal_code="641604")
    assert not any(m.likely for m in detector.score_pairs([(pa, pb), (pc, pd)]))


def otavalo_firm(id: str, name: str, spot: int, **overrides: Any) -> detector.Profile:
    """One of thousands of Otavalo textile firms, each at its own place on a 330 m grid, with its own street
    and capacity, all of one trade: the same ISIC code, products and certification scheme."""
    fields: dict[str, Any] = {
        "id": id,
        "name": name,
        "country": "EC",
        "locality": "Otavalo",
        "postal_code": f"1004{spot % 10:02d}",
        "street": f"Calle Bolívar {100 + spot}",
        "latitude": 0.20 + (spot % 60) * 0.003,
        "longitude": -78.30 + (spot // 60) * 0.003,
        "isic_codes": ["1410"],
        "hs_codes": ["6109"],
        "monthly_capacity": 1000.0 * (1 + spot * 7919 % 97),
        "capacity_unit": "pieces",
        "certificates": [("iso-9001", None)],
    }
    return detector.profile(**(fields | overrides))


def common_town(count: int) -> list[detector.Profile]:
    """``count`` firms named with the town's and the trade's words, many of them alike but for a number."""
    stems = ["Otavalo Textiles", "Otavalo", "Textiles Otavalo Cía. Ltda.", "Otavalo Pvt Ltd", "Otavalo Tejidos S.A."]
    return [
        otavalo_firm(f"f{k}", f"{stems[k % len(stems)]} {k}" if k % 3 else stems[k % len(stems)], k)
        for k in range(count)
    ]


def likely_pairs(profiles: list[detector.Profile]) -> set[tuple[str, str]]:
    pairs = detector.candidate_pairs(profiles)
    table = detector.ProfileTable(profiles)
    scores = detector.scores(detector.table_weights(table, pairs[:, 0], pairs[:, 1]))
    return {(profiles[i].id, profiles[j].id) for i, j in pairs[scores >= detector.THRESHOLD].tolist()}


@pytest.mark.parametrize(
    ("original", "copy"),
    [
        ("Otavalo Pvt Ltd 449", "Otavalo Private Limited 449"),  # legal form before a number
        ("Textiles Otavalo Cía. Ltda.", "Txetiles Otavalo Cía. Ltda."),  # two letters swapped in a common word
        ("Otavalo", "Otaavlo"),  # a one-word name thousands of firms share
        ("Otavalo Tejidos S.A. 437", "Otavalo Tejidos Sociedad Anónima 473"),  # digits swapped, form written out
        ("Otavalo Tejidos S.A.", "Otavalo Tejidos Socieadd Anónima"),  # a typo in a written-out legal form
    ],
)
def test_copies_of_common_names_are_found_among_thousands(original: str, copy: str) -> None:
    town = common_town(3000)
    town[1234] = otavalo_firm("original", original, 1234)
    # Registered again 60 m away, everything else equal.
    latitude, longitude = 0.20 + (1234 % 60) * 0.003 + 0.0004, -78.30 + (1234 // 60) * 0.003 + 0.0004
    town.append(otavalo_firm("copy", copy, 1234, latitude=latitude, longitude=longitude))
    found = likely_pairs(town)
    assert ("original", "copy") in found
    assert found == {("original", "copy")}  # and none of the thousands of firms sharing the words is paired


def test_firms_of_a_common_name_are_told_apart_by_number_place_and_capacity() -> None:
    a = otavalo_firm("a", "Otavalo Textiles 796", 10)
    b = otavalo_firm("b", "Otavalo Textiles", 12)  # 660 m away
    c = otavalo_firm("c", "Otavalo Textiles 797", 11)  # 330 m away, another street and capacity
    matches = detector.score_pairs([(a, b), (a, c)], explain_all=True)
    assert not any(m.likely for m in matches), matches
    assert "different_number_in_name" in {r.code for r in matches[0].reasons}
    assert {"different_capacity", "same_products"} <= {r.code for r in matches[1].reasons}


def test_every_field_is_evidence() -> None:
    a = otavalo_firm("a", "Tejidos Andinos", 1, certificates=[("iso-9001", "Q-1234")])
    b = otavalo_firm("b", "Tejidos Andinos", 1, certificates=[("ISO-9001", "q 1234")], street=None)
    (match,) = detector.score_pairs([(a, b)])
    weights = {r.code: r.weight for r in match.reasons}
    assert weights["same_certificate"] == detector.SAME_CERTIFICATE
    assert weights["same_capacity"] == detector.SAME_CAPACITY
    assert weights["same_products"] == detector.SAME_PRODUCTS
    assert weights["same_postal_code"] == detector.LOCATED_POSTAL_CODE  # the distance is known: 0 m
    assert "same_locality" not in weights


def test_offline_blocking_finds_the_same_pairs_as_the_keys() -> None:
    profiles = [
        detector.profile(id=str(i), name=name, country="IN", postal_code="641604")
        for i, name in enumerate(
            ["Shree Ganesh Textiles", "Sri Ganesh Textiles", "Murugan Dyeing", "Murugan Dyeing Works"]
        )
    ]
    pairs = {tuple(p) for p in detector.candidate_pairs(profiles).tolist()}
    assert (0, 1) in pairs and (2, 3) in pairs and (0, 2) not in pairs


# --- detection on create -------------------------------------------------------------------------------------------


async def test_a_created_near_duplicate_is_queued_with_its_reasons(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry, country="IN")
    headers = agency_headers(agency)
    original = await create(registry, "/v1/firms", india_firm(), agency)
    twin = await create(
        registry,
        "/v1/firms",
        india_firm(
            name="Sri Ganesh Knitting Mills Private Limited",
            street="14, Kumaran Rd",
            latitude=11.1089,
            longitude=77.3405,
            national_ids=[],
        ),
        agency,
    )
    other = await create(
        registry,
        "/v1/firms",
        india_firm(
            name="Murugan Dyeing Works",
            national_ids=[],
            street="3 Palladam Road",
            latitude=11.09,
            longitude=77.30,
            isic_codes=["1313"],
        ),
        agency,
    )
    (pair,) = await candidates(registry, headers)
    assert {pair["firm_a"], pair["firm_b"]} == {original["id"], twin["id"]}
    assert pair["status"] == "open" and pair["source"] == "create" and pair["score"] >= 0.9
    assert {"name_similar", "near", "same_street_address", "same_postal_code", "same_sector"} <= codes(pair)
    assert not pair["same_national_id"]
    assert await candidates(registry, headers, firm_id=other["id"]) == []
    detail = (await registry.get(f"/v1/duplicates/{pair['id']}", headers=headers)).json()
    assert {f["id"] for f in detail["firms"]} == {original["id"], twin["id"]}


def test_a_packed_profile_unpacks_to_itself_and_another_format_to_none() -> None:
    p = detector.profile(
        id="frm_1",
        name="Sri Ganesh Knitting Mills (Unit 2) Pvt. Ltd.",
        country="IN",
        national_ids=[("GSTIN", "33aaacs1234f1z5")],
        street="14, Kumaran Rd",
        locality="Tiruppur",
        postal_code="641 604",
        latitude=11.1085,
        longitude=77.3411,
        isic_codes=["1391", "1430"],
        agency_id="agy_1",
        hs_codes=["6109", "6110"],
        monthly_capacity=12000,
        capacity_unit="Pieces",
        certificates=[("oeko-tex-100", None), ("iso-9001", "Q 1234")],
    )
    packed = pydantic_core.from_json(pydantic_core.to_json(p.pack()))
    assert detector.Profile.unpack(packed) == p
    assert detector.Profile.unpack([detector.PROFILE_FORMAT - 1, *packed[1:]]) is None


def test_unpacked_profiles_are_reused_for_the_same_text_only() -> None:
    """The check's ``UnpackedProfiles``: a stored profile read again as the same text is not
    decoded again; other text (the firm changed, another replica filed it) is; the least
    recently used entry goes first."""
    p = detector.profile(id="frm_1", name="Otavalo Textiles", country="EC", locality="Otavalo")
    q = detector.profile(id="frm_1", name="Otavalo Textiles Cia Ltda", country="EC", locality="Otavalo")
    text_p, text_q = (pydantic_core.to_json(x.pack()).decode() for x in (p, q))
    unpacked = UnpackedProfiles(2)
    first = unpacked.unpack("frm_1", text_p)
    assert first == p
    assert unpacked.unpack("frm_1", text_p) is first
    changed = unpacked.unpack("frm_1", text_q)
    assert changed == q and changed is not first
    assert unpacked.unpack("frm_1", text_q) is changed
    assert unpacked.unpack("frm_1", "[0]") is None  # another format: profiled afresh by the caller
    others = [unpacked.unpack(f"frm_{i}", text_p.replace("frm_1", f"frm_{i}")) for i in (2, 3)]
    again = unpacked.unpack("frm_2", text_p.replace("frm_1", "frm_2"))
    assert again is others[0]  # kept: the newest two
    unpacked.unpack("frm_1", text_p)  # frm_3, the least recently used, makes room
    assert unpacked.unpack("frm_3", text_p.replace("frm_1", "frm_3")) is not others[1]


async def stored_profile(url: str, firm_id: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            statement = text("SELECT profile FROM firm_profiles WHERE firm_id = :id")
            return (await connection.execute(statement, {"id": firm_id})).scalar_one_or_none()
    finally:
        await engine.dispose()


async def store_profile(url: str, firm_id: str, packed: list[Any]) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE firm_profiles SET profile = :p WHERE firm_id = :id"),
                {"p": pydantic_core.to_json(packed).decode(), "id": firm_id},
            )
    finally:
        await engine.dispose()


async def test_registered_firms_are_compared_through_their_stored_profiles(
    registry: httpx.AsyncClient, registry_url: str
) -> None:
    agency = await make_agency(registry, country="IN")
    headers = agency_headers(agency)
    original = await create(registry, "/v1/firms", india_firm(national_ids=[]), agency)
    await duplicates_checked(registry)
    stored = await stored_profile(registry_url, original["id"])
    assert stored is not None
    assert detector.Profile.unpack(pydantic_core.from_json(stored)) == detector.profile_of_firm(original)
    # The stored profile, not the firm's row, is what a newcomer is compared with: one that
    # forgets the street loses the street reason; one of an unknown format is profiled afresh.
    forgetful = detector.profile_of_firm(original)
    forgetful.street = ""
    await store_profile(registry_url, original["id"], forgetful.pack())
    twin = india_firm(name="Sri Ganesh Knitting Mills Private Limited", national_ids=[])
    first = await create(registry, "/v1/firms", twin, agency)
    (pair,) = await candidates(registry, headers, firm_id=first["id"])
    assert "same_street_address" not in codes(pair)
    await store_profile(registry_url, original["id"], [0, "outdated"])
    second = await create(registry, "/v1/firms", twin | {"name": "Shri Ganesh Knitting Mills"}, agency)
    pair = next(p for p in await candidates(registry, headers, firm_id=second["id"]) if original["id"] in p.values())
    assert "same_street_address" in codes(pair)
    deleted = await registry.delete(f"/v1/firms/{original['id']}", headers=headers | {"If-Match": '"1"'})
    assert deleted.status_code == 204, deleted.text
    await duplicates_checked(registry)
    assert await stored_profile(registry_url, original["id"]) is None


async def test_the_same_national_id_is_an_exact_match(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry, country="IN")
    await create(registry, "/v1/firms", india_firm(), agency)
    await create(
        registry, "/v1/firms", india_firm(name="SGKM Exports", street=None, latitude=None, longitude=None), agency
    )
    (pair,) = await candidates(registry, agency_headers(agency))
    assert pair["same_national_id"] and "same_national_id" in codes(pair)


async def test_candidates_are_visible_to_the_agencies_of_the_pair_only(registry: httpx.AsyncClient) -> None:
    a, b, c = [await make_agency(registry, name, "IN") for name in "ABC"]
    await create(registry, "/v1/firms", india_firm(), a)
    await create(registry, "/v1/firms", india_firm(name="Sree Ganesh Knitting Mills"), b)
    assert len(await candidates(registry, agency_headers(a))) == 1
    assert len(await candidates(registry, agency_headers(b))) == 1
    assert await candidates(registry, agency_headers(c)) == []
    (pair,) = await candidates(registry, ADMIN)
    # A pair across two agencies is decided by an admin.
    refused = await registry.post(f"/v1/duplicates/{pair['id']}/distinct", headers=agency_headers(a))
    assert refused.status_code == 403
    viewer = await registry.get("/v1/duplicates", headers=principal_headers(Role.viewer))
    assert viewer.status_code == 403
    decided = await registry.post(f"/v1/duplicates/{pair['id']}/distinct", headers=ADMIN)
    assert decided.status_code == 200 and decided.json()["status"] == "distinct"


async def test_a_pair_marked_distinct_stays_distinct_after_an_update(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry, country="IN")
    headers = agency_headers(agency)
    first = await create(registry, "/v1/firms", india_firm(), agency)
    await create(registry, "/v1/firms", india_firm(name="Shri Ganesh Knitting Mills", national_ids=[]), agency)
    (pair,) = await candidates(registry, headers)
    assert (await registry.post(f"/v1/duplicates/{pair['id']}/distinct", headers=headers)).status_code == 200
    again = await registry.post(f"/v1/duplicates/{pair['id']}/distinct", headers=headers)
    assert again.status_code == 409
    patched = await registry.patch(
        f"/v1/firms/{first['id']}", json={"employees": 80}, headers=headers | {"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    assert [(c["id"], c["status"]) for c in await candidates(registry, headers)] == [(pair["id"], "distinct")]


# --- merge and undo ------------------------------------------------------------------------------------------------


async def test_merge_repoints_references_and_undo_restores_everything(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry, country="IN")
    headers = agency_headers(agency)
    survivor = await create(registry, "/v1/firms", india_firm(), agency)
    twin = await create(registry, "/v1/firms", india_firm(name="Sri Ganesh Knitting Mills", national_ids=[]), agency)
    partner = await create(
        registry,
        "/v1/firms",
        india_firm(
            name="Kovai Yarn Traders",
            national_ids=[],
            street="1 Avinashi Road",
            latitude=11.02,
            longitude=76.96,
            isic_codes=["4641"],
        ),
        agency,
    )
    both = await create(
        registry,
        "/v1/networks",
        network_body(
            members=[
                {"firm_id": twin["id"], "role": "member"},
                {"firm_id": survivor["id"], "role": "member"},
                {"firm_id": partner["id"], "role": "member"},
            ]
        ),
        agency,
    )
    only_twin = await create(
        registry,
        "/v1/networks",
        network_body(name="Dyeing group", members=[{"firm_id": twin["id"], "role": "member"}]),
        agency,
    )
    (pair,) = await candidates(registry, headers)
    seq_before = (await feed(registry))[-1]["seq"]

    merged = await registry.post(
        f"/v1/duplicates/{pair['id']}/merge", json={"survivor_id": survivor["id"]}, headers=headers
    )
    assert merged.status_code == 200, merged.text
    merge = merged.json()
    assert merge["survivor_id"] == survivor["id"] and merge["merged_id"] == twin["id"] and not merge["automatic"]
    assert sorted(r["id"] for r in merge["repointed"]) == sorted([both["id"], only_twin["id"]])
    assert (await registry.get(f"/v1/firms/{twin['id']}", headers=headers)).status_code == 404
    net = (await registry.get(f"/v1/networks/{both['id']}", headers=headers)).json()
    assert [m["firm_id"] for m in net["members"]] == [survivor["id"], partner["id"]]  # one entry, not two
    net2 = (await registry.get(f"/v1/networks/{only_twin['id']}", headers=headers)).json()
    assert [m["firm_id"] for m in net2["members"]] == [survivor["id"]]
    by_member = (await registry.get("/v1/networks", params={"firm_id": survivor["id"]}, headers=headers)).json()
    assert len(by_member["items"]) == 2  # the tags index follows
    assert (await candidates(registry, headers))[0]["status"] == "merged"
    changes = [(c["entity"], c["entity_id"], c["op"]) for c in await feed(registry) if c["seq"] > seq_before]
    assert ("firm", twin["id"], "deleted") in changes
    assert ("network", both["id"], "updated") in changes and ("network", only_twin["id"], "updated") in changes
    assert ("firm_merge", merge["id"], "created") in changes
    again = await registry.post(f"/v1/duplicates/{pair['id']}/merge", headers=headers)
    assert again.status_code == 409

    seq_merged = (await feed(registry))[-1]["seq"]
    undone = await registry.post(f"/v1/duplicates/merges/{merge['id']}/undo", headers=headers)
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_at"] is not None
    back = (await registry.get(f"/v1/firms/{twin['id']}", headers=headers)).json()
    assert {k: v for k, v in back.items() if k not in ("version", "updated_at")} == {
        k: v for k, v in twin.items() if k not in ("version", "updated_at")
    }
    net = (await registry.get(f"/v1/networks/{both['id']}", headers=headers)).json()
    assert [m["firm_id"] for m in net["members"]] == [twin["id"], survivor["id"], partner["id"]]
    net2 = (await registry.get(f"/v1/networks/{only_twin['id']}", headers=headers)).json()
    assert [m["firm_id"] for m in net2["members"]] == [twin["id"]]
    assert [(c["id"], c["status"]) for c in await candidates(registry, headers)] == [(pair["id"], "open")]
    versions = [
        (c["entity"], c["entity_id"], c["op"], c["version"]) for c in await feed(registry) if c["seq"] > seq_merged
    ]
    assert ("firm", twin["id"], "created", 3) in versions  # deleted at version 2, back at 3
    assert ("firm_merge", merge["id"], "deleted", 2) in versions
    twice = await registry.post(f"/v1/duplicates/merges/{merge['id']}/undo", headers=headers)
    assert twice.status_code == 409


async def test_undo_refuses_when_a_repointed_record_changed_since(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry, country="IN")
    headers = agency_headers(agency)
    survivor = await create(registry, "/v1/firms", india_firm(), agency)
    twin = await create(registry, "/v1/firms", india_firm(name="Sri Ganesh Knitting Mills", national_ids=[]), agency)
    network = await create(
        registry, "/v1/networks", network_body(members=[{"firm_id": twin["id"], "role": "member"}]), agency
    )
    (pair,) = await candidates(registry, headers)
    merge = (await registry.post(f"/v1/duplicates/{pair['id']}/merge", headers=headers)).json()
    assert merge["survivor_id"] == survivor["id"]  # by default the older firm survives
    current = (await registry.get(f"/v1/networks/{network['id']}", headers=headers)).json()
    changed = await registry.patch(
        f"/v1/networks/{network['id']}",
        json={"status": "active"},
        headers=headers | {"If-Match": f'"{current["version"]}"'},
    )
    assert changed.status_code == 200
    refused = await registry.post(f"/v1/duplicates/merges/{merge['id']}/undo", headers=headers)
    assert_problem(refused, 409)
    assert (await registry.get(f"/v1/firms/{twin['id']}", headers=headers)).status_code == 404  # nothing half-undone


async def _three_firms_sharing_a_national_id(
    registry: httpx.AsyncClient,
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An agency's headers and three of its firms with one national id (three candidate pairs)."""
    agency = await make_agency(registry, country="IN")
    first = await create(registry, "/v1/firms", india_firm(), agency)
    second = await create(registry, "/v1/firms", india_firm(name="SGKM Exports", street=None), agency)
    third = await create(registry, "/v1/firms", india_firm(name="Ganesh Knits", street=None), agency)
    return agency_headers(agency), first, second, third


async def test_undo_restores_the_merged_firms_other_pairs(registry: httpx.AsyncClient) -> None:
    # Three firms sharing a national id: merging one pair drops the merged firm's pair with
    # the third; undo brings that pair back as it was, without a second copy of it.
    headers, first, second, third = await _three_firms_sharing_a_national_id(registry)
    before = {(c["firm_a"], c["firm_b"]): c for c in await candidates(registry, headers)}
    assert len(before) == 3 and all(c["same_national_id"] for c in before.values())
    pair = before[tuple(sorted((first["id"], second["id"])))]
    merged = await registry.post(
        f"/v1/duplicates/{pair['id']}/merge", json={"survivor_id": first["id"]}, headers=headers
    )
    assert merged.status_code == 200, merged.text
    assert len(await candidates(registry, headers)) == 2  # the merged firm's pair with the third is gone

    undone = await registry.post(f"/v1/duplicates/merges/{merged.json()['id']}/undo", headers=headers)
    assert undone.status_code == 200, undone.text
    after = {(c["firm_a"], c["firm_b"]): c for c in await candidates(registry, headers)}
    assert after == before
    assert (await registry.get(f"/v1/firms/{third['id']}", headers=headers)).status_code == 200


async def test_undo_leaves_out_pairs_with_a_firm_deleted_since(registry: httpx.AsyncClient) -> None:
    headers, first, second, third = await _three_firms_sharing_a_national_id(registry)
    pair = next(
        c for c in await candidates(registry, headers) if {c["firm_a"], c["firm_b"]} == {first["id"], second["id"]}
    )
    merge = (await registry.post(f"/v1/duplicates/{pair['id']}/merge", headers=headers)).json()
    deleted = await registry.delete(f"/v1/firms/{third['id']}", headers=headers | {"If-Match": '"1"'})
    assert deleted.status_code == 204, deleted.text
    undone = await registry.post(f"/v1/duplicates/merges/{merge['id']}/undo", headers=headers)
    assert undone.status_code == 200, undone.text
    assert [(c["id"], c["status"]) for c in await candidates(registry, headers)] == [(pair["id"], "open")]


# --- detection on import -------------------------------------------------------------------------------------------


async def test_an_import_queues_its_likely_duplicates(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    existing = await create(
        registry,
        "/v1/firms",
        firm_body(
            name="Confecciones Imbabura Cía. Ltda.",
            street="Calle Bolívar 12",
            locality="Atuntaqui",
            latitude=0.3317,
            longitude=-78.2139,
        ),
        agency,
    )
    rows = [
        firm_row(
            1,
            name="Confeciones Imbabura Compañía Limitada",
            street="Calle Bolivar 12",
            locality="Atuntaqui",
            latitude="0.3320",
            longitude="-78.2141",
            national_id_scheme="",
            national_id="",
        ),
        firm_row(2, name="Curtiembre Renaciente", locality="Cotacachi", isic_codes="1511"),
        firm_row(
            3,
            name="Curtiembre Renaciente S.A.",
            locality="Cotacachi",
            isic_codes="1511",
            national_id_scheme="",
            national_id="",
        ),
    ]
    response = await upload(registry, to_csv(rows), agency)
    job = await checked_job(registry, response.json()["id"], agency)
    assert job["progress"]["rows_accepted"] == 3 and job["progress"]["duplicates_suspected"] == 2, job
    found = await candidates(registry, agency_headers(agency), import_id=job["id"])
    assert len(found) == 2 and all(c["source"] == f"import:{job['id']}" for c in found)
    assert any(existing["id"] in (c["firm_a"], c["firm_b"]) for c in found)  # against the registry
    firms = {f["name"]: f["id"] for f in await firms_of(registry, agency)}
    within = {firms["Curtiembre Renaciente"], firms["Curtiembre Renaciente S.A."]}
    assert any({c["firm_a"], c["firm_b"]} == within for c in found)  # within the file


def otavalo_body(name: str, spot: int) -> dict[str, Any]:
    """``otavalo_firm`` as the body of ``POST /v1/firms``."""
    p = otavalo_firm("", name, spot)
    return firm_body(
        name=name,
        isic_codes=["1410"],
        hs_codes=["6109"],
        certifications=[{"scheme": "iso-9001"}],
        locality="Otavalo",
        postal_code=p.postal,
        street=f"Calle Bolívar {100 + spot}",
        latitude=p.latitude,
        longitude=p.longitude,
        monthly_capacity=p.capacity,
        capacity_unit="pieces",
    )


def otavalo_row(name: str, spot: int, **overrides: Any) -> dict[str, Any]:
    """``otavalo_body`` as a row of an imported file."""
    body = otavalo_body(name, spot)
    return (
        firm_row(spot, national_id_scheme="", national_id="", isic_codes="1410", hs_codes="6109")
        | {k: body[k] for k in ("name", "locality", "postal_code", "street", "capacity_unit")}
        | {"certifications": "iso-9001", "monthly_capacity": f"{body['monthly_capacity']:g}"}
        | {"latitude": f"{body['latitude']:.5f}", "longitude": f"{body['longitude']:.5f}"}
        | overrides
    )


async def test_copies_among_thousands_of_firms_sharing_their_words_are_found(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    stems = ["Otavalo Textiles", "Otavalo", "Textiles Otavalo Cía. Ltda.", "Otavalo Pvt Ltd", "Otavalo Tejidos S.A."]
    rows = [otavalo_row(f"{stems[k % 5]} {k}" if k % 3 else stems[k % 5], k) for k in range(2000)]
    rows[449] = otavalo_row("Otavalo Pvt Ltd 449", 449)
    rows[1000] = otavalo_row("Textiles Otavalo Cía. Ltda.", 1000)
    # The same firm twice in one file: two letters swapped in a word thousands of firms share, 60 m apart.
    rows.append(otavalo_row("Txetiles Otavalo Cía. Ltda.", 1000, latitude="0.32040", longitude="-78.25160"))
    header = [*HEADER, "postal_code", "monthly_capacity", "capacity_unit"]
    response = await upload(registry, to_csv(rows, header=header), agency)
    assert response.status_code == 202, response.text
    job = await checked_job(registry, response.json()["id"], agency, timeout=300)
    assert job["progress"]["rows_accepted"] == 2001, job
    ids = {(f["name"], f["street"]): f["id"] for f in await firms_of(registry, agency)}
    original = ids["Textiles Otavalo Cía. Ltda.", "Calle Bolívar 1100"]
    copy = ids["Txetiles Otavalo Cía. Ltda.", "Calle Bolívar 1100"]
    found = await candidates(registry, headers, import_id=job["id"])
    assert [{c["firm_a"], c["firm_b"]} for c in found] == [{original, copy}]  # and no pair of the 2,000 others
    # A firm of the file registered again on its own, its legal form written out before its number.
    again = await create(registry, "/v1/firms", otavalo_body("Otavalo Private Limited 449", 449), agency)
    (pair,) = await candidates(registry, headers, firm_id=again["id"])
    assert ids["Otavalo Pvt Ltd 449", "Calle Bolívar 549"] in (pair["firm_a"], pair["firm_b"])
    assert {"name_similar", "near", "same_street_address", "same_capacity", "same_products"} <= codes(pair)


async def test_imports_merge_exact_national_id_matches_when_the_agency_chose_so(registry: httpx.AsyncClient) -> None:
    agency = await make_agency(registry)
    headers = agency_headers(agency)
    existing = await create(
        registry,
        "/v1/firms",
        firm_body(name="Textiles Andinos", national_ids=[{"scheme": "RUC", "value": "1090000000001"}]),
        agency,
    )
    policy = await registry.put("/v1/duplicates/policy", json={"auto_merge_same_national_id": True}, headers=headers)
    assert policy.status_code == 200 and policy.json() == {"agency_id": agency, "auto_merge_same_national_id": True}
    response = await upload(registry, to_csv([firm_row(0, name="TEXTILES ANDINOS S.A."), firm_row(1)]), agency)
    job = await checked_job(registry, response.json()["id"], agency)
    assert job["progress"]["rows_accepted"] == 2 and job["progress"]["duplicates_merged"] == 1, job
    firms = await firms_of(registry, agency)
    assert len(firms) == 2 and existing["id"] in {f["id"] for f in firms}
    (merge,) = (await registry.get("/v1/duplicates/merges", headers=headers)).json()["items"]
    assert merge["automatic"] and merge["survivor_id"] == existing["id"]
    # Without the policy, the same match waits in the queue.
    other = await make_agency(registry, "Other")
    await create(
        registry,
        "/v1/firms",
        firm_body(name="Textiles Andinos", national_ids=[{"scheme": "RUC", "value": "1090000000001"}]),
        other,
    )
    response = await upload(registry, to_csv([firm_row(0, name="TEXTILES ANDINOS S.A.")]), other)
    job = await checked_job(registry, response.json()["id"], other)
    assert job["progress"]["duplicates_merged"] == 0
    queued = await candidates(registry, agency_headers(other), import_id=job["id"])
    # Against its own firm, and against the first agency's (merged across agencies by an admin only).
    assert len(queued) == 2 and all(c["same_national_id"] for c in queued)
