from __future__ import annotations

from sqlmodel import Field

from services.registry.tables import RecordColumns


class Agency(RecordColumns, table=True):
    """An implementing agency: the tenant that owns programme records."""

    __tablename__ = "agencies"

    name: str = Field(max_length=200)
    country: str = Field(max_length=2, index=True)
    kind: str = Field(max_length=40)
    website: str | None = Field(default=None, max_length=300)
    contact_email: str | None = Field(default=None, max_length=200)
