"""The API reference pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), with no CDN.

FastAPI's own pages load their scripts, styles and icon from public CDNs, so they stay
blank on a network without internet access. Here the app serves them itself, from the
files the fastapi-offline package ships (Swagger UI's bundle and CSS, ReDoc's standalone
bundle, a favicon), under ``/docs/assets/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
ASSETS = Path(fastapi_offline.__file__).parent / "static"
# No call to Swagger's public validator (its default): the page makes no request off the platform.
SWAGGER_UI_PARAMETERS: dict[str, Any] = {"validatorUrl": None, "persistAuthorization": True}
# The pages load nothing from another origin, which would tell a third party who reads the docs
# (and fail offline); the browser is told so too. Both pages run an inline script and inline
# styles; ReDoc's search runs in a worker from a blob.
DOCS_CONTENT_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:"
)
# ReDoc's menu shows its maker's logo from their CDN once it is mounted: the bundle is served
# with that address replaced by an empty image of its own.
REDOC_SCRIPT = "redoc.standalone.js"
_REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
_EMPTY_IMAGE = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


def add_docs(app: FastAPI, *, openapi_url: str, title: str) -> None:
    """Serve ``/docs`` and ``/redoc`` for the document at ``openapi_url``, and their assets."""
    redoc_script = (ASSETS / REDOC_SCRIPT).read_bytes().replace(_REDOC_LOGO, _EMPTY_IMAGE)

    @app.get(f"{ASSETS_URL}/{REDOC_SCRIPT}", include_in_schema=False)
    async def redoc_bundle() -> Response:  # before the assets' mount, which would serve it as shipped
        return Response(redoc_script, media_type="text/javascript")

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _own_origin_only(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
            )
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _own_origin_only(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )


def _own_origin_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CONTENT_POLICY
    return page
