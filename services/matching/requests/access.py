"""Who sees what of a request: the buyer side and the supplier side.

The buyer side is the principal that owns the request (as for shortlists), plus
admins and viewers, who read everything. The supplier side is whoever may act for
an invited supplier: the supplier's own key, its agency, or a broker of that agency
working in one of the supplier's clusters. The supplier side sees a request only
once it is open, and only its own invitations: never another supplier's identity,
answer or thread. Anyone else gets 404, so ids reveal nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import ColumnElement, and_, select, true
from sqlmodel import col

from services.common.errors import NotFound, ServiceUnavailable
from services.common.principal import Principal, Role
from services.matching.ownership import can_read, owner_key
from services.matching.tables import BuyerRequest, Invitation, InvitationCluster


@dataclass(frozen=True)
class SupplierSide:
    """The suppliers a principal may act for on requests (see the module docstring)."""

    principal: Principal
    firm_id: str | None = None  # a supplier key: this firm only
    agency_id: str | None = None  # an agency or broker: suppliers of this agency
    clusters: frozenset[str] | None = None  # a broker: ... in these clusters
    anyone: bool = False  # an admin

    def invitations(self) -> ColumnElement[bool]:
        """A filter of the invitations this side may see and answer."""
        if self.anyone:
            return true()
        if self.firm_id is not None:
            return col(Invitation.supplier_id) == self.firm_id
        by_agency = col(Invitation.supplier_agency_id) == self.agency_id
        if self.clusters is None:
            return by_agency
        in_clusters = select(col(InvitationCluster.invitation_id)).where(
            col(InvitationCluster.cluster_id).in_(sorted(self.clusters))
        )
        return and_(by_agency, col(Invitation.id).in_(in_clusters))

    def on_behalf(self, supplier_id: str) -> bool:
        return self.firm_id != supplier_id


class BrokerDirectory:
    """The clusters a broker works in, read from the registry each time a broker acts
    (brokers change clusters; a cached answer would let one act where it no longer works)."""

    def __init__(self, client: httpx.AsyncClient, registry_url: str, headers: Callable[[], dict[str, str]]) -> None:
        self.client = client
        self.registry_url = registry_url.rstrip("/")
        self.headers = headers

    async def clusters(self, broker_id: str, agency_id: str | None) -> frozenset[str]:
        """The broker's clusters; none when the registry has no such broker of ``agency_id``."""
        try:
            response = await self.client.get(
                f"{self.registry_url}/v1/brokers/{quote(broker_id, safe='')}", headers=self.headers()
            )
        except httpx.HTTPError:
            raise ServiceUnavailable(
                "The registry cannot say which clusters the broker works in", headers={"Retry-After": "5"}
            ) from None
        if response.status_code == 404:
            return frozenset()
        if response.status_code != 200:
            raise ServiceUnavailable(
                f"The registry answered {response.status_code} when asked for broker {broker_id}",
                headers={"Retry-After": "5"},
            )
        broker: dict[str, Any] = response.json()
        if broker.get("agency_id") != agency_id:
            return frozenset()
        return frozenset(broker.get("cluster_ids") or ())


async def supplier_side(principal: Principal, brokers: BrokerDirectory) -> SupplierSide | None:
    """Whom ``principal`` may act for as a supplier; None for roles that never do."""
    if principal.is_admin:
        return SupplierSide(principal, anyone=True)
    if principal.role is Role.supplier and principal.firm_id:
        return SupplierSide(principal, firm_id=principal.firm_id)
    if principal.role is Role.agency and principal.agency_id:
        return SupplierSide(principal, agency_id=principal.agency_id)
    if principal.role is Role.broker and principal.broker_id and principal.agency_id:
        clusters = await brokers.clusters(principal.broker_id, principal.agency_id)
        return SupplierSide(principal, agency_id=principal.agency_id, clusters=clusters)
    return None


def reads_as_buyer(principal: Principal, row: BuyerRequest) -> bool:
    return can_read(principal, row)


def writes_as_buyer(principal: Principal, row: BuyerRequest) -> bool:
    if principal.is_admin:
        return True
    return principal.role in (Role.agency, Role.lead_firm, Role.integrator) and row.owner == owner_key(principal)


def not_found(request_id: str) -> NotFound:
    return NotFound(f"No request with id '{request_id}'")
