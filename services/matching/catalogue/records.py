"""Suppliers as the catalogue sees them, read from the registry's firm records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from services.common.feeds import FirmRecord, read_record
from services.matching.catalogue.query import INCLUSION_CLASSES
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
    # The inclusion classes attested true (of INCLUSION_CLASSES, in that order).
    inclusion: tuple[str, ...] = ()


def supplier_from_firm(data: dict[str, Any]) -> SupplierRecord | None:
    """The catalogue entry of a registry firm, or None when the firm is not a supplier.

    Its performance is what buyers' scorecards show once there are ``MIN_SCORECARDS``
    of them, and what the firm declared until then. ``FeedContractError`` when ``data``
    lacks a field of ``FirmRecord``.
    """
    firm = read_record(FirmRecord, data)
    if "supplier" not in firm.roles:
        return None
    observed = firm.observed_performance
    quality: float | None
    on_time: float | None
    if observed is not None and observed.scorecards >= MIN_SCORECARDS:
        quality, on_time = observed.quality_score, observed.on_time_delivery_rate
        scorecards, buyers = observed.scorecards, observed.buyers
    else:
        quality, on_time = firm.quality_score, firm.on_time_delivery_rate
        scorecards = buyers = 0
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
        quality_score=quality,
        on_time_delivery_rate=on_time,
        capabilities=" ".join(filter(None, [firm.capabilities, firm.name])),
        cluster_ids=tuple(firm.cluster_ids),
        performance_scorecards=scorecards,
        performance_buyers=buyers,
        inclusion=tuple(c for c in INCLUSION_CLASSES if (claim := getattr(firm, c)) is not None and claim.value),
    )
