"""The owners a new key names (its agency, its firm) must exist in the registry.

The gateway keeps no copy of the registry's records, so it asks the registry, as
the admin creating the key, the way the gateway forwards requests (signing,
deadline, retries, circuit breaker): a 404 is the admin's mistake (422 naming the
field), a registry that cannot answer is 503, and a key is never issued for an
owner nobody could check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from gateway.keys.schemas import ApiKeyCreate
from gateway.proxy import Forwarder
from services.common.errors import BadGateway, GatewayTimeout, ServiceUnavailable, invalid_field
from services.common.principal import Principal, Role

LEAD_FIRM_ROLE = "lead_firm"  # the registry's FirmRole for buyers


async def check_owners(forwarder: Forwarder, data: ApiKeyCreate, *, admin: Principal, request_id: str) -> None:
    """422 unless every owner ``data`` names exists, and a lead firm key's firm is a lead firm."""
    if data.agency_id is not None:
        await _registry_record(forwarder, "agencies", "agency", data.agency_id, "agency_id", admin, request_id)
    if data.firm_id is not None:
        firm = await _registry_record(forwarder, "firms", "firm", data.firm_id, "firm_id", admin, request_id)
        if data.role is Role.lead_firm and LEAD_FIRM_ROLE not in (firm.get("roles") or []):
            raise invalid_field(
                "firm_id", f"firm {data.firm_id} does not have the {LEAD_FIRM_ROLE} role", "not_lead_firm"
            )


async def _registry_record(
    forwarder: Forwarder, collection: str, noun: str, record_id: str, field: str, admin: Principal, request_id: str
) -> dict[str, Any]:
    """The registry's record ``/v1/{collection}/{record_id}``; 422 on ``field`` when there is none."""
    try:
        response = await forwarder.read("registry", f"/v1/{collection}/{quote(record_id, safe='')}", admin, request_id)
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
