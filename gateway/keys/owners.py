"""The owners a new key names (its agency, its firm) must exist in the registry.

The gateway keeps no copy of the registry's records, so it asks the registry, as
the admin creating the key, through the registry upstream's pooled client: a 404
is the admin's mistake (422 naming the field), an unreachable registry is 503,
and a key is never issued for an owner nobody could check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from gateway.keys.schemas import ApiKeyCreate
from gateway.proxy import Forwarder
from services.common.errors import BadGateway, ServiceUnavailable, invalid_field
from services.common.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal

LOOKUP_TIMEOUT_SECONDS = 5.0
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
    upstream = forwarder.upstreams["registry"]
    if not upstream.breaker.allow():
        raise ServiceUnavailable(
            "The registry is unavailable, so the key's owner cannot be checked; retry later",
            headers={"Retry-After": str(max(1, round(upstream.breaker.retry_after())))},
        )
    url = f"{upstream.base_url.rstrip('/')}/v1/{collection}/{quote(record_id, safe='')}"
    headers = {
        PRINCIPAL_HEADER: sign_principal(
            admin, forwarder.principal_secret, ttl_seconds=forwarder.principal_ttl_seconds
        ),
        "x-request-id": request_id,
    }
    try:
        response = await upstream.client.get(url, headers=headers, timeout=LOOKUP_TIMEOUT_SECONDS)
    except httpx.TransportError:
        raise ServiceUnavailable("The registry cannot be reached, so the key's owner cannot be checked") from None
    if response.status_code in (404, 422):  # 422: not even the shape of an id
        raise invalid_field(field, f"no {noun} with id {record_id!r}", "not_found")
    if response.status_code in (502, 503, 504):
        raise ServiceUnavailable("The registry is unavailable, so the key's owner cannot be checked")
    if response.status_code != 200:
        raise BadGateway(f"The registry answered {response.status_code} when asked for {field} {record_id!r}")
    body: dict[str, Any] = response.json()
    return body
