"""``/docs`` and ``/redoc`` render the API in a real Chromium that can reach only 127.0.0.1.

The browser resolves every other host name to nothing (``tests/reporting/browser.py``),
so a page that needed a CDN would stay blank. Each page must list the document's
operations, and every resource it loaded must have come from the gateway.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.common.openapi import HTTP_METHODS
from tests.reporting.browser import chromium, chromium_or_skip, serve
from tests.support import Stack

pytestmark = pytest.mark.browser

# Waits (up to 30 s) until the page shows the operations, then a second more for what the shown
# page fetches after rendering (ReDoc's menu asks for its maker's logo once it is mounted), and
# says what it shows and loaded.
RENDERED = """new Promise((resolve) => {
  const started = Date.now();
  const look = () => {
    const operations = Array.from(document.querySelectorAll(%(selector)s));
    if (operations.length > 0 || Date.now() - started > 30000) {
      setTimeout(() => resolve({
        operations: operations.length,
        text: document.body.innerText,
        loaded: performance.getEntriesByType('resource').map((entry) => entry.name),
      }), 1000);
    } else {
      setTimeout(look, 100);
    }
  };
  look();
})"""
PAGES = {
    "/docs": "'.opblock'",  # Swagger UI: one block per operation
    "/redoc": "'[data-item-id*=\"/operation/\"]'",  # ReDoc: one menu entry per operation
}


@pytest.fixture(scope="module")
def browser_path() -> str:
    return chromium_or_skip()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_docs_pages_render_every_operation_offline(whole_platform: Stack, browser_path: str) -> None:
    document = (await whole_platform.client.get("/openapi.json")).json()
    operations = sum(1 for item in document["paths"].values() for method in item if method in HTTP_METHODS)
    async with serve(whole_platform.gateway) as base, chromium(browser_path) as browser:
        for url, selector in PAGES.items():
            page = await browser.new_page({})
            await page.goto(f"{base}{url}")
            shown: dict[str, Any] = await page.evaluate(RENDERED % {"selector": selector})
            assert shown["operations"] == operations, (url, shown["operations"], shown["text"][:500])
            assert "/v1/shortlists" in shown["text"], url
            assert shown["loaded"], url
            assert all(name.startswith(f"{base}/") for name in shown["loaded"]), (url, shown["loaded"])
