"""Who may see and change matching records.

Standards, shortlists and linkages belong to the principal that created them: a
lead firm (``firm:<id>``), an agency (``agency:<id>``) or an integrator key
(``key:<id>``). Others get 404, so ids of another tenant's records reveal nothing.
Admins see and change everything; viewers (M&E) read everything.
"""

from __future__ import annotations

from typing import Protocol

from services.common.errors import Forbidden, NotFound
from services.common.principal import Principal, Role

WRITERS = (Role.admin, Role.agency, Role.lead_firm, Role.integrator)


class Owned(Protocol):
    id: str
    owner: str


def owner_key(principal: Principal) -> str:
    if principal.role is Role.lead_firm:
        return f"firm:{principal.firm_id}"
    if principal.role is Role.agency:
        return f"agency:{principal.agency_id}"
    if principal.role is Role.admin:
        return "admin"
    return f"key:{principal.subject}"


def require_writer(principal: Principal) -> None:
    if principal.role not in WRITERS:
        raise Forbidden(f"Role '{principal.role}' may not do this")


def readable(principal: Principal, row: Owned | None, kind: str, record_id: str) -> Owned:
    if row is None or not (principal.role in (Role.admin, Role.viewer) or row.owner == owner_key(principal)):
        raise NotFound(f"No {kind} with id '{record_id}'")
    return row


def writable(principal: Principal, row: Owned | None, kind: str, record_id: str) -> Owned:
    require_writer(principal)
    if row is None or not (principal.is_admin or row.owner == owner_key(principal)):
        raise NotFound(f"No {kind} with id '{record_id}'")
    return row
