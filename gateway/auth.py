"""Authentication of API keys and scope checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.keys.access import require_key_issuer
from gateway.keys.scopes import METRICS_READ
from gateway.ratelimit import count_failed_key_check
from gateway.session import SESSION_COOKIE, session_digest
from services.common.errors import Forbidden, TooManyRequests, Unauthorized
from services.common.principal import Principal


def presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def session_of(request: Request) -> str | None:
    """The key digest of a valid browser session cookie, for reads only (see ``gateway.session``)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token is None or request.method not in ("GET", "HEAD"):
        return None
    return session_digest(token, request.app.state.settings.principal_secret.get_secret_value())


async def authenticated(request: Request) -> Principal:
    """Dependency: the principal of the request's API key (or, for reads, the browser
    session signed in with one), rate-limited (401, 429); failed checks are counted
    per client address, and answered 429 past their own limit."""
    try:
        principal = await _principal_of(request)
    except Unauthorized:
        await count_failed_key_check(request)
        raise
    request.state.principal = principal
    decision = await request.app.state.rate_limiter.take(principal.subject)
    request.state.rate_limit_headers = decision.headers(request.app.state.rate_limiter)
    if not decision.allowed:
        raise TooManyRequests("Rate limit exceeded for this API key", headers=request.state.rate_limit_headers)
    return principal


async def _principal_of(request: Request) -> Principal:
    key = presented_key(request)
    authenticator = request.app.state.authenticator
    principal: Principal
    if key is not None:
        principal = await authenticator.authenticate(key)
    elif (digest := session_of(request)) is not None:
        principal = await authenticator.authenticate_digest(digest)
    else:
        raise Unauthorized(
            "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' (browsers: sign in at /login)",
            headers={"WWW-Authenticate": 'Bearer realm="linkages"'},
        )
    return principal


AuthenticatedDep = Annotated[Principal, Depends(authenticated)]


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise Forbidden(f"This API key lacks the scope '{scope}'")


async def key_manager(principal: AuthenticatedDep) -> Principal:
    """Dependency of the key routes: an admin's key, or an agency's (``gateway.keys.access``)."""
    require_key_issuer(principal)
    return principal


KeyManagerDep = Annotated[Principal, Depends(key_manager)]


async def metrics_reader(principal: AuthenticatedDep) -> Principal:
    """Dependency of the gateway's /metrics: a key with ``metrics:read`` (Prometheus's)."""
    require_scope(principal, METRICS_READ)
    return principal
