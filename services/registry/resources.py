"""Every resource the registry serves, in the order the API documents them."""

from __future__ import annotations

from services.registry.activities.resource import ACTIVITIES
from services.registry.agencies.resource import AGENCIES
from services.registry.brokers.resource import BROKERS
from services.registry.clusters.resource import CLUSTERS
from services.registry.firm_results.resource import FIRM_RESULTS
from services.registry.firms.resource import FIRMS
from services.registry.institutions.resource import INSTITUTIONS
from services.registry.networks.resource import NETWORKS
from services.registry.programmes.resource import PROGRAMMES
from services.registry.records import ResourceSpec

RESOURCES: list[ResourceSpec] = [
    AGENCIES,
    PROGRAMMES,
    CLUSTERS,
    FIRMS,
    INSTITUTIONS,
    BROKERS,
    NETWORKS,
    ACTIVITIES,
    FIRM_RESULTS,
]
