"""One OpenAPI document for the whole platform, merged from the services' own.

Only publicly routed paths are kept. Component schemas with the same name and the
same definition are shared; a name two services define differently is prefixed
with the service's name (its title and references rewritten), so no name is
duplicated, and schemas no public operation reaches are left out. Tags are the
resources, in the order of ``TAGS``, each with what it is for.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from gateway.proxy import route_for
from services.common.openapi import operations

SECURITY_SCHEMES = {
    "ApiKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer lk_..."},
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"ApiKeyHeader": []}]
SCHEMA_REF_PREFIX = "#/components/schemas/"

DESCRIPTION = """\
The public API of the linkages platform for cluster development programmes: implementing
agencies register programmes, clusters, firms and brokers; a lead firm saves its buyer
standards and gets an exact, explained shortlist of local suppliers (with the
development candidates one upgrade away), runs requests for quotation and records the
linkages that come of it; the programme reads indicators, charts and exports; portals
follow events and webhooks.

**Authentication.** Every operation needs an API key: `Authorization: Bearer lk_...` or
`X-API-Key: lk_...`. A key has a role (admin, agency, lead_firm, supplier, broker,
integrator, viewer) and scopes, and may do only what they allow (403). Any key reads the
registry, the shared catalogue; only the owning agency changes its records. Buyer
standards, shortlists, requests, linkages and scorecards belong to the key's owner:
other tenants get 404, as if they did not exist.

**Errors** are RFC 9457 `application/problem+json` bodies (the `Problem` schema) with a
stable `type` URI per kind of error, `status`, `detail`, the `request_id` and, for
invalid input (422), `errors` naming each field. Every operation lists the statuses it
can answer, with the limits in force (page sizes, body sizes).

**Pagination.** Lists take `limit` and `cursor` and answer `{"items": [...],
"next_cursor": ...}`; pass `next_cursor` back as `cursor` until it is `null`.

**Concurrency.** Records carry an `ETag`; an update or delete needs `If-Match` with it
(428 without, 412 when the record changed since). `If-None-Match` on a read answers 304.

**Idempotency.** Send `Idempotency-Key` on a create: a retry with the same key and body
returns the first answer (`Idempotent-Replayed: true`) and creates nothing.

**Events.** Changes are published as events (`GET /v1/events`, with a cursor) and
delivered to webhook endpoints signed as Standard Webhooks.

