from __future__ import annotations

from services.registry.activities.models import Activity
from services.registry.activities.schemas import ActivityCreate, ActivityPublic, ActivityQuery, ActivityUpdate
from services.registry.clusters.models import Cluster
from services.registry.programmes.models import Programme
from services.registry.records import ColumnFilter, Reference, ResourceSpec, TextFilter


def _references(data: ActivityCreate) -> list[Reference]:
    references = []
    if data.programme_id is not None:
        references.append(Reference("programme_id", Programme, data.programme_id, "programme"))
    if data.cluster_id is not None:
        references.append(Reference("cluster_id", Cluster, data.cluster_id, "cluster"))
    return references


ACTIVITIES = ResourceSpec(
    entity="activity",
    path="/v1/activities",
    id_prefix="act",
    table=Activity,
    create=ActivityCreate,
    update=ActivityUpdate,
    public=ActivityPublic,
    query=ActivityQuery,
    filters={
        "kind": ColumnFilter("kind"),
        "programme_id": ColumnFilter("programme_id"),
        "cluster_id": ColumnFilter("cluster_id"),
        "country": ColumnFilter("country"),
        "agency_id": ColumnFilter("agency_id"),
        "q": TextFilter(("title", "description")),
    },
    references=_references,
)
