"""The routes that forward to the services: ``/v1/...`` and the dashboard.

``FORWARDED_ROUTE`` serves every ``/v1/`` path the gateway does not serve itself
(its own API keys are in ``gateway/keys/``): it authenticates the caller, finds the
service behind the path (``ROUTES`` in ``gateway/proxy.py``), checks the key's
scope and hands the request to the app's ``Forwarder``. ``router`` holds the
dashboard, which a browser without a key or session is sent to sign in for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from gateway.auth import authenticated, presented_key, require_scope, session_of
from gateway.proxy import required_scope, route_for
from gateway.session import forbidden_page, login_redirect, missing_scope_message, read_scope_of, requested, wants_html
from services.common.errors import Forbidden, MethodNotAllowed, NotFound, allowed_methods


class ForwardedRoute(Route):
    """The route of every forwarded path: serves every method (the service behind the path
    answers those it does not serve with 405 and its real ``Allow``), and names itself in
    the scope as FastAPI's routes do, so access logs and metrics carry its template.

    ``routed_only``: matches only paths a service serves (``route_for``). Such a route goes
    first, so a forwarded request is not first tried against each of the gateway's own
    routes (a tenth of the gateway's CPU per request, measured); none of those is under a
    service's prefix (tests/gateway/test_upstream.py).
    """

    def __init__(
        self, path: str, endpoint: Callable[[Request], Awaitable[Response]], *, routed_only: bool = False
    ) -> None:
        super().__init__(path, endpoint, include_in_schema=False)
        self.methods = None  # every method, not only GET
        self.routed_only = routed_only

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self.routed_only and route_for(scope["path"]) is None:
            return Match.NONE, {}
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


async def forward(request: Request) -> Response:
    """Send the request to the service behind its path, as the authenticated caller."""
    # Every method is forwarded: the service behind the path answers a method it
    # does not serve with 405 and the path's real methods in Allow.
    principal = await authenticated(request)
    route = route_for(request.url.path)
    if route is None:
        allowed = allowed_methods(request)  # the gateway's own routes (API keys) at this path
        if allowed:
            raise MethodNotAllowed(headers={"Allow": allowed})
        raise NotFound(f"No API at {request.url.path}")
    prefix, upstream = route
    require_scope(principal, required_scope(upstream, request.method))
    response: Response = await request.app.state.forwarder.forward(request, principal, prefix, upstream)
    return response


# Appended by the app after every other route (``app.router.routes``), not included with
# ``include_router``: inclusion copies a plain route into a new one that serves only the
# methods it lists and no longer names itself in the scope.
FORWARDED_ROUTE = ForwardedRoute("/v1/{path:path}", forward)
# Put first by the app: the paths of the services, without trying the gateway's own routes.
ROUTED_FIRST = ForwardedRoute("/v1/{path:path}", forward, routed_only=True)

router = APIRouter()


@router.get("/dashboard{path:path}", include_in_schema=False)
async def dashboard(request: Request) -> Response:
    # A browser is sent to sign in rather than shown a 401, and told on the page,
    # rather than shown a JSON 403, when its key cannot read reports.
    browser = wants_html(request)
    if presented_key(request) is None and session_of(request) is None and browser:
        return login_redirect(request)
    try:
        return await forward(request)
    except Forbidden:
        if not browser:
            raise
        principal = await authenticated(request)  # cached: forward just authenticated it
        needed = read_scope_of(request.url.path)
        assert needed is not None  # the dashboard is reporting's
        return forbidden_page(request, requested(request), missing_scope_message(principal, needed))
