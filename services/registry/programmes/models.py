from __future__ import annotations

from datetime import date

from sqlalchemy import Date
from sqlmodel import Field

from services.registry.tables import RecordColumns


class Programme(RecordColumns, table=True):
    """A cluster development programme run by an agency in one country."""

    __tablename__ = "programmes"

    name: str = Field(max_length=200)
    country: str = Field(max_length=2, index=True)
    phase: str = Field(max_length=20, index=True)
    budget_amount: float | None = None
    budget_currency: str | None = Field(default=None, max_length=3)
    start_date: date = Field(sa_type=Date)
    end_date: date | None = Field(default=None, sa_type=Date)
    description: str | None = None
