"""Suppliers as the catalogue sees them, parsed from the registry's firm records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from services.matching.scorecards.performance import MIN_SCORECARDS


@dataclass(frozen=True, slots=True)
class Certificate:
    scheme: str
    valid_from: date | None
    valid_until: date | None


@dataclass(frozen=True, slots=True)
class SupplierRecord:
    """The attributes matching uses; everything else about a firm stays in the registry."""

    id: str
    name: str
    agency_id: str | None
    country: str
    subdivision: str | None
    latitude: float | None
    longitude: float | None
    size_class: str
    isic_codes: tuple[str, ...]
    hs_codes: tuple[str, ...]
    certificates: tuple[Certificate, ...]
    monthly_capacity: float | None
    capacity_unit: str | None
    quality_score: float | None
    on_time_delivery_rate: float | None
    capabilities: str
    cluster_ids: tuple[str, ...]
    # Where quality_score and on_time_delivery_rate come from: buyers' scorecards (how
    # many, from how many buyers), or the firm's declaration (0, 0).
    performance_scorecards: int = 0
    performance_buyers: int = 0


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def supplier_from_firm(data: dict[str, Any]) -> SupplierRecord | None:
    """The catalogue entry of a registry firm, or None when the firm is not a supplier.

    Its performance is what buyers' scorecards show once there are ``MIN_SCORECARDS``
    of them, and what the firm declared until then.
    """
    if "supplier" not in data.get("roles", ()):
        return None
    observed = data.get("observed_performance")
    if observed and observed["scorecards"] >= MIN_SCORECARDS:
        quality, on_time = observed["quality_score"], observed["on_time_delivery_rate"]
        scorecards, buyers = observed["scorecards"], observed["buyers"]
    else:
        quality, on_time = data.get("quality_score"), data.get("on_time_delivery_rate")
        scorecards = buyers = 0
    return SupplierRecord(
        id=data["id"],
        name=data["name"],
        agency_id=data.get("agency_id"),
        country=data["country"],
        subdivision=data.get("subdivision"),
        latitude=data.get("latitude"),
        longitude=data.get("longitude"),
        size_class=data["size_class"],
        isic_codes=tuple(data.get("isic_codes", ())),
        hs_codes=tuple(data.get("hs_codes", ())),
        certificates=tuple(
            Certificate(c["scheme"], _date(c.get("valid_from")), _date(c.get("valid_until")))
            for c in data.get("certifications", ())
        ),
        monthly_capacity=data.get("monthly_capacity"),
        capacity_unit=data.get("capacity_unit"),
        quality_score=quality,
        on_time_delivery_rate=on_time,
        capabilities=" ".join(filter(None, [data.get("capabilities"), data["name"]])),
        cluster_ids=tuple(data.get("cluster_ids", ())),
        performance_scorecards=scorecards,
        performance_buyers=buyers,
    )
