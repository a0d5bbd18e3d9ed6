"""No route's dependency runs in a worker thread.

FastAPI runs a dependency written as a plain ``def`` in its thread pool: a hop to a
worker thread and back on every request that uses it, for functions that only read
``request.state`` or check a signature. On a busy machine each hop waits for a
scheduler slot, so the platform's dependencies are ``async def`` (they never block).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from tests.support import api_routes


def _runs_on_the_loop(call: Any) -> bool:
    return (
        inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(call)
        or inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004 (a callable instance)
    )


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _threaded_dependencies(app: FastAPI) -> set[str]:
    """``path: dependency`` for every dependency of ``app``'s routes that FastAPI would run in a thread."""
    found = set()
    for _, route in api_routes(app):
        for sub in _dependencies(route.dependant):
            if sub.call is not None and not _runs_on_the_loop(sub.call):
                found.add(f"{route.path}: {sub.call.__module__}.{sub.call.__qualname__}")
    return found


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_dependency_of_every_service_runs_on_the_event_loop(service_apps: dict[str, FastAPI]) -> None:
    apps = service_apps
    routes = {name: sum(1 for _ in iter_route_contexts(app.router.routes)) for name, app in apps.items()}
    assert all(count > 5 for count in routes.values()), routes  # the walk sees every service's routes
    threaded = set().union(*(_threaded_dependencies(app) for app in apps.values()))
    assert not threaded, sorted(threaded)
