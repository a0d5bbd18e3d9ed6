"""Who may create, see and change webhook endpoints, and as whom an endpoint reads events.

An endpoint belongs to the principal that created it (a lead firm, an agency, an
integrator key or an admin), keyed like matching's records: ``firm:<id>``,
``agency:<id>``, ``key:<subject>``, ``admin``. Anyone else gets 404 for its id, so
ids of another tenant's endpoints reveal nothing; admins see every endpoint.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import Forbidden, NotFound
from services.common.principal import Principal, Role, owner_key
from services.events.webhooks.tables import WebhookEndpoint

CREATORS = (Role.admin, Role.agency, Role.lead_firm, Role.integrator)


def require_creator(principal: Principal) -> None:
    if principal.role not in CREATORS:
        raise Forbidden(f"Role '{principal.role}' may not manage webhook endpoints")


def owner_columns(principal: Principal) -> dict[str, Any]:
    """The owner fields of an endpoint ``principal`` creates."""
    return {
        "owner": owner_key(principal),
        "owner_subject": principal.subject,
        "owner_role": str(principal.role),
        "agency_id": principal.agency_id,
        "firm_id": principal.firm_id,
        "broker_id": principal.broker_id,
    }


def owner_principal(endpoint: WebhookEndpoint) -> Principal:
    """The principal an endpoint reads events as: its creator's role and tenancy."""
    return Principal(
        subject=endpoint.owner_subject,
        role=Role(endpoint.owner_role),
        agency_id=endpoint.agency_id,
        firm_id=endpoint.firm_id,
        broker_id=endpoint.broker_id,
    )


def owned(principal: Principal, endpoint: WebhookEndpoint | None, endpoint_id: str) -> WebhookEndpoint:
    """``endpoint`` if ``principal`` owns it (or is an admin); 404 otherwise."""
    require_creator(principal)
    if endpoint is None or not (principal.is_admin or endpoint.owner == owner_key(principal)):
        raise NotFound(f"No webhook endpoint with id '{endpoint_id}'")
    return endpoint


async def owned_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint:
    """The endpoint ``endpoint_id`` if ``principal`` owns it (``lock``: for update); 404 otherwise."""
    return owned(principal, await session.get(WebhookEndpoint, endpoint_id, with_for_update=lock), endpoint_id)
