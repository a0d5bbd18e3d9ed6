"""Principals: who a request acts for, signed by the gateway and verified by services.

The gateway authenticates an API key and forwards the principal in the
``X-Linkages-Principal`` header as ``v1.<payload>.<signature>``: a base64url JSON
payload with an expiry, and its HMAC-SHA256 under the deployment's shared
``PRINCIPAL_SECRET``. A service refuses a request whose header is missing, forged
or expired, so calling a service directly, around the gateway, gets nowhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, ValidationError

from services.common.errors import Forbidden, Unauthorized

PRINCIPAL_HEADER = "X-Linkages-Principal"
_VERSION = "v1"


class Role(StrEnum):
    admin = "admin"  # platform operators: everything
    agency = "agency"  # an implementing agency: writes its own records
    lead_firm = "lead_firm"  # a buyer: its own standards, shortlists, linkages
    integrator = "integrator"  # a national SME portal embedding matching
    viewer = "viewer"  # read-only access (e.g. M&E officers)
    supplier = "supplier"  # a supplier firm: its invitations, its answers, its scorecards
    broker = "broker"  # a cluster development agent: acts for the suppliers it supports
    service = "service"  # another platform service (change-feed followers)


class Principal(BaseModel):
    """The caller, as established by the gateway."""

    model_config = ConfigDict(frozen=True)

    subject: str  # the API key id or service name
    role: Role
    agency_id: str | None = None
    firm_id: str | None = None
    broker_id: str | None = None  # a broker key's registry record
    scopes: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    def can_write_for_agency(self, agency_id: str) -> bool:
        return self.is_admin or (self.role is Role.agency and self.agency_id == agency_id)


def owner_key(principal: Principal) -> str:
    """Whose records a principal's writes are: ``firm:<id>``, ``agency:<id>``, ``admin`` or ``key:<subject>``.

    Matching's records and webhook endpoints are owned this way; ids of another owner's
    records answer 404.
    """
    if principal.role is Role.lead_firm:
        return f"firm:{principal.firm_id}"
    if principal.role is Role.agency:
        return f"agency:{principal.agency_id}"
    if principal.role is Role.admin:
        return "admin"
    return f"key:{principal.subject}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{_VERSION}.{payload}".encode(), hashlib.sha256).digest())


def sign_principal(principal: Principal, secret: str, *, ttl_seconds: int = 60, now: float | None = None) -> str:
    """The header value that carries ``principal`` for ``ttl_seconds``."""
    issued = time.time() if now is None else now
    body = principal.model_dump(mode="json") | {"exp": int(issued + ttl_seconds)}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{_VERSION}.{payload}.{_signature(secret, payload)}"


def service_headers(service: str, secret: str) -> dict[str, str]:
    """The principal header of ``service`` calling another service (a feed follower, say)."""
    return {PRINCIPAL_HEADER: sign_principal(Principal(subject=service, role=Role.service), secret)}


def verify_principal(header: str, secret: str, *, max_age_seconds: int = 300, now: float | None = None) -> Principal:
    """The principal in a header value; Unauthorized if forged, malformed or expired."""
    current = time.time() if now is None else now
    try:
        version, payload, signature = header.split(".")
    except ValueError:
        raise Unauthorized("Malformed principal header") from None
    # Bytes, not str: compare_digest raises TypeError on non-ASCII str (a header may hold any latin-1).
    if version != _VERSION or not hmac.compare_digest(signature.encode(), _signature(secret, payload).encode()):
        raise Unauthorized("Invalid principal signature")
    try:
        body = json.loads(_unb64(payload))
        if not isinstance(body, dict):
            raise TypeError("the payload is not a JSON object")
        expires = int(body.pop("exp"))
        principal = Principal.model_validate(body)
    except (binascii.Error, ValueError, KeyError, TypeError, OverflowError, ValidationError):
        raise Unauthorized("Malformed principal header") from None
    if expires < current or expires > current + max_age_seconds:
        raise Unauthorized("Principal header expired")
    return principal


async def current_principal(request: Request) -> Principal:
    """Dependency: the verified principal of this request (401 without one)."""
    header = request.headers.get(PRINCIPAL_HEADER)
    if not header:
        raise Unauthorized("This service is reached through the gateway with an API key")
    settings = request.app.state.settings
    principal = verify_principal(
        header,
        settings.principal_secret.get_secret_value(),
        max_age_seconds=settings.principal_max_age_seconds,
    )
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role):  # type: ignore[no-untyped-def]
    """Dependency factory: 403 unless the principal has one of ``roles``."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"Role '{principal.role}' may not do this")
        return principal

    return check
