from __future__ import annotations

from services.common.principal import Role
from services.registry.agencies.models import Agency
from services.registry.agencies.schemas import AgencyCreate, AgencyPublic, AgencyQuery, AgencyUpdate
from services.registry.records import ColumnFilter, ResourceSpec, TextFilter

AGENCIES = ResourceSpec(
    entity="agency",
    path="/v1/agencies",
    id_prefix="agy",
    table=Agency,
    create=AgencyCreate,
    update=AgencyUpdate,
    public=AgencyPublic,
    query=AgencyQuery,
    filters={"country": ColumnFilter("country"), "q": TextFilter(("name",))},
    create_roles=(Role.admin,),
    owner_of=lambda row: row.id,
    tenant_owned=False,
)
