"""The owners a new key names (its agency, firm or broker) must exist in the registry.

The gateway keeps no copy of the registry's records, so it asks the registry, as
the caller creating the key, the way the gateway forwards requests (signing,
deadline, retries, circuit breaker): a 404 is the caller's mistake (422 naming the
field), a registry that cannot answer is 503, and a key is never issued for an
owner nobody could check.

A key that names a firm or a broker belongs to that record's agency: its
``agency_id`` is the record's, so the agency sees, rotates and revokes it. An
agency issues keys for its own firms and brokers only; naming another agency's is
a 422 that says so (the registry is the shared catalogue: any key reads any
agency's firms and brokers, so saying whose a record is reveals nothing).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from gateway.keys.access import is_key_admin
from gateway.keys.schemas import ApiKeyCreate
from gateway.proxy import Forwarder
from services.common.errors import BadGateway, GatewayTimeout, ServiceUnavailable, invalid_field
from services.common.principal import Principal, Role

# Key roles that act for a firm, and the registry FirmRole the firm must have.
FIRM_ROLES = {Role.lead_firm: "lead_firm", Role.supplier: "supplier"}


async def key_agency(forwarder: Forwarder, data: ApiKeyCreate, *, issuer: Principal, request_id: str) -> str | None:
    """The agency of the key ``issuer`` asks for with ``data``; 422 unless every owner it
    names exists (and, for an agency's key, is the agency's own), a firm key's firm has
    the role's firm role, and a named ``agency_id`` is the firm's or broker's."""
    agency_id = data.agency_id if is_key_admin(issuer) else issuer.agency_id
    owner: dict[str, Any] | None = None
    if data.firm_id is not None:
        owner = await _owner(forwarder, "firms", "firm", data.firm_id, "firm_id", issuer, request_id)
        firm_role = FIRM_ROLES.get(data.role)
        if firm_role is not None and firm_role not in (owner.get("roles") or []):
            raise invalid_field(
                "firm_id", f"firm {data.firm_id} does not have the {firm_role} role", f"not_{firm_role}"
            )
    elif data.broker_id is not None:
        owner = await _owner(forwarder, "brokers", "broker", data.broker_id, "broker_id", issuer, request_id)
    elif data.agency_id is not None and is_key_admin(issuer):
        await _registry_record(forwarder, "agencies", "agency", data.agency_id, "agency_id", issuer, request_id)
    if owner is None:
        return agency_id
    if agency_id is not None and owner["agency_id"] != agency_id:
        raise invalid_field(
            "agency_id", f"the key's owner belongs to agency {owner['agency_id']}, not {agency_id}", "other_agency"
        )
    return str(owner["agency_id"])


async def _owner(
    forwarder: Forwarder, collection: str, noun: str, record_id: str, field: str, issuer: Principal, request_id: str
) -> dict[str, Any]:
    """The firm or broker a key names; 422 on ``field`` when an agency names another agency's."""
    record = await _registry_record(forwarder, collection, noun, record_id, field, issuer, request_id)
    if not is_key_admin(issuer) and record.get("agency_id") != issuer.agency_id:
        raise invalid_field(field, f"{noun} {record_id} is not a {noun} of your agency", "other_agency")
    return record


async def _registry_record(
    forwarder: Forwarder, collection: str, noun: str, record_id: str, field: str, issuer: Principal, request_id: str
) -> dict[str, Any]:
    """The registry's record ``/v1/{collection}/{record_id}``; 422 on ``field`` when there is none."""
    try:
        response = await forwarder.read("registry", f"/v1/{collection}/{quote(record_id, safe='')}", issuer, request_id)
    except (ServiceUnavailable, GatewayTimeout, BadGateway) as exc:
        raise ServiceUnavailable(f"The key's owner cannot be checked: {exc.detail}", headers=exc.headers) from None
    if response.status_code in (404, 422):  # 422: not even the shape of an id
        raise invalid_field(field, f"no {noun} with id {record_id!r}", "not_found")
    if response.status_code in (502, 503, 504):
        raise ServiceUnavailable("The registry is unavailable, so the key's owner cannot be checked")
    if response.status_code != 200:
        raise BadGateway(f"The registry answered {response.status_code} when asked for {field} {record_id!r}")
    body: dict[str, Any] = response.json()
    return body
