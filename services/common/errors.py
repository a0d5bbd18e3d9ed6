"""RFC 9457 problem details: one exception hierarchy and one set of handlers.

Every error a service returns, including request validation, unknown routes and
unexpected crashes, is rendered as ``application/problem+json`` with a stable
``type`` per error kind, the request id, and field-level details where they apply.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://linkages.dev/problems/"

logger = structlog.get_logger(__name__)


class FieldError(BaseModel):
    """One problem with one input field."""

    location: str  # body, query, path, header or row
    field: str  # dotted path within the location, e.g. "certifications.0.scheme"
    message: str
    code: str


class Problem(BaseModel):
    """The RFC 9457 body, as listed in OpenAPI ``responses=``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Base of every error a service raises on purpose."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_BASE + self.slug


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class MalformedBody(ProblemError):
    status, slug, title = 400, "malformed-body", "Request body is not valid JSON"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(ProblemError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class IdempotencyKeyReused(ProblemError):
    status, slug, title = (
        422,
        "idempotency-key-reused",
        "Idempotency-Key was used for a different request",
    )


class IdempotencyInProgress(ProblemError):
    status, slug, title = (
        409,
        "idempotency-in-progress",
        "A request with this Idempotency-Key is in progress",
    )


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "The record has changed"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(ProblemError):
    status, slug, title = 422, "validation-error", "Request validation failed"


class PreconditionRequired(ProblemError):
    status, slug, title = 428, "precondition-required", "If-Match header required"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class BadGateway(ProblemError):
    status, slug, title = 502, "bad-gateway", "Upstream service failed"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


class GatewayTimeout(ProblemError):
    status, slug, title = 504, "gateway-timeout", "Upstream service timed out"


def field_error(field: str, message: str, code: str = "invalid", location: str = "body") -> FieldError:
    return FieldError(location=location, field=field, message=message, code=code)


def invalid_field(field: str, message: str, code: str = "invalid", location: str = "body") -> ValidationFailed:
    """A 422 naming one field: the common case of a failed business rule."""
    return ValidationFailed(f"{field}: {message}", errors=[field_error(field, message, code, location)])


# Responses to list in routes' ``responses=`` so that OpenAPI shows the problem model.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_CONTENT_TYPE: {}}, "description": title}
    for status, title in (
        (400, "Bad request"),
        (401, "Authentication required"),
        (403, "Not allowed"),
        (404, "Not found"),
        (409, "Conflict"),
        (422, "Validation failed"),
    )
}


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def problem_response(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "instance": request.url.path,
        "request_id": request_id_of(request),
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    if extensions:
        body.update(extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


def render(request: Request, exc: ProblemError) -> JSONResponse:
    return problem_response(
        request,
        status=exc.status,
        type_=exc.type,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        extensions=exc.extensions,
    )


def _location_and_field(loc: tuple[Any, ...]) -> tuple[str, str]:
    if not loc:
        return "body", ""
    location, *rest = loc
    return str(location), ".".join(str(part) for part in rest)


def _validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    if isinstance(exc.body, bytes):
        # FastAPI hands a JSON body's model the raw bytes when the media type is not JSON.
        media_type = request.headers.get("content-type") or "none"
        return render(request, UnsupportedMediaType(f"Send the body as application/json, not {media_type}"))
    errors: list[FieldError] = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            ctx = error.get("ctx") or {}
            return render(request, MalformedBody(f"Malformed JSON: {ctx.get('error', 'invalid JSON')}"))
        location, field = _location_and_field(tuple(error.get("loc", ())))
        errors.append(
            FieldError(
                location=location,
                field=field,
                message=str(error.get("msg", "invalid")),
                code=str(error.get("type", "invalid")),
            )
        )
    fields = ", ".join(sorted({e.field or e.location for e in errors}))
    return render(request, ValidationFailed(f"Invalid input: {fields}", errors=errors))


_STATUS_PROBLEMS: dict[int, type[ProblemError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        TooManyRequests,
    )
}


def allowed_methods(request: Request) -> str:
    """The Allow header of a 405: every method a route of the app serves at this path.

    Starlette names only the methods of the first route whose path matched, and one
    path usually has several routes (``GET`` and ``POST`` of a collection).
    """
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):  # included routers' routes too
        path_regex = getattr(route, "path_regex", None)
        if path_regex is not None and path_regex.match(path):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


def add_exception_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return render(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_problem(request, exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            exc.headers = dict(exc.headers or {}) | {"Allow": allowed_methods(request)}
        cls = _STATUS_PROBLEMS.get(exc.status_code)
        if cls is None:
            return problem_response(
                request,
                status=exc.status_code,
                type_="about:blank",
                title=str(exc.detail),
                headers=dict(exc.headers or {}),
            )
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != cls.title else None
        return render(request, cls(detail, headers=dict(exc.headers or {})))

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        # Starlette runs this handler outside every middleware, so the request id is
        # neither bound to the log context nor added to the headers here: do both.
        request_id = request_id_of(request)
        logger.exception("unhandled_error", path=request.url.path, request_id=request_id)
        problem = ProblemError("An unexpected error occurred; it has been logged.")
        if request_id:
            problem.headers["X-Request-ID"] = request_id
        return render(request, problem)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
