"""Who may see and change matching records.

Standards, shortlists and linkages belong to the principal that created them: a
lead firm (``firm:<id>``), an agency (``agency:<id>``) or an integrator key
(``key:<id>``). Others get 404, so ids of another tenant's records reveal nothing.
Admins see and change everything. Viewers (M&E) read everything, except a viewer
key an agency issued (it names the agency): that one reads its agency's records only.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import ColumnElement
from sqlmodel import col

from services.common.errors import Forbidden, NotFound
from services.common.ownership import owned_rows, reads_owned
from services.common.principal import Principal, Role
from services.common.principal import owner_key as owner_key  # its home is common; matching imports it from here

WRITERS = (Role.admin, Role.agency, Role.lead_firm, Role.integrator)


class Owned(Protocol):
    id: str
    owner: str
    agency_id: str | None


def require_writer(principal: Principal) -> None:
    if principal.role not in WRITERS:
        raise Forbidden(f"Role '{principal.role}' may not do this")


def can_read(principal: Principal, row: Owned) -> bool:
    return reads_owned(principal, row.owner, row.agency_id)


def readable_rows(principal: Principal, table: Any) -> ColumnElement[bool] | None:
    """The filter of the rows of ``table`` (an owned table) ``principal`` reads; None: all."""
    return owned_rows(principal, col(table.owner), col(table.agency_id))


def readable(principal: Principal, row: Owned | None, kind: str, record_id: str) -> Owned:
    if row is None or not can_read(principal, row):
        raise NotFound(f"No {kind} with id '{record_id}'")
    return row


def writable(principal: Principal, row: Owned | None, kind: str, record_id: str) -> Owned:
    require_writer(principal)
    if row is None or not (principal.is_admin or row.owner == owner_key(principal)):
        raise NotFound(f"No {kind} with id '{record_id}'")
    return row
