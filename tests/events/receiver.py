"""A real webhook receiver for tests: an ASGI app under uvicorn on a free port.

It records every request (headers and raw body), verifies the signatures with the
``standardwebhooks`` package from PyPI (someone else's implementation of the
spec) against the secrets it is given, and answers what the test scripts: a queue
of statuses (``[500, 200]``), then ``default_status``. ``stop`` and ``start`` take it
down and bring it back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.support import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def verifies_with(self, secret: str) -> bool:
        """Whether ``standardwebhooks`` accepts the request under ``secret``."""
        try:
            Webhook(secret).verify(self.body, self.headers)
        except WebhookVerificationError:
            return False
        return True


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    statuses: list[int] = field(default_factory=list)  # answered first, in order
    default_status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer
    received: list[Received] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                pass
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.received.append(Received(headers, body))
        status = self.statuses.pop(0) if self.statuses else self.default_status
        answer = [(k.encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": answer})
        await send({"type": "http.response.body", "body": f"answered {status}".encode()})

    async def start(self) -> None:
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = self._task = None

    async def wait_for(self, count: int, seconds: float = 10.0) -> list[Received]:
        """Poll until ``count`` requests arrived; the requests."""
        deadline = asyncio.get_running_loop().time() + seconds
        while len(self.received) < count:
            assert asyncio.get_running_loop().time() < deadline, f"{len(self.received)} of {count} requests arrived"
            await asyncio.sleep(0.02)
        return self.received
