"""The OpenAPI document states what the shared middleware and dependencies enforce.

One post-processing of a schema, from the same settings the enforcement reads:

- ``limit`` of every paginated list: ``minimum`` 1 and ``maximum``/``default`` from
  ``page_size_max``/``page_size_default`` (what ``make_page_params`` checks);
- ``If-Match`` where a route requires it: a required header with 412 and 428;
- every operation with a body: 413 (with the body size limit of its path) and 415;
- behind the gateway (``Enforcement.gateway``): 401 and 429 on every operation and
  502, 503 and 504 on every proxied one;
- every problem response: ``application/problem+json`` with the ``Problem`` schema.

Applying it twice gives the same document, so the gateway can run it over the
services' documents again with its own limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.common.deps import IF_MATCH_REQUIRED_EXTENSION
from services.common.errors import PROBLEM_CONTENT_TYPE
from services.common.middleware import body_limit
from services.common.pagination import PAGE_LIMIT_EXTENSION

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BINARY_SCHEMA: dict[str, str] = {"type": "string", "format": "binary"}
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
BODY_LIMIT_EXTENSION = "x-max-body-bytes"  # on a 413 response: the limit in bytes


@dataclass(frozen=True)
class Enforcement:
    """What one app enforces; ``gateway`` for the gateway, which proxies ``proxied`` paths."""

    page_size_default: int
    page_size_max: int
    max_body_bytes: int
    body_limits: Mapping[str, int] = field(default_factory=dict)
    gateway: bool = False
    proxied: Callable[[str], bool] = field(default=lambda _path: False)


def file_response(description: str, *media_types: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route that answers a file: a binary body in each of ``media_types``.

    A generated client reads such a body as bytes, not as text or JSON.
    """
    return {
        200: {"description": description, "content": {media: {"schema": dict(BINARY_SCHEMA)} for media in media_types}}
    }


def operations(document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation of an OpenAPI document: (path, method, operation object)."""
    return [
        (path, method, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}}


def _page_limit(parameter: dict[str, Any], enforcement: Enforcement) -> None:
    description = f"Items per page, 1 to {enforcement.page_size_max} ({enforcement.page_size_default} when absent)."
    parameter["description"] = description
    parameter["schema"] = {
        "type": "integer",
        "minimum": 1,
        "maximum": enforcement.page_size_max,
        "default": enforcement.page_size_default,
        "description": description,
        PAGE_LIMIT_EXTENSION: True,
    }


def _required_if_match(parameter: dict[str, Any], responses: dict[str, Any]) -> None:
    parameter["required"] = True
    parameter["schema"] = {"type": "string", IF_MATCH_REQUIRED_EXTENSION: True}  # "" is a stale ETag: 412
    responses.setdefault("412", _problem("The record has changed since the ETag in If-Match"))
    responses.setdefault("428", _problem("If-Match is missing"))


def _body_too_large(path: str, responses: dict[str, Any], enforcement: Enforcement) -> None:
    limit = body_limit(path, enforcement.max_body_bytes, enforcement.body_limits)
    documented = responses.get("413", {}).get(BODY_LIMIT_EXTENSION)
    if isinstance(documented, int):
        limit = min(limit, documented)  # behind the gateway the smaller of its and the service's limit applies
    responses["413"] = _problem(f"The request body is over {limit} bytes") | {BODY_LIMIT_EXTENSION: limit}


def _problem_content(responses: dict[str, Any]) -> None:
    for status, response in responses.items():
        content = response.get("content", {})
        if status[:1] in ("4", "5") and PROBLEM_CONTENT_TYPE in content:
            response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}


def document_enforcement(schema: dict[str, Any], enforcement: Enforcement) -> dict[str, Any]:
    """``schema`` (changed in place and returned) with what ``enforcement`` enforces stated."""
    for path, item in schema.get("paths", {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for parameter in operation.get("parameters", []):
                extensions = parameter.get("schema", {})
                if parameter.get("in") == "query" and _marked(extensions, PAGE_LIMIT_EXTENSION):
                    _page_limit(parameter, enforcement)
                if parameter.get("in") == "header" and _marked(extensions, IF_MATCH_REQUIRED_EXTENSION):
                    _required_if_match(parameter, responses)
            if "requestBody" in operation or "413" in responses:
                _body_too_large(path, responses, enforcement)
            if "requestBody" in operation:
                responses.setdefault("415", _problem("The request body is not of a media type listed here"))
            if enforcement.gateway:
                responses.setdefault("401", _problem("Authentication required"))
                responses.setdefault("429", _problem("Rate limit of the API key exceeded (see Retry-After)"))
                if enforcement.proxied(path):
                    responses.setdefault("502", _problem("The service behind the gateway failed"))
                    responses.setdefault("503", _problem("The service behind the gateway is unavailable"))
                    responses.setdefault("504", _problem("The service behind the gateway did not answer in time"))
            _problem_content(responses)
    return schema


def _marked(schema: dict[str, Any], extension: str) -> bool:
    """Whether ``schema`` (or a branch of its ``anyOf``) carries ``extension``."""
    return bool(schema.get(extension)) or any(
        isinstance(branch, dict) and branch.get(extension) for branch in schema.get("anyOf", [])
    )
