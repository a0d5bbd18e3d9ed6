from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from services.common.bounds import FreeText, Name, line
from services.registry.schemas import Strict


class CertificationCategory(StrEnum):
    quality = "quality"
    environment = "environment"
    occupational_safety = "occupational_safety"
    social = "social"
    textile = "textile"
    food_safety = "food_safety"
    forestry = "forestry"
    energy = "energy"
    other = "other"


class CertificationSchemeCreate(Strict):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,38}$", description="Stable lower-case code, e.g. iso-9001")
    name: Name
    category: CertificationCategory
    issuer: line(200) | None = None  # type: ignore[valid-type]
    description: FreeText | None = None


class CertificationSchemePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    category: CertificationCategory
    issuer: str | None
    description: str | None
    created_at: datetime
