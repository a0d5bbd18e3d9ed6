"""The merged OpenAPI document is one a client can be generated from, and reads well.

Every operation is named on purpose (no FastAPI default id, none twice), tagged with a
described resource; the document states the platform's version and what the API is
for; every schema in it is used and named once; files are binary bodies in their media
types. The checks run over every route of every app, so a route added later is caught.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from packaging.version import Version

from gateway.openapi import SCHEMA_REF_PREFIX, TAGS
from services.common.openapi import BINARY_SCHEMA, operations
from services.common.version import VERSION
from tests.support import Stack, api_routes

ROOT = Path(__file__).parents[2]
OPERATION_ID = re.compile(r"^[a-z]+(_[a-z0-9]+)+$")  # verb_resource, snake_case
JSON_MEDIA_TYPES = ("application/json", "application/problem+json")


def _documented_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """(path, route) of every route of ``app`` in its OpenAPI document, included routers' too."""
    return [(path, route) for path, route in api_routes(app) if route.include_in_schema]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_every_operation_has_a_name_of_its_own(whole_platform: Stack, service_apps: dict[str, FastAPI]) -> None:
    for name, app in service_apps.items():
        routes = _documented_routes(app)
        assert routes, name
        for path, route in routes:
            # Without operation_id= FastAPI makes one up from the path (``create_key_v1_api_keys_post``).
            assert route.operation_id, f"{name}: {sorted(route.methods or ())} {path} needs operation_id="
            assert OPERATION_ID.match(route.operation_id), f"{path}: {route.operation_id} is not verb_resource"

    document = (await whole_platform.client.get("/openapi.json")).json()
    documented = operations(document)
    assert len(documented) >= 119
    ids = [operation.get("operationId") for _path, _method, operation in documented]
    assert all(ids), [f"{m} {p}" for p, m, op in documented if not op.get("operationId")]
    assert len(ids) == len(set(ids)), sorted({str(i) for i in ids if ids.count(i) > 1})
    for path, method, operation in documented:
        assert OPERATION_ID.match(operation["operationId"]), f"{method} {path}: {operation['operationId']}"
        assert not re.search(rf"_{method}$", operation["operationId"]), f"{method} {path}: a generated id"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_document_describes_the_api(whole_platform: Stack) -> None:
    document = (await whole_platform.client.get("/openapi.json")).json()
    info = document["info"]
    with (ROOT / "pyproject.toml").open("rb") as file:
        assert info["version"] == VERSION == tomllib.load(file)["project"]["version"]
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert released and Version(VERSION) > Version(released[0]), "the version is past the newest release"
    for topic in ("API key", "problem+json", "next_cursor", "If-Match", "Idempotency-Key", "/v1/events"):
        assert topic in info["description"], topic

    # Each operation has one tag, a resource the document describes, in TAGS' order.
    described = {tag["name"]: tag.get("description") for tag in document["tags"]}
    assert [tag["name"] for tag in document["tags"]] == [t["name"] for t in TAGS if t["name"] in described]
    for path, method, operation in operations(document):
        assert len(operation.get("tags", [])) == 1, f"{method} {path}: {operation.get('tags')}"
        assert described.get(operation["tags"][0]), f"{method} {path}: describe its tag in gateway.openapi.TAGS"


def _references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix(SCHEMA_REF_PREFIX)} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(item) for item in node))
    return set()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_schemas_are_used_typed_and_named_once(whole_platform: Stack) -> None:
    document = (await whole_platform.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    reached, pending = set(), _references(document["paths"])
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending |= _references(schemas[name])
    assert set(schemas) == reached, f"unused: {sorted(set(schemas) - reached)}"
    titles = [schema.get("title", name) for name, schema in schemas.items()]
    assert len(titles) == len(set(titles)), "a generated client names its models after these"

    files = 0
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                assert "schema" in content, f"{method} {path} {status} {media_type}: no schema"
                if media_type not in JSON_MEDIA_TYPES and media_type != "text/html":
                    assert content["schema"] == BINARY_SCHEMA, f"{method} {path} {status} {media_type}"
                    files += 1
    assert files >= 6, "charts (SVG, PNG), CSV exports, import templates (CSV, XLSX), import errors"
    # Bodies that have a model say so: a standards change, a linkage's gap.
    update = schemas["StandardsUpdate"]["properties"]
    assert {"$ref": SCHEMA_REF_PREFIX + "HardConstraintsChange"} in update["constraints"]["anyOf"]
    assert {"$ref": SCHEMA_REF_PREFIX + "SoftCriteriaChange"} in update["criteria"]["anyOf"]
    assert {"$ref": SCHEMA_REF_PREFIX + "GapPublic"} in schemas["LinkagePublic"]["properties"]["gap"]["anyOf"]
