from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import ValidationFailed, field_error
from services.registry.certifications.router import unknown_schemes
from services.registry.clusters.models import Cluster
from services.registry.firms.hooks import firms_written
from services.registry.firms.models import Firm
from services.registry.firms.schemas import FirmCreate, FirmPublic, FirmQuery, FirmUpdate
from services.registry.firms.search import search_columns, search_firms
from services.registry.records import ColumnFilter, FacetFilter, Reference, ResourceSpec, Tag


def _tags(data: FirmCreate) -> list[Tag]:
    return (
        [Tag("role", role) for role in data.roles]
        + [Tag("isic", code) for code in data.isic_codes]
        + [Tag("hs", code) for code in data.hs_codes]
        + [Tag("cert", c.scheme, c.valid_from, c.valid_until) for c in data.certifications]
        + [Tag("inclusion", kind.value) for kind in data.inclusion()]
    )


def _references(data: FirmCreate) -> list[Reference]:
    return [Reference(f"cluster_ids.{i}", Cluster, cid, "cluster") for i, cid in enumerate(data.cluster_ids)]


async def _check(session: AsyncSession, documents: Sequence[dict[str, Any]]) -> list[ValidationFailed | None]:
    """Certification schemes must be in the vocabulary: one query for a whole batch."""
    unknown = await unknown_schemes(session, {c["scheme"] for d in documents for c in d["certifications"]})
    problems: list[ValidationFailed | None] = []
    for document in documents:
        errors = [
            field_error(
                f"certifications.{i}.scheme",
                f"'{c['scheme']}' is not in the certification vocabulary",
                "unknown_scheme",
            )
            for i, c in enumerate(document["certifications"])
            if c["scheme"] in unknown
        ]
        schemes = sorted({c["scheme"] for c in document["certifications"]} & unknown)
        problems.append(
            ValidationFailed("Unknown certification schemes: " + ", ".join(schemes), errors=errors) if errors else None
        )
    return problems


FIRMS = ResourceSpec(
    entity="firm",
    path="/v1/firms",
    id_prefix="frm",
    table=Firm,
    create=FirmCreate,
    update=FirmUpdate,
    public=FirmPublic,
    query=FirmQuery,
    filters={
        "country": ColumnFilter("country"),
        "subdivision": ColumnFilter("subdivision"),
        "size_class": ColumnFilter("size_class"),
        "role": FacetFilter("role"),
        "isic": FacetFilter("isic", prefix=True),
        "hs": FacetFilter("hs", prefix=True),
        "certification": FacetFilter("cert", valid_on_today=True),
        "inclusion": FacetFilter("inclusion"),
        "cluster_id": FacetFilter("cluster"),
        "agency_id": ColumnFilter("agency_id"),
    },
    tags=_tags,
    references=_references,
    check=_check,
    check_reads=("certifications",),
    sort_fields=("country", "size_class"),
    search=search_firms,  # q: services/registry/firms/search.py
    derived=search_columns,
    after_write=firms_written.call,  # other domains listen: connect_hooks() in services/registry/app.py
)
