"""A headless Chromium driven over the Chrome DevTools Protocol, for testing pages as a person sees them.

Debian's ``chromium`` package is the browser (``ensure_chromium`` installs it when it
is missing and the tests run as root, as in CI); ``websockets`` speaks the protocol.
The browser may only reach the loopback address: every other host name resolves to
nothing, and its background services (updates, sync, safe browsing) are off.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-pings",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--safebrowsing-disable-auto-update",
    "--password-store=basic",
    "--use-mock-keychain",
    "--hide-scrollbars",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1280,900",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def ensure_chromium() -> str | None:
    """The browser's path, installing Debian's package first when missing (as root); None when impossible.

    Test workers install it one at a time (a lock file): two concurrent apt-get runs
    fail on apt's own lock, and the second would find nothing to do anyway.
    """
    if shutil.which(CHROMIUM):
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    with open(Path(tempfile.gettempdir()) / "linkages-chromium-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shutil.which(CHROMIUM):  # another worker installed it while this one waited
            return CHROMIUM
        for attempt in range(3):  # a mirror can fail for a moment
            if subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(2 * (attempt + 1))
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium", "fonts-dejavu-core"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    return CHROMIUM if shutil.which(CHROMIUM) else None


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """``app`` (whose lifespan already runs) served by uvicorn on 127.0.0.1; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


class Page:
    """One browser tab: navigate, read the DOM, click, screenshot."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, params, session=self.session)

    async def loaded(self, action: Any) -> None:
        """Run ``action`` (a coroutine) and wait for the page it leads to to finish loading (images too)."""
        waiter = self.browser.expect("Page.loadEventFired", self.session)
        await action
        await asyncio.wait_for(waiter, 30)

    async def goto(self, url: str) -> None:
        await self.loaded(self.send("Page.navigate", url=url))

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
            "return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    async def screenshot(self, path: Path, selector: str | None = None) -> None:
        """The whole page, or only the element ``selector`` names."""
        if selector is None:
            size = (await self.send("Page.getLayoutMetrics"))["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"]}
        else:
            clip = await self.evaluate(
                f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect(); "
                "return {x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height}; })()"
            )
        shot = await self.send(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip | {"scale": 1}
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


class Browser:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.waiters: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.connection:
            message = json.loads(raw)
            if "id" in message and message["id"] in self.pending:
                future = self.pending.pop(message["id"])
                if "error" in message:
                    future.set_exception(AssertionError(f"CDP error: {message['error']}"))
                else:
                    future.set_result(message.get("result", {}))
            elif "method" in message:
                for waiter in list(self.waiters):
                    name, session, future = waiter
                    if name == message["method"] and session in (None, message.get("sessionId")):
                        self.waiters.remove(waiter)
                        if not future.done():
                            future.set_result(message.get("params", {}))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        message_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[message_id] = future
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        await self.connection.send(json.dumps(message))
        return await asyncio.wait_for(future, 30)

    def expect(self, event: str, session: str | None) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters.append((event, session, future))
        return future

    async def new_page(self, headers: dict[str, str]) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Network.enable")
        await page.send("Network.setExtraHTTPHeaders", headers=headers)
        await page.send("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send("Browser.close"), 5)
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader
        await self.connection.close()


@asynccontextmanager
async def chromium(executable: str) -> AsyncIterator[Browser]:
    """A headless Chromium of our own, closed (and its process ended) afterwards."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            active = Path(profile) / "DevToolsActivePort"
            for _ in range(300):
                if active.exists() and len(active.read_text().splitlines()) == 2:
                    break
                assert process.returncode is None, "chromium exited"
                await asyncio.sleep(0.1)
            port, path = active.read_text().splitlines()
            connection = await connect(f"ws://127.0.0.1:{port}{path}", max_size=None)
            browser = Browser(connection)
            try:
                yield browser
            finally:
                await browser.close()
        finally:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def chromium_or_skip() -> str:
    """Chromium's path; the test is skipped where it cannot be installed, and fails in CI."""
    path = ensure_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing and cannot be installed (needs root and apt-get)")
        pytest.skip("Chromium is missing and cannot be installed here (needs root and apt-get)")
    return path
