from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from services.common.bounds import Amount, Count, RecordId, rule_broken
from services.common.codes import CurrencyCode
from services.registry.schemas import CreateBase, RecordPublic, RecordQuery, partial

# A calendar year, or a quarter of one.
PERIOD_PATTERN = r"^[12][0-9]{3}(-Q[1-4])?$"
Period = Annotated[str, StringConstraints(pattern=PERIOD_PATTERN)]
MONEY_FIELDS = ("sales", "exports", "investments")
FIGURE_FIELDS = (*MONEY_FIELDS, "employees", "women_employees", "new_products")


class FirmResultFields(CreateBase):
    firm_id: RecordId = Field(description="The firm the figures are of (one of the agency's firms)")
    period: Period = Field(description="A year (`2025`) or a quarter (`2025-Q2`); one record per firm and period")
    currency: CurrencyCode | None = Field(
        default=None, description="ISO 4217 code of sales, exports and investments (required with any of them)"
    )
    sales: Amount | None = Field(default=None, description="Sales (turnover) in the period, in currency")
    exports: Amount | None = Field(default=None, description="Sales abroad in the period, in currency")
    investments: Amount | None = Field(default=None, description="Investment made in the period, in currency")
    employees: Count | None = Field(default=None, description="Headcount at the end of the period")
    women_employees: Count | None = Field(default=None, description="Women among employees")
    new_products: Count | None = Field(default=None, description="Products or services launched in the period")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        name = type(self).__name__
        if all(getattr(self, f) is None for f in FIGURE_FIELDS):
            raise rule_broken(name, [(("sales",), "give at least one figure: " + ", ".join(FIGURE_FIELDS))])
        money = [f for f in MONEY_FIELDS if getattr(self, f) is not None]
        if money and self.currency is None:
            raise rule_broken(name, [(("currency",), f"state the currency of {', '.join(money)}")])
        if self.women_employees is not None:
            if self.employees is None:
                raise rule_broken(name, [(("employees",), "women_employees needs employees")])
            if self.women_employees > self.employees:
                raise rule_broken(name, [(("women_employees",), f"is more than the {self.employees} employees")])
        return self


class FirmResultCreate(FirmResultFields):
    """A firm's figures for one period."""


FirmResultUpdate = partial(FirmResultCreate, "FirmResultUpdate")


class FirmResultPublic(RecordPublic, FirmResultFields):
    agency_id: str
    entered_by: str = Field(default="", description="The API key that last wrote the record")


class FirmResultQuery(RecordQuery):
    firm_id: RecordId | None = None
    period: Period | None = None
    agency_id: RecordId | None = None
