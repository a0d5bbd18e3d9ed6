from __future__ import annotations

from datetime import UTC, datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.keys.scopes import ROLE_SCOPES
from services.common.bounds import Code, Name, RecordId
from services.common.principal import Role


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="What the key is for, e.g. 'Tiruppur portal'")
    role: Role
    agency_id: RecordId | None = Field(
        default=None,
        description="Required for role agency; a firm's or broker's key takes its record's agency"
        " (the issuing agency's, for keys an agency issues)",
    )
    firm_id: RecordId | None = Field(default=None, description="Required for roles lead_firm and supplier")
    broker_id: RecordId | None = Field(default=None, description="Required for role broker: the registry broker")
    scopes: list[Code] | None = Field(
        default=None, max_length=50, description="A subset of the role's scopes; all of them if omitted"
    )
    expires_at: datetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.role is Role.service:
            raise ValueError("service principals are internal and have no API keys")
        if self.role is Role.agency and not self.agency_id:
            raise ValueError("an agency key needs agency_id")
        if self.role is Role.lead_firm and not self.firm_id:
            raise ValueError("a lead firm key needs firm_id")
        if self.role is Role.supplier and not self.firm_id:
            raise ValueError("a supplier key needs firm_id")
        if self.role is Role.broker and not self.broker_id:
            raise ValueError("a broker key needs broker_id")
        if self.role is not Role.broker and self.broker_id:
            raise ValueError("only a broker key names broker_id")
        if self.role is Role.broker and self.firm_id:
            raise ValueError("a broker key names broker_id, not firm_id")
        allowed = set(ROLE_SCOPES[self.role])
        if self.scopes is not None and not set(self.scopes) <= allowed:
            raise ValueError(f"scopes beyond role {self.role}: {sorted(set(self.scopes) - allowed)}")
        if self.expires_at is not None:
            if self.expires_at.tzinfo is None:
                raise ValueError("expires_at needs a time zone")
            if self.expires_at <= datetime.now(UTC):
                raise ValueError("expires_at is in the past")
        return self


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    role: Role
    agency_id: str | None
    firm_id: str | None
    broker_id: str | None
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    rotated_from: str | None


class ApiKeyIssued(ApiKeyPublic):
    key: str = Field(description="The API key. It is shown this once and cannot be recovered.")
