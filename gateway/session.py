"""Browser sessions for the dashboard: sign in once with an API key, then browse.

A browser cannot add an ``Authorization`` header to a link or an ``<img>``, so
``POST /login`` checks a key and sets an HttpOnly, SameSite=Strict cookie. The
cookie holds the key's SHA-256 digest (what the gateway stores, which is not the
key: it cannot be presented as one), an expiry and an HMAC over both; each request
looks the digest up like a key, so revoking or rotating the key ends its sessions.
A session only authorises reads (GET, HEAD): anything that writes still needs the
key itself, which keeps cross-site request forgery out by construction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import time
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.keys.scopes import ROLE_SCOPES
from gateway.keys.service import hash_key
from gateway.proxy import required_scope, route_for
from gateway.ratelimit import count_failed_key_check
from services.common.errors import Unauthorized
from services.common.principal import Principal

SESSION_COOKIE = "lk_session"
_CONTEXT = b"linkages-gateway-session-v1"


def _mac(secret: str, payload: str) -> str:
    key = hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()  # not the principal-signing key itself
    return base64.urlsafe_b64encode(hmac.new(key, payload.encode(), hashlib.sha256).digest()).decode().rstrip("=")


def issue_session(digest: str, secret: str, ttl_seconds: int) -> str:
    payload = f"{digest}.{int(time.time()) + ttl_seconds}"
    return f"{payload}.{_mac(secret, payload)}"


def session_digest(token: str, secret: str) -> str | None:
    """The key digest a session cookie stands for, or None if forged or expired."""
    digest, _, rest = token.partition(".")
    expires, _, mac = rest.partition(".")
    # Bytes, not str: compare_digest raises TypeError on non-ASCII str (a cookie may hold any latin-1).
    expected = _mac(secret, f"{digest}.{expires}").encode()
    if not expires.isdigit() or not hmac.compare_digest(mac.encode("utf-8", "replace"), expected):
        return None
    return digest if int(expires) > time.time() else None


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this gateway only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/dashboard"
    return target


def _page(next_path: str, hours: int, message: str = "") -> str:
    note = f'<p role="alert" class="error">{html.escape(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Linkages</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#1b2733}}
label,input,button{{display:block;width:100%;box-sizing:border-box;margin:.4rem 0;font-size:1rem}}
input{{padding:.5rem}}button{{padding:.6rem;background:#1f5f8b;color:#fff;border:0;border-radius:4px}}
.error{{color:#a4262c}}</style></head>
<body><h1>Linkages dashboard</h1>{note}
<form method="post" action="/login">
<label for="api_key">API key</label>
<input id="api_key" name="api_key" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{html.escape(next_path)}">
<button type="submit">Sign in</button></form>
<p>The key is checked and kept for this browser session only as a signed cookie; signing in
again is needed after {hours} hours or when the key is revoked.</p></body></html>"""


def read_scope_of(path: str) -> str | None:
    """The scope a GET of ``path`` needs (``reporting:read`` for the dashboard), if it is forwarded."""
    route = route_for(path)
    return None if route is None else required_scope(route[1], "GET")


def missing_scope_message(principal: Principal, scope: str) -> str:
    """Why a signed-in key cannot read a page, and which keys can."""
    roles = ", ".join(role.value for role, scopes in ROLE_SCOPES.items() if scope in scopes)
    what = "read reports, so it cannot open the dashboard" if scope == "reporting:read" else f"read {scope}"
    return (
        f"This {principal.role.value} key cannot {what}: that needs a key with the scope '{scope}' "
        f"({roles} keys hold it). An agency or admin can issue a viewer key (POST /v1/api-keys with "
        f'"role": "viewer"); sign in with that key instead.'
    )


def forbidden_page(request: Request, next_path: str, message: str) -> HTMLResponse:
    """The sign-in page, explaining why the key given or in session cannot read ``next_path``."""
    hours = request.app.state.settings.session_ttl_seconds // 3600
    return HTMLResponse(_page(next_path, hours, message), status_code=403)


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def requested(request: Request) -> str:
    """The path and query the browser asked for: where to come back after signing in."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(requested(request), safe='')}", status_code=303)


router = APIRouter(include_in_schema=False)


@router.get("/login")
async def login_form(request: Request, next: Annotated[str | None, Query()] = None) -> HTMLResponse:
    return HTMLResponse(_page(safe_next(next), request.app.state.settings.session_ttl_seconds // 3600))


@router.post("/login")
async def login(
    request: Request, api_key: Annotated[str, Form()], next: Annotated[str | None, Form()] = None
) -> Response:
    settings = request.app.state.settings
    target = safe_next(next)
    try:
        principal = await request.app.state.authenticator.authenticate(api_key.strip())
    except Unauthorized as exc:
        await count_failed_key_check(request)  # 429 past the client's limit of failed key checks
        message = f"{exc.detail or exc.title}: check the key and try again."
        return HTMLResponse(_page(target, settings.session_ttl_seconds // 3600, message), status_code=401)
    needed = read_scope_of(urlsplit(target).path)
    if needed is not None and needed not in principal.scopes:  # no session for a page the key cannot read
        return forbidden_page(request, target, missing_scope_message(principal, needed))
    token = issue_session(
        hash_key(api_key.strip()), settings.principal_secret.get_secret_value(), settings.session_ttl_seconds
    )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        samesite="strict",
        secure=_is_https(request),
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_is_https(request))
    return response


def _is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return (forwarded or request.url.scheme) == "https"
