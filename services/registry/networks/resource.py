from __future__ import annotations

from services.registry.brokers.models import Broker
from services.registry.clusters.models import Cluster
from services.registry.firms.models import Firm
from services.registry.networks.models import Network
from services.registry.networks.schemas import NetworkCreate, NetworkPublic, NetworkQuery, NetworkUpdate
from services.registry.records import ColumnFilter, FacetFilter, Reference, ResourceSpec, Tag, TextFilter


def _tags(data: NetworkCreate) -> list[Tag]:
    return [Tag("action", action.kind.value) for action in data.joint_actions]


def _references(data: NetworkCreate) -> list[Reference]:
    references = [Reference(f"members.{i}.firm_id", Firm, m.firm_id, "member") for i, m in enumerate(data.members)]
    if data.cluster_id is not None:
        references.append(Reference("cluster_id", Cluster, data.cluster_id, "cluster"))
    if data.broker_id is not None:
        references.append(Reference("broker_id", Broker, data.broker_id, "broker"))
    return references


NETWORKS = ResourceSpec(
    entity="network",
    path="/v1/networks",
    id_prefix="net",
    table=Network,
    create=NetworkCreate,
    update=NetworkUpdate,
    public=NetworkPublic,
    query=NetworkQuery,
    filters={
        "kind": ColumnFilter("kind"),
        "status": ColumnFilter("status"),
        "cluster_id": ColumnFilter("cluster_id"),
        "broker_id": ColumnFilter("broker_id"),
        "firm_id": FacetFilter("member"),
        "action": FacetFilter("action"),
        "agency_id": ColumnFilter("agency_id"),
        "q": TextFilter(("name", "description")),
    },
    tags=_tags,
    references=_references,
)
