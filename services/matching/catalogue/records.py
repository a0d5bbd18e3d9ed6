"""Suppliers as the catalogue sees them, read from the registry's firm records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from services.common.feeds import FirmRecord, read_record


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


def supplier_from_firm(data: dict[str, Any]) -> SupplierRecord | None:
    """The catalogue entry of a registry firm, or None when the firm is not a supplier.

    ``FeedContractError`` when ``data`` lacks a field of ``FirmRecord``."""
    firm = read_record(FirmRecord, data)
    if "supplier" not in firm.roles:
        return None
    return SupplierRecord(
        id=firm.id,
        name=firm.name,
        agency_id=firm.agency_id,
        country=firm.country,
        subdivision=firm.subdivision,
        latitude=firm.latitude,
        longitude=firm.longitude,
        size_class=firm.size_class,
        isic_codes=tuple(firm.isic_codes),
        hs_codes=tuple(firm.hs_codes),
        certificates=tuple(Certificate(c.scheme, c.valid_from, c.valid_until) for c in firm.certifications),
        monthly_capacity=firm.monthly_capacity,
        capacity_unit=firm.capacity_unit,
        quality_score=firm.quality_score,
        on_time_delivery_rate=firm.on_time_delivery_rate,
        capabilities=" ".join(filter(None, [firm.capabilities, firm.name])),
        cluster_ids=tuple(firm.cluster_ids),
    )
