"""One OpenAPI document for the whole platform, merged from the services' own.

Only publicly routed paths are kept. Component schemas with the same name and the
same definition are shared; a name two services define differently is prefixed
with the service's name (and its references rewritten), so no name is duplicated.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from gateway.proxy import route_for

SECURITY_SCHEMES = {
    "ApiKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer lk_..."},
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"ApiKeyHeader": []}]


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                name = value.rsplit("/", 1)[-1]
                out[key] = "#/components/schemas/" + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def merge_documents(
    gateway_doc: dict[str, Any], services: dict[str, dict[str, Any]], *, title: str, version: str
) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "openapi": gateway_doc.get("openapi", "3.1.0"),
        "info": {
            "title": title,
            "version": version,
            "description": "The linkages platform API. Authenticate with an API key.",
        },
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": SECURITY_SCHEMES},
        "security": SECURITY,
        "tags": [],
    }
    schemas: dict[str, Any] = merged["components"]["schemas"]
    canonical: dict[str, str] = {}
    for service_name, document in [("gateway", gateway_doc), *sorted(services.items())]:
        document = copy.deepcopy(document)
        renames: dict[str, str] = {}
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            text = json.dumps(schema, sort_keys=True)
            if name not in schemas:
                schemas[name], canonical[name] = schema, text
            elif canonical[name] != text:
                renames[name] = f"{service_name.capitalize()}{name}"
        for old, new in renames.items():
            schemas[new] = _rewrite_refs(document["components"]["schemas"][old], renames)
        for path, item in document.get("paths", {}).items():
            public = service_name == "gateway" or route_for(path) is not None
            if public and path not in merged["paths"]:
                merged["paths"][path] = _rewrite_refs(item, renames)
        known_tags = {t["name"] for t in merged["tags"]}
        merged["tags"] += [t for t in document.get("tags", []) if t["name"] not in known_tags]
    # Internal endpoints of the gateway itself stay out of the public document.
    for internal in ("/livez", "/readyz", "/openapi.json"):
        merged["paths"].pop(internal, None)
    return merged
