"""Builders of valid registry payloads, so each test states only what it varies."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from tests.support import ADMIN, SERVICE, agency_headers, csv_records


async def make_agency(registry: httpx.AsyncClient, name: str = "Agency", country: str = "EC") -> str:
    response = await registry.post("/v1/agencies", json={"name": name, "country": country}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def cluster_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Atuntaqui garment cluster",
        "sector_isic": "1410",
        "country": "EC",
        "subdivision": "EC-I",
        "latitude": 0.3317,
        "longitude": -78.2139,
        "smes": 300,
        "jobs": 4000,
    } | overrides


def firm_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Textiles Andinos S.A.",
        "roles": ["supplier"],
        "size_class": "small",
        "isic_codes": ["1410", "1430"],
        "hs_codes": ["6109", "611020"],
        "certifications": [
            {"scheme": "iso-9001", "issuer": "Bureau Veritas", "valid_from": "2024-01-01", "valid_until": "2099-12-31"}
        ],
        "monthly_capacity": 12000,
        "capacity_unit": "pieces",
        "quality_score": 0.8,
        "on_time_delivery_rate": 0.9,
        "capabilities": "Knitted cotton t-shirts and sweaters, screen printing",
        "country": "EC",
        "subdivision": "EC-I",
        "latitude": 0.33,
        "longitude": -78.21,
    } | overrides


async def create(registry: httpx.AsyncClient, path: str, body: dict[str, Any], agency_id: str) -> dict[str, Any]:
    response = await registry.post(path, json=body, headers=agency_headers(agency_id))
    assert response.status_code == 201, response.text
    return dict(response.json())


def programme_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Ecuador cluster development programme",
        "country": "EC",
        "phase": "pilot",
        "start_date": "2024-01-01",
    } | overrides


def institution_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Centro de Desarrollo Textil",
        "kind": "training_provider",
        "country": "EC",
        "subdivision": "EC-I",
        "description": "Pattern making and quality control courses",
        "website": "https://cdt.example.ec",
    } | overrides


def broker_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "María Cevallos",
        "email": "maria.cevallos@example.ec",
        "country": "EC",
        "organisation": "Cámara de Comercio de Antonio Ante",
        "trained_on": "2024-03-15",
        "languages": ["es", "en"],
    } | overrides


def network_body(**overrides: Any) -> dict[str, Any]:
    """A horizontal network; pass members as [{"firm_id": ..., "role": "member"}, ...]."""
    return {
        "name": "Atuntaqui joint purchasing group",
        "kind": "horizontal",
        "joint_actions": [{"kind": "joint_purchase", "description": "Cotton yarn bought together"}],
        "description": "Knitwear SMEs buying yarn together",
    } | overrides


def activity_body(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Quality management workshop",
        "kind": "workshop",
        "start_date": "2024-05-06",
        "end_date": "2024-05-07",
        "country": "EC",
        "subdivision": "EC-I",
        "participants": {"entrepreneurs": 25, "brokers": 2},
        "women_participants": 11,
    } | overrides


# --- bulk imports ----------------------------------------------------------------------

HEADER = [
    "name",
    "national_id_scheme",
    "national_id",
    "roles",
    "size_class",
    "isic_codes",
    "hs_codes",
    "certifications",
    "country",
    "subdivision",
    "locality",
    "street",
    "latitude",
    "longitude",
    "employees",
]


def firm_row(i: int, **overrides: Any) -> dict[str, Any]:
    return {
        "name": f"Confecciones Imbabura {i} Cía. Ltda.",
        "national_id_scheme": "RUC",
        "national_id": f"10900{i:05d}001",
        "roles": "supplier",
        "size_class": "small",
        "isic_codes": "1410; 1430",
        "hs_codes": "6109",
        "certifications": "iso-9001:2024-01-01:2099-12-31",
        "country": "EC",
        "subdivision": "EC-I",
        "locality": f"Town {i}",
        "street": f"Calle {i} y Bolívar",
        "latitude": f"{0.33 + i * 0.01:.4f}",
        "longitude": f"{-78.21 - i * 0.01:.4f}",
        "employees": str(10 + i),
    } | overrides


def to_csv(rows: Sequence[dict[str, Any]], header: Sequence[str] = HEADER, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(header), delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


async def upload(
    registry: httpx.AsyncClient,
    content: bytes,
    agency: str,
    *,
    media: str = "text/csv",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await registry.post(
        "/v1/imports",
        content=content,
        params=params,
        headers=agency_headers(agency) | {"Content-Type": media} | (headers or {}),
    )


async def finished(registry: httpx.AsyncClient, job_id: str, agency: str, timeout: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await registry.get(f"/v1/imports/{job_id}", headers=agency_headers(agency))
        assert response.status_code == 200, response.text
        job = dict(response.json())
        if job["status"] in ("completed", "failed"):
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)


async def duplicates_checked(
    registry: httpx.AsyncClient, headers: Mapping[str, str] = ADMIN, timeout: float = 60
) -> dict[str, Any]:
    """Wait until the duplicate check (a consumer of the registry's feed) has checked every change
    written so far: then the review queue and the jobs' duplicate counts are current. ``headers``:
    a gateway key's, when ``registry`` is the gateway."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await registry.get("/v1/duplicates/check", headers=headers)
        assert response.status_code == 200, response.text
        status = dict(response.json())
        if status["lag"] == 0:
            return status
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.02)


async def checked_job(registry: httpx.AsyncClient, job_id: str, agency: str, timeout: float = 60) -> dict[str, Any]:
    """The job once its rows are in and the duplicate check has passed them."""
    await finished(registry, job_id, agency, timeout)
    await duplicates_checked(registry, timeout=timeout)
    response = await registry.get(f"/v1/imports/{job_id}", headers=agency_headers(agency))
    job = dict(response.json())
    assert job["progress"]["duplicate_check"] != "pending", job
    return job


async def import_csv(
    registry: httpx.AsyncClient, rows: Sequence[dict[str, Any]], agency: str, header: Sequence[str] = HEADER
) -> dict[str, Any]:
    response = await upload(registry, to_csv(rows, header), agency)
    assert response.status_code == 202, response.text
    return await finished(registry, response.json()["id"], agency)


async def errors_csv(registry: httpx.AsyncClient, job_id: str, agency: str) -> list[dict[str, str]]:
    response = await registry.get(f"/v1/imports/{job_id}/errors.csv", headers=agency_headers(agency))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return csv_records(response)


async def firms_of(registry: httpx.AsyncClient, agency: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"agency_id": agency, "limit": "200"} | ({"cursor": cursor} if cursor else {})
        page = (await registry.get("/v1/firms", params=params, headers=ADMIN)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def feed(registry: httpx.AsyncClient) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (await registry.get("/v1/changes", params={"after": after, "limit": 1000}, headers=SERVICE)).json()
        changes += page["items"]
        after = page["next_after"]
        if not page["has_more"]:
            return changes


def firm_result_body(**overrides: Any) -> dict[str, Any]:
    """A firm's figures for 2025; ``firm_id`` must be given."""
    return {
        "firm_id": "frm_0",
        "period": "2025",
        "currency": "USD",
        "sales": 250000.0,
        "exports": 40000.0,
        "employees": 40,
        "women_employees": 22,
        "new_products": 2,
    } | overrides
