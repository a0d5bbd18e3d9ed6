"""Distances on the earth: the one radius and the one haversine every service uses."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

EARTH_RADIUS_KM = 6371.0088  # the mean radius (IUGG)


def haversine_km(
    lat: np.ndarray,
    lon: np.ndarray,
    lat0: float | np.ndarray,
    lon0: float | np.ndarray,
    dtype: type[np.floating[Any]] = np.float64,
) -> np.ndarray:
    """Great-circle distances from the point (``lat0``, ``lon0``), or from one point per
    row when they are arrays, computed in ``dtype``: float64 is what shortlists score;
    float32 is a rough one (matching's ``within_km``), much faster, as numpy vectorises
    float32 sines and not float64 ones (docs/matching.md). NaN where a coordinate is."""
    phi1: np.floating[Any] | np.ndarray
    lmb1: np.floating[Any] | np.ndarray
    cos_phi1: np.floating[Any] | np.ndarray
    if np.ndim(lat0) == 0:  # one point: its trigonometry once, in float64
        phi1, lmb1, cos_phi1 = origin(float(lat0), float(lon0), dtype)
    else:
        phi1 = np.radians(np.asarray(lat0, dtype=dtype))
        lmb1 = np.radians(np.asarray(lon0, dtype=dtype))
        cos_phi1 = np.cos(phi1)
    return haversine_from(lat, lon, phi1, lmb1, cos_phi1, dtype)


def origin(
    lat0: float, lon0: float, dtype: type[np.floating[Any]] = np.float64
) -> tuple[np.floating[Any], np.floating[Any], np.floating[Any]]:
    """The trigonometry of one point as ``haversine_km`` computes it: its latitude and
    longitude in radians and the cosine of its latitude."""
    return dtype(math.radians(lat0)), dtype(math.radians(lon0)), dtype(math.cos(math.radians(lat0)))


def haversine_from(
    lat: np.ndarray,
    lon: np.ndarray,
    phi1: np.floating[Any] | np.ndarray,
    lmb1: np.floating[Any] | np.ndarray,
    cos_phi1: np.floating[Any] | np.ndarray,
    dtype: type[np.floating[Any]] = np.float64,
) -> np.ndarray:
    """``haversine_km`` from points given by their ``origin`` (one, or one per row): reverse
    matching measures one supplier from many standards' points with the same operations,
    so its distances are bit for bit those of a shortlist."""
    phi2 = np.radians(np.asarray(lat, dtype=dtype))
    dphi = phi2 - phi1
    dlmb = np.radians(np.asarray(lon, dtype=dtype)) - lmb1
    a = np.sin(dphi / 2) ** 2 + cos_phi1 * np.cos(phi2) * np.sin(dlmb / 2) ** 2
    distance: np.ndarray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distance


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points (``haversine_km`` of one)."""
    return float(haversine_km(np.array([lat2]), np.array([lon2]), lat1, lon1)[0])
