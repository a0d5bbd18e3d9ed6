from __future__ import annotations

from services.registry.clusters.models import Cluster
from services.registry.clusters.schemas import ClusterCreate, ClusterPublic, ClusterQuery, ClusterUpdate
from services.registry.programmes.models import Programme
from services.registry.records import ColumnFilter, FacetFilter, Reference, ResourceSpec, Tag, TextFilter


def _references(data: ClusterCreate) -> list[Reference]:
    if data.programme_id is None:
        return []
    return [Reference("programme_id", Programme, data.programme_id, "programme")]


CLUSTERS = ResourceSpec(
    entity="cluster",
    path="/v1/clusters",
    id_prefix="clu",
    table=Cluster,
    create=ClusterCreate,
    update=ClusterUpdate,
    public=ClusterPublic,
    query=ClusterQuery,
    filters={
        "country": ColumnFilter("country"),
        "subdivision": ColumnFilter("subdivision"),
        "isic": FacetFilter("isic", prefix=True),
        "programme_id": ColumnFilter("programme_id"),
        "agency_id": ColumnFilter("agency_id"),
        "q": TextFilter(("name", "description")),
    },
    tags=lambda data: [Tag("isic", data.sector_isic)],
    references=_references,
)
