"""Scopes: what a key may do, checked by the gateway before a request is forwarded."""

from __future__ import annotations

from services.common.principal import Role

REGISTRY_READ = "registry:read"
REGISTRY_WRITE = "registry:write"
MATCHING_READ = "matching:read"
MATCHING_WRITE = "matching:write"
REPORTING_READ = "reporting:read"
REPORTING_WRITE = "reporting:write"  # programme results frameworks
EVENTS_READ = "events:read"  # GET /v1/events: what the key reads anyway, as events
EVENTS_WRITE = "events:write"  # webhook endpoints
KEYS_ADMIN = "keys:admin"  # every key
KEYS_ISSUE = "keys:issue"  # keys of ISSUED_BY_AGENCIES roles for the caller's own agency
METRICS_READ = "metrics:read"  # the gateway's /metrics (Prometheus)

ALL_SCOPES = (
    REGISTRY_READ,
    REGISTRY_WRITE,
    MATCHING_READ,
    MATCHING_WRITE,
    REPORTING_READ,
    REPORTING_WRITE,
    EVENTS_READ,
    EVENTS_WRITE,
    KEYS_ADMIN,
    KEYS_ISSUE,
    METRICS_READ,
)

# The most a key of each role may hold; a key may be created with fewer.
ROLE_SCOPES: dict[Role, tuple[str, ...]] = {
    Role.admin: ALL_SCOPES,
    Role.agency: (
        REGISTRY_READ,
        REGISTRY_WRITE,
        MATCHING_READ,
        MATCHING_WRITE,
        REPORTING_READ,
        REPORTING_WRITE,
        KEYS_ISSUE,
        EVENTS_READ,
        EVENTS_WRITE,
    ),
    Role.lead_firm: (REGISTRY_READ, MATCHING_READ, MATCHING_WRITE, EVENTS_READ, EVENTS_WRITE),
    Role.integrator: (REGISTRY_READ, MATCHING_READ, MATCHING_WRITE, EVENTS_READ, EVENTS_WRITE),
    Role.viewer: (REGISTRY_READ, MATCHING_READ, REPORTING_READ, EVENTS_READ),
    # Matching decides which writes they may make: answers and messages for their suppliers.
    Role.supplier: (REGISTRY_READ, MATCHING_READ, MATCHING_WRITE, EVENTS_READ),
    Role.broker: (REGISTRY_READ, MATCHING_READ, MATCHING_WRITE, EVENTS_READ),
}

# The roles of the keys an agency key (``keys:issue``) may create, rotate and revoke:
# keys for its own firms, brokers and staff, never admin or agency keys.
ISSUED_BY_AGENCIES = frozenset({Role.lead_firm, Role.supplier, Role.integrator, Role.viewer, Role.broker})
