"""Only canonical request paths get past the gateway: the rest are refused before routing.

The gateway routes on the decoded path and the services decode what it sends on,
so a path that means one thing to the gateway and another once normalised or
decoded again (``/v1/firms/..%2F..%2Fmetrics`` is ``/metrics`` to a service) could
reach a service's internals. Such paths are refused with a 400 problem:

- dot segments (``.``, ``..``, also encoded as ``%2e``) and empty segments (``//``;
  one trailing slash is allowed);
- an encoded slash or backslash (``%2F``, ``%5C``) and any backslash, which some
  servers and proxies read as a separator;
- a ``%`` left after decoding (``%252e``: encoded twice), ``?`` and ``#``;
- control characters (``%00``–``%1F``, ``%7F``), which no URL may carry.

No public path needs any of these: identifiers are opaque letters, digits and ``_``.
"""

from __future__ import annotations

import re

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.errors import BadRequest, render

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_ENCODED_SEPARATOR = re.compile(rb"%(2f|5c)", re.IGNORECASE)


def path_refusal(path: str, raw_path: bytes | None = None) -> str | None:
    """Why ``path`` (decoded; ``raw_path`` as received) is refused, or None when it is canonical."""
    if not path.startswith("/"):
        return "it does not start with '/'"
    if _CONTROL_CHARACTERS.search(path):
        return "it contains control characters"
    if "\\" in path:
        return "it contains a backslash"
    if raw_path is not None and _ENCODED_SEPARATOR.search(raw_path):
        return "it contains an encoded '/' or '\\'"
    if any(character in path for character in "%?#"):
        return "it contains '%', '?' or '#' once decoded (encoded twice?)"
    segments = path.split("/")[1:]
    if any(segment in (".", "..") for segment in segments):
        return "it contains a '.' or '..' segment"
    if "" in segments[:-1]:
        return "it contains an empty segment ('//')"
    return None


class CanonicalPathMiddleware:
    """Answers a non-canonical path (see ``path_refusal``) with a 400 problem before routing.

    Installed inside the request-id middleware, so the problem carries the request id;
    a refused path is an answer like any other and the connection stays open.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (reason := path_refusal(scope["path"], scope.get("raw_path"))):
            request = Request(scope, receive)
            await render(request, BadRequest(f"The request path is refused: {reason}"))(scope, receive, send)
            return
        await self.app(scope, receive, send)
