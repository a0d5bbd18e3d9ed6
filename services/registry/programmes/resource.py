from __future__ import annotations

from services.registry.programmes.models import Programme
from services.registry.programmes.schemas import ProgrammeCreate, ProgrammePublic, ProgrammeQuery, ProgrammeUpdate
from services.registry.records import ColumnFilter, ResourceSpec, TextFilter

PROGRAMMES = ResourceSpec(
    entity="programme",
    path="/v1/programmes",
    id_prefix="prg",
    table=Programme,
    create=ProgrammeCreate,
    update=ProgrammeUpdate,
    public=ProgrammePublic,
    query=ProgrammeQuery,
    filters={
        "country": ColumnFilter("country"),
        "phase": ColumnFilter("phase"),
        "agency_id": ColumnFilter("agency_id"),
        "q": TextFilter(("name", "description")),
    },
)
