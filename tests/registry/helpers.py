"""Builders of valid registry payloads, so each test states only what it varies."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import ADMIN, agency_headers


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
