from __future__ import annotations

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from services.registry.tables import RecordColumns


class FirmResult(RecordColumns, table=True):
    """What a firm achieved in one period (a year or a quarter): the figures a programme's
    firm outcomes are computed from (services/reporting, docs/reporting.md)."""

    __tablename__ = "firm_results"
    __table_args__ = (UniqueConstraint("firm_id", "period", name="uq_firm_results_firm_id_period"),)

    firm_id: str = Field(max_length=40, index=True)
    period: str = Field(max_length=7, index=True)  # 2025 or 2025-Q2
    currency: str | None = Field(default=None, max_length=3)
    sales: float | None = None
    exports: float | None = None
    investments: float | None = None
    employees: int | None = None
    women_employees: int | None = None
    new_products: int | None = None
    entered_by: str = Field(max_length=100)  # the API key (or service) that last wrote it
