"""Who sees what of a request: the buyer side and the supplier side.

The buyer side is the principal that owns the request (as for shortlists), plus
admins and viewers, who read everything. The supplier side is whoever may act for
an invited supplier: the supplier's own key, its agency, or a broker of that agency
working in one of the supplier's clusters. For an invited network (a consortium) the
agency and cluster are the network's, as the registry records them at invitation, and
the own key of any member firm the shortlist counted also acts for it. The supplier side sees a request only
once it is open, and only its own invitations: never another supplier's identity,
answer or thread. Anyone else gets 404, so ids reveal nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlmodel import col

from services.common.errors import NotFound, ServiceUnavailable
from services.common.principal import Principal, Role
from services.matching.ownership import can_read, owner_key
from services.matching.tables import BuyerRequest, Invitation, InvitationCluster, InvitationMember


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
            as_member = select(col(InvitationMember.invitation_id)).where(col(InvitationMember.firm_id) == self.firm_id)
            return or_(col(Invitation.supplier_id) == self.firm_id, col(Invitation.id).in_(as_member))
        by_agency = col(Invitation.supplier_agency_id) == self.agency_id
        if self.clusters is None:
            return by_agency
        in_clusters = select(col(InvitationCluster.invitation_id)).where(
            col(InvitationCluster.cluster_id).in_(sorted(self.clusters))
        )
        return and_(by_agency, col(Invitation.id).in_(in_clusters))

    def on_behalf(self, supplier_id: str) -> bool:
        """Whether an answer for ``supplier_id`` is given for it by a broker, agency or admin
        (a member firm answering for its network acts as part of it, not on its behalf)."""
        return self.firm_id is None

    def member_of(self, invitation: Invitation) -> str | None:
        """The member firm answering for an invited network with its own key; None otherwise."""
        if invitation.supplier_kind == "network" and self.firm_id is not None:
            return self.firm_id
        return None


class BrokerDirectory:
    """The clusters a broker works in, read from the registry each time a broker acts
    (brokers change clusters; a cached answer would let one act where it no longer works);
    and a network's agency and cluster, read when it is invited."""

    def __init__(self, client: httpx.AsyncClient, registry_url: str, headers: Callable[[], dict[str, str]]) -> None:
        self.client = client
        self.registry_url = registry_url.rstrip("/")
        self.headers = headers

    async def _read(self, kind: str, record_id: str, what: str) -> dict[str, Any] | None:
        """The registry's record ``/v1/{kind}/{record_id}``; None when it has none; 503 when it cannot say."""
        try:
            response = await self.client.get(
                f"{self.registry_url}/v1/{kind}/{quote(record_id, safe='')}", headers=self.headers()
            )
        except httpx.HTTPError:
            raise ServiceUnavailable(f"The registry cannot say {what}", headers={"Retry-After": "5"}) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ServiceUnavailable(
                f"The registry answered {response.status_code} when asked for {record_id}",
                headers={"Retry-After": "5"},
            )
        record: dict[str, Any] = response.json()
        return record

    async def network(self, network_id: str) -> dict[str, Any] | None:
        """The registry's network (its ``agency_id`` and ``cluster_id``); None when it has none."""
        return await self._read("networks", network_id, "which agency and cluster the network belongs to")

    async def clusters(self, broker_id: str, agency_id: str | None) -> frozenset[str]:
        """The broker's clusters; none when the registry has no such broker of ``agency_id``."""
        broker = await self._read("brokers", broker_id, "which clusters the broker works in")
        if broker is None:
            return frozenset()
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
