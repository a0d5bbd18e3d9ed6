"""The merged OpenAPI document states what the platform enforces, and only that.

Each test reads the document the gateway serves and checks it against the code (the
routes' declarations, the settings the middleware reads) and against the answers
the platform gives.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.utils import get_flat_params

from gateway.proxy import route_for
from gateway.settings import GatewaySettings
from services.common.deps import IF_MATCH_REQUIRED_EXTENSION
from services.common.openapi import HTTP_METHODS, PROBLEM_SCHEMA_REF, operations
from services.events.settings import EventsSettings
from services.matching.settings import MatchingSettings
from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from services.reporting.settings import ReportingSettings
from tests.support import BOOTSTRAP_KEY, Stack, api_routes, assert_problem

ADMIN_KEY = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
AGENCY = {"name": "Ministerio", "country": "EC"}


@pytest.fixture
def gateway_settings(gateway_settings: GatewaySettings) -> GatewaySettings:
    """The conftest's, with room for one request per documented method and path."""
    return gateway_settings.model_copy(update={"rate_limit_burst": 100_000, "rate_limit_per_minute": 6_000_000})


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in operation.get("parameters", []) if p["name"] == name), None)


def _if_match_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of every route of ``app`` that declares an If-Match header."""
    found = set()
    for path, route in api_routes(app):
        for field in get_flat_params(route.dependant):
            if field.alias == "If-Match":
                extra = field.field_info.json_schema_extra
                assert isinstance(extra, dict) and extra.get(IF_MATCH_REQUIRED_EXTENSION), (
                    f"{route.path}: declare If-Match with services.common.deps.IfMatchHeader"
                )
                found |= {(path, m.lower()) for m in route.methods or ()}
    return found


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_document_lists_what_every_operation_can_answer(
    whole_platform: Stack, service_apps: dict[str, FastAPI]
) -> None:
    document = (await whole_platform.client.get("/openapi.json")).json()
    assert "x-unavailable-services" not in document["info"]
    in_code = set().union(*(_if_match_routes(app) for app in service_apps.values()))
    assert len(in_code) >= 18, "PATCH and DELETE of the registry's records, PATCH of standards and linkages"
    with_if_match = set()
    for path, method, operation in operations(document):
        responses = operation["responses"]
        for status in ("401", "429"):
            assert status in responses, f"{method} {path}: {status}"
        if route_for(path) is not None:
            for status in ("502", "503", "504"):
                assert status in responses, f"{method} {path}: {status} (proxied)"
        if "requestBody" in operation:
            assert {"413", "415"} <= set(responses), f"{method} {path}: 413 and 415 on a body"
        if_match = _parameter(operation, "If-Match")
        if if_match is not None:
            with_if_match.add((path, method))
            assert if_match["required"] is True and if_match["in"] == "header"
            assert {"412", "428"} <= set(responses), f"{method} {path}: 412 and 428 with If-Match"
        idempotency_key = _parameter(operation, "Idempotency-Key")
        if idempotency_key is not None:
            assert idempotency_key["in"] == "header" and not idempotency_key.get("required")
        for status, response in responses.items():
            if status[0] in "45":
                assert response["content"] == {"application/problem+json": {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}
    assert with_if_match == in_code, "the document lists If-Match exactly where a route requires it"
    creates = [(p, m) for p, m, op in operations(document) if m == "post" and "201" in op["responses"]]
    keyless = {("/v1/api-keys", "post"), ("/v1/api-keys/{key_id}/rotate", "post")}  # the gateway's own
    for path, method in set(creates) - keyless:
        assert _parameter(document["paths"][path][method], "Idempotency-Key"), f"{method} {path}: Idempotency-Key"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_page_limits_in_the_document_are_the_settings(
    whole_platform: Stack,
    registry_settings: RegistrySettings,
    matching_settings: MatchingSettings,
    reporting_settings: ReportingSettings,
    events_settings: EventsSettings,
) -> None:
    document = (await whole_platform.client.get("/openapi.json")).json()
    services = {
        "registry": registry_settings,
        "matching": matching_settings,
        "reporting": reporting_settings,
        "events": events_settings,
    }
    limits = [(path, _parameter(op, "limit")) for path, method, op in operations(document) if method == "get"]
    paginated = [(path, limit) for path, limit in limits if limit is not None]
    assert len(paginated) >= 17, "every list"
    for path, limit in paginated:
        upstream = route_for(path)
        settings = services[upstream[1]] if upstream else whole_platform.gateway.state.settings
        assert limit["schema"]["minimum"] == 1, path
        assert limit["schema"]["maximum"] == settings.page_size_max, path
        assert limit["schema"]["default"] == settings.page_size_default, path
    # The bound follows the setting, not a number written twice.
    smaller = create_registry(registry_settings.model_copy(update={"page_size_max": 77, "page_size_default": 7}))
    firms = _parameter(smaller.openapi()["paths"]["/v1/firms"]["get"], "limit")
    assert firms is not None and (firms["schema"]["maximum"], firms["schema"]["default"]) == (77, 7)


async def test_answers_match_the_document(whole_platform: Stack) -> None:
    client = whole_platform.client
    document = (await client.get("/openapi.json")).json()

    # limit: the documented maximum is accepted, one more is refused, on every list without path parameters.
    for path, method, operation in operations(document):
        limit = _parameter(operation, "limit")
        if method != "get" or limit is None or "{" in path:
            continue
        maximum = limit["schema"]["maximum"]
        assert (await client.get(path, params={"limit": maximum}, headers=ADMIN_KEY)).status_code == 200, path
        too_many = await client.get(path, params={"limit": maximum + 1}, headers=ADMIN_KEY)
        assert too_many.status_code == 422, f"{path}: {too_many.text}"

    # 415: a JSON body sent as another media type (or none), through the gateway and at the gateway.
    for path in ("/v1/agencies", "/v1/api-keys"):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = ADMIN_KEY | ({"Content-Type": content_type} if content_type else {})
            response = await client.post(path, content=b'{"name": "x"}', headers=headers)
            assert_problem(response, 415)

    # Reporting's filters take a blank value as no filter (a plain HTML form sends one), and say so.
    blank = {"type": "string", "pattern": r"^\s*$"}
    for parameter in document["paths"]["/v1/indicators"]["get"]["parameters"]:
        assert blank in parameter["schema"]["anyOf"], parameter["name"]
    blanks = {"from": "", "to": " ", "country": "", "subdivision": "", "sector": ""}
    assert (await client.get("/v1/indicators", params=blanks, headers=ADMIN_KEY)).status_code == 200

    # 428 without If-Match, where the document requires it.
    agency = (await client.post("/v1/agencies", json=AGENCY, headers=ADMIN_KEY)).json()
    assert _parameter(document["paths"]["/v1/agencies/{record_id}"]["patch"], "If-Match")
    for method in ("PATCH", "DELETE"):
        change = {"name": "Otro"} if method == "PATCH" else None
        response = await client.request(method, f"/v1/agencies/{agency['id']}", headers=ADMIN_KEY, json=change)
        assert response.status_code == 428, response.text

    # 405: Allow names exactly the documented methods of the path, whoever answers it.
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        documented = {m.upper() for m in item if m in HTTP_METHODS}
        for method in ("OPTIONS", "TRACE", *sorted({"PUT", "PATCH", "DELETE", "POST"} - documented)):
            response = await client.request(method, concrete, headers=ADMIN_KEY)
            if response.status_code == 403 and method != "OPTIONS":
                continue  # a write method where the key has no write scope (reporting): refused before routing
            assert response.status_code == 405, f"{method} {concrete}: {response.status_code} {response.text}"
            allow = {m.strip() for m in response.headers["allow"].split(",")}
            assert allow == documented, f"{method} {concrete}: Allow {allow}, documented {documented}"
