"""Hooks: how one domain lets others act on its events without importing them.

A domain declares a hook, typed by the arguments its handlers take, and calls it
where the event happens; it knows nothing of who listens. Another domain offers a
handler, and the service's app factory connects it at start-up, so the wiring is
in one place a reader can find (the registry's ``create_app``)::

    firms_written: Hook[[AsyncSession, str, Sequence[Written]]] = Hook("firms_written")
    ...
    await firms_written.call(session, "created", written)   # in the firms' write path
    ...
    firms_written.connect(search.on_firms_written)  # in the app factory

Handlers run in the order they were connected, awaited one after the other, in
the caller's context (a handler given the caller's session writes in its
transaction); an exception propagates to the caller. Connecting a handler again
does nothing, so building several apps in one process wires each handler once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")


class Hook(Generic[P]):
    """An event a domain announces; other domains' handlers are connected to it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.handlers: list[Callable[P, Awaitable[None]]] = []

    def connect(self, handler: Callable[P, Awaitable[None]]) -> None:
        """Run ``handler`` on every call (once, however often it is connected)."""
        if handler not in self.handlers:
            self.handlers.append(handler)

    async def call(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for handler in self.handlers:
            await handler(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Hook({self.name!r}, handlers={[getattr(h, '__qualname__', h) for h in self.handlers]})"
