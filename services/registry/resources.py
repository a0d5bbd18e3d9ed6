"""Every resource the registry serves, in the order the API documents them."""

from __future__ import annotations

from services.registry.agencies.resource import AGENCIES
from services.registry.clusters.resource import CLUSTERS
from services.registry.firms.resource import FIRMS
from services.registry.programmes.resource import PROGRAMMES
from services.registry.records import ResourceSpec

RESOURCES: list[ResourceSpec] = [AGENCIES, PROGRAMMES, CLUSTERS, FIRMS]
