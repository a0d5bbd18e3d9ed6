from __future__ import annotations

from services.registry.brokers.models import Broker
from services.registry.brokers.schemas import BrokerCreate, BrokerPublic, BrokerQuery, BrokerStatus, BrokerUpdate
from services.registry.clusters.models import Cluster
from services.registry.records import ColumnFilter, FacetFilter, Reference, ResourceSpec, Tag, TextFilter


def _tags(data: BrokerCreate) -> list[Tag]:
    # Cumulative: certification requires training, so a certified broker is also a trained one.
    done = [(BrokerStatus.trained, data.trained_on), (BrokerStatus.certified, data.certified_on)]
    return [Tag("status", status.value) for status, on in done if on is not None]


def _references(data: BrokerCreate) -> list[Reference]:
    return [Reference(f"cluster_ids.{i}", Cluster, cid, "cluster") for i, cid in enumerate(data.cluster_ids)]


BROKERS = ResourceSpec(
    entity="broker",
    path="/v1/brokers",
    id_prefix="brk",
    table=Broker,
    create=BrokerCreate,
    update=BrokerUpdate,
    public=BrokerPublic,
    query=BrokerQuery,
    filters={
        "country": ColumnFilter("country"),
        "cluster_id": FacetFilter("cluster"),
        "status": FacetFilter("status"),
        "agency_id": ColumnFilter("agency_id"),
        "q": TextFilter(("name", "organisation")),
    },
    tags=_tags,
    references=_references,
)
