from __future__ import annotations

from datetime import datetime

from sqlmodel import Field

from services.common.db import UTCDateTime
from services.registry.tables import RegistryTable


class CertificationScheme(RegistryTable, table=True):
    """The vocabulary of certification schemes firms may hold and buyers may require."""

    __tablename__ = "certification_schemes"

    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    category: str = Field(max_length=40)
    issuer: str | None = Field(default=None, max_length=200)
    description: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime())