Rate limits per key answer 429 with `Retry-After`; the `RateLimit` headers tell the
budget left.
"""

# Tags in the order a reader meets the resources; a tag no operation uses is left out.
TAGS: list[dict[str, str]] = [
    {"name": "api keys", "description": "Issue, list, rotate and revoke API keys (admins and agencies)."},
    {"name": "agencies", "description": "Implementing agencies: the tenants that own registry records."},
    {"name": "programmes", "description": "Cluster development programmes an agency runs."},
    {"name": "clusters", "description": "Clusters: firms of one sector agglomerated in one place."},
    {"name": "firms", "description": "Firms: suppliers and lead firms, with capabilities and certifications."},
    {"name": "institutions", "description": "Support institutions of a cluster."},
    {"name": "brokers", "description": "Cluster development agents who build networks."},
    {"name": "networks", "description": "Horizontal and vertical networks of firms."},
    {"name": "activities", "description": "Activities of a programme or network (trainings, joint actions)."},
    {"name": "firm results", "description": "A firm's sales, exports, jobs and new products per year or quarter."},
    {"name": "certification schemes", "description": "The certification schemes firms may hold."},
    {"name": "codes", "description": "ISIC Rev.4 and HS codes with their labels, looked up for pickers."},
    {"name": "imports", "description": "Bulk import of firms from CSV, XLSX or NDJSON, with per-row errors."},
    {"name": "duplicates", "description": "Likely duplicate firms, reviewed merges and their undo."},
    {"name": "buyer standards", "description": "A lead firm's saved standards, and alerts on new matches."},
    {"name": "shortlists", "description": "Exact, explained supplier shortlists and development candidates."},
    {"name": "linkages", "description": "Buyer-supplier linkages and their stages, from proposed to contracted."},
    {"name": "requests", "description": "Requests for quotation: invitations, answers, messages and awards."},
    {"name": "scorecards", "description": "Supplier scorecards after delivery, with appeals."},
    {"name": "indicators", "description": "Programme indicators per programme, country, cluster and period."},
    {
        "name": "results",
        "description": "Programme results frameworks (baselines, targets, means of verification) and the results "
        "against them: JSON, logframe CSV/XLSX, IATI 2.03 XML.",
    },
    {"name": "charts", "description": "Indicator charts as SVG or PNG."},
    {"name": "exports", "description": "Read-model tables as CSV."},
    {"name": "dashboard", "description": "The programme dashboard (HTML)."},
    {"name": "events", "description": "Public events of every change, read with a cursor."},
    {"name": "webhooks", "description": "Webhook endpoints, deliveries and replays."},
]


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF_PREFIX):
                name = value.removeprefix(SCHEMA_REF_PREFIX)
                out[key] = SCHEMA_REF_PREFIX + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _references(node: Any) -> set[str]:
    """Names of the component schemas ``node`` refers to directly."""
    if isinstance(node, dict):
        found = set()
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF_PREFIX):
                found.add(value.removeprefix(SCHEMA_REF_PREFIX))
            else:
                found |= _references(value)
        return found
    if isinstance(node, list):
        return set().union(*(_references(item) for item in node))
    return set()


def _reachable_schemas(paths: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    """Schemas the operations refer to, and those these refer to, transitively."""
    reached: set[str] = set()
    pending = _references(paths)
    while pending:
        name = pending.pop()
        if name not in reached and name in schemas:
            reached.add(name)
            pending |= _references(schemas[name])
    return reached


def _used_tags(paths: dict[str, Any]) -> list[str]:
    return [tag for _, _, operation in operations({"paths": paths}) for tag in operation.get("tags", [])]


def merge_documents(
    gateway_doc: dict[str, Any], services: dict[str, dict[str, Any]], *, title: str, version: str
) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "openapi": gateway_doc.get("openapi", "3.1.0"),
        "info": {"title": title, "version": version, "description": DESCRIPTION},
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": SECURITY_SCHEMES},
        "security": SECURITY,
        "tags": [],
    }
    schemas: dict[str, Any] = merged["components"]["schemas"]
    canonical: dict[str, str] = {}
    for service_name, document in [("gateway", gateway_doc), *sorted(services.items())]:
        document = copy.deepcopy(document)
        own = document.get("components", {}).get("schemas", {})
        texts = {name: json.dumps(schema, sort_keys=True) for name, schema in own.items()}
        renames = {
            name: f"{service_name.capitalize()}{name}"
            for name in own
            if name in canonical and canonical[name] != texts[name]
        }
        for name, schema in own.items():
            if name in renames:
                # Generated clients name a model after its title: a renamed schema gets its own.
                schemas[renames[name]] = _rewrite_refs(schema, renames) | {"title": renames[name]}
            elif name not in schemas:
                # Its references too: the service's schemas that use a renamed one use the renamed one.
                schemas[name], canonical[name] = _rewrite_refs(schema, renames), texts[name]
        for path, item in document.get("paths", {}).items():
            public = service_name == "gateway" or route_for(path) is not None
            if public and path not in merged["paths"]:
                merged["paths"][path] = _rewrite_refs(item, renames)
    # Internal endpoints of the gateway itself stay out of the public document.
    for internal in ("/livez", "/readyz", "/openapi.json"):
        merged["paths"].pop(internal, None)
    reachable = _reachable_schemas(merged["paths"], schemas)
    merged["components"]["schemas"] = {name: schema for name, schema in schemas.items() if name in reachable}
    used = _used_tags(merged["paths"])
    described = [tag for tag in TAGS if tag["name"] in used]
    undescribed = sorted(set(used) - {tag["name"] for tag in TAGS})  # listed, so none is lost; a test asks for TAGS
    merged["tags"] = described + [{"name": name} for name in undescribed]
    return merged
