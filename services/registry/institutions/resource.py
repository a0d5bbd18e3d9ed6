from __future__ import annotations

from services.registry.clusters.models import Cluster
from services.registry.institutions.models import Institution
from services.registry.institutions.schemas import (
    InstitutionCreate,
    InstitutionPublic,
    InstitutionQuery,
    InstitutionUpdate,
)
from services.registry.records import ColumnFilter, FacetFilter, Reference, ResourceSpec, TextFilter


def _references(data: InstitutionCreate) -> list[Reference]:
    return [Reference(f"cluster_ids.{i}", Cluster, cid, "cluster") for i, cid in enumerate(data.cluster_ids)]


INSTITUTIONS = ResourceSpec(
    entity="institution",
    path="/v1/institutions",
    id_prefix="ins",
    table=Institution,
    create=InstitutionCreate,
    update=InstitutionUpdate,
    public=InstitutionPublic,
    query=InstitutionQuery,
    filters={
        "kind": ColumnFilter("kind"),
        "country": ColumnFilter("country"),
        "subdivision": ColumnFilter("subdivision"),
        "cluster_id": FacetFilter("cluster"),
        "agency_id": ColumnFilter("agency_id"),
        "q": TextFilter(("name", "description")),
    },
    references=_references,
)
