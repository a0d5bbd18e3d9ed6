"""A shortlist query as the engine runs it, and the documented scoring constants.

Scoring (the contract clients rely on; see docs/api.md):

* Every active soft criterion scores a supplier in [0, 1]:
  - ``text``: cosine similarity of the TF-IDF vectors of the request's description
    and the supplier's capabilities and name (scikit-learn ``TfidfVectorizer`` fitted
    on the catalogue: sublinear tf, unicode accents stripped, l2-normalised rows);
  - ``certifications``: the share of the preferred certification schemes the supplier
    holds with a certificate valid on the request date;
  - ``proximity``: ``max(0, 1 - d / R)`` for the great-circle distance ``d`` (km) to
    the request's point, with ``R`` the request's ``max_distance_km`` or
    ``PROXIMITY_REFERENCE_KM``; 0 without coordinates;
  - ``capacity``: ``min(1, capacity / desired)`` for the desired monthly capacity
    (the desired one, else the minimum asked for), in the request's unit; 0 when
    unknown or in another unit;
  - ``performance``: the mean of the supplier's quality score and on-time delivery
    rate that are known; ``PERFORMANCE_PRIOR`` when neither is;
  - ``inclusion``: 1 when the supplier is attested women-owned, women-led or
    youth-led, 0 otherwise (not recorded included). Its default weight is 0.
* A criterion is active when the request gives what it needs (a description,
  preferred schemes, a point, a capacity) and its weight is above zero;
  ``performance`` is always active, ``inclusion`` whenever its weight is above zero.
  Weights of the active criteria are normalised to sum to 1; the score is the sum of
  ``weight x value``, and it and every contribution are rounded to ``SCORE_DECIMALS``
  places, ties broken by supplier id.
* Coordinates are stored as float32 (about a metre), quality and on-time shares to
  four decimal places, capacities as float64; all arithmetic is float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

# The distance of the proximity criterion: ``haversine_km`` with this radius.
from services.common.geo import EARTH_RADIUS_KM as EARTH_RADIUS_KM

# What the ``inclusion`` criterion and the ``require_*`` constraints read (docs/api.md).
INCLUSION_CLASSES = ("women_owned", "women_led", "youth_led")
CRITERIA = ("text", "certifications", "proximity", "capacity", "performance", "inclusion")
DEFAULT_WEIGHTS: dict[str, float] = {
    "text": 0.40,
    "certifications": 0.15,
    "proximity": 0.15,
    "capacity": 0.10,
    "performance": 0.20,
    "inclusion": 0.0,  # off unless asked for: shortlists stay as they were without it
}
PROXIMITY_REFERENCE_KM = 500.0
PERFORMANCE_PRIOR = 0.5
SCORE_DECIMALS = 9
# Development candidates may fall short of the minimum capacity by at most this share.
DEVELOPMENT_CAPACITY_MARGIN = 0.25


@dataclass(frozen=True)
class Query:
    """Validated hard constraints and soft criteria (see ``schemas.ShortlistRequest``)."""

    on_date: date
    isic_codes: tuple[str, ...] = ()
    hs_codes: tuple[str, ...] = ()
    required_certifications: tuple[str, ...] = ()
    min_monthly_capacity: float | None = None
    capacity_unit: str | None = None
    countries: tuple[str, ...] = ()
    subdivisions: tuple[str, ...] = ()
    cluster_ids: tuple[str, ...] = ()
    size_classes: tuple[str, ...] = ()
    latitude: float | None = None
    longitude: float | None = None
    max_distance_km: float | None = None
    exclude_ids: tuple[str, ...] = ()
    # Suppliers must be attested so (all those set): docs/api.md, "Inclusion".
    require_women_owned: bool = False
    require_women_led: bool = False
    require_youth_led: bool = False
    description: str | None = None
    preferred_certifications: tuple[str, ...] = ()
    desired_monthly_capacity: float | None = None
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    limit: int = 20
    include_development: bool = False
    development_limit: int = 20
    include_consortia: bool = False
    consortium_limit: int = 10

    @property
    def has_point(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    @property
    def required_inclusion(self) -> tuple[str, ...]:
        """The inclusion classes a supplier must be attested in."""
        asked = (self.require_women_owned, self.require_women_led, self.require_youth_led)
        return tuple(c for c, required in zip(INCLUSION_CLASSES, asked, strict=True) if required)

    @property
    def capacity_target(self) -> float | None:
        """The capacity that fits fully: the desired one, else the minimum (a minimum of 0 sets no target)."""
        return self.desired_monthly_capacity or self.min_monthly_capacity or None

    def active_weights(self, text_active: bool) -> dict[str, float]:
        """The normalised weights of the criteria that apply to this query."""
        applies = {
            "text": text_active,
            "certifications": bool(self.preferred_certifications),
            "proximity": self.has_point,
            "capacity": self.capacity_target is not None and self.capacity_unit is not None,
            "performance": True,
            "inclusion": True,
        }
        raw = {c: self.weights.get(c, 0.0) for c in CRITERIA if applies[c] and self.weights.get(c, 0.0) > 0}
        if not raw:  # e.g. only a text weight but no text: rank by performance
            raw = {"performance": 1.0}
        total = sum(raw.values())
        return {c: w / total for c, w in raw.items()}
