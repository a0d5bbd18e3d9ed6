"""``/docs`` and ``/redoc`` of the gateway and of every service need no internet access.

The pages refer only to the platform's own URLs, and those answer with the right media
types; ``tests/gateway/test_docs_browser.py`` renders them in Chromium with the network
cut off.
"""

from __future__ import annotations

import re

import httpx
import pytest

from services.common.docs import ASSETS_URL
from tests.support import Stack

# Where a page loads something from: script and link tags, and the spec URL in the page's script.
REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']|spec-url=["']([^"']+)["']""")
ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def local_references(html: str) -> list[str]:
    """The URLs ``html`` loads, each checked to be a path on the same host."""
    assert "http://" not in html and "https://" not in html, "an absolute URL: another host"
    found = [next(group for group in match if group) for match in REFERENCES.findall(html)]
    for url in found:
        assert url.startswith("/") and not url.startswith("//"), url
    return found


async def check_pages(client: httpx.AsyncClient) -> None:
    for page, bundle in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        response = await client.get(page)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), page
        references = local_references(response.text)
        assert f"{ASSETS_URL}/{bundle}" in references, (page, references)
        assert "/openapi.json" in references, (page, references)
        for url in references:
            served = await client.get(url)
            assert served.status_code == 200, (page, url)
            if url != "/openapi.json":
                suffix = url[url.rindex(".") :]
                assert ASSET_TYPES[suffix] in served.headers["content-type"], (url, served.headers["content-type"])
                assert len(served.content) > 1000, url


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_gateways_and_services_docs_load_only_local_assets(whole_platform: Stack) -> None:
    await check_pages(whole_platform.client)
    assert set(whole_platform.upstreams) == {"registry", "matching", "reporting", "events"}
    for name, app in whole_platform.upstreams.items():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}") as client:
            await check_pages(client)
