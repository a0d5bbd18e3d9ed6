"""Helpers the tests share: databases per backend, principals, in-process apps."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.engine import make_url

from gateway.settings import GatewaySettings
from services.common.migrations import upgrade
from services.common.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from services.common.settings import async_database_url
from services.events.settings import EventsSettings
from services.matching.settings import MatchingSettings
from services.registry.settings import RegistrySettings
from services.reporting.settings import ReportingSettings

# A loaded machine can take seconds to start an app (asgi-lifespan's default is 5 s).
LIFESPAN_TIMEOUTS = {"startup_timeout": 60, "shutdown_timeout": 60}
TEST_SECRET = "test-principal-secret-0123456789abcdef"
BOOTSTRAP_KEY = "lk_bootstrap_test_key_0123456789abcdefghijklmnop"  # the gateway's admin key in tests
PROBLEM = "application/problem+json"
POSTGRES_ENV = "TEST_POSTGRES_URL"  # e.g. postgresql://postgres@127.0.0.1:5432/postgres


def principal_headers(
    role: Role = Role.admin,
    *,
    agency_id: str | None = None,
    firm_id: str | None = None,
    subject: str | None = None,
    secret: str = TEST_SECRET,
) -> dict[str, str]:
    principal = Principal(
        subject=subject or f"test-{role}-{agency_id or firm_id or 'x'}", role=role, agency_id=agency_id, firm_id=firm_id
    )
    return {PRINCIPAL_HEADER: sign_principal(principal, secret)}


class FreshPrincipal(Mapping[str, str]):
    """Headers for a fixed principal, signed anew whenever they are read, so a shared
    constant never expires however long the test session runs."""

    def __init__(self, role: Role, subject: str, *, agency_id: str | None = None, firm_id: str | None = None) -> None:
        self.role, self.subject, self.agency_id, self.firm_id = role, subject, agency_id, firm_id

    def _headers(self) -> dict[str, str]:
        return principal_headers(self.role, subject=self.subject, agency_id=self.agency_id, firm_id=self.firm_id)

    def __getitem__(self, key: str) -> str:
        return self._headers()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers())

    def __len__(self) -> int:
        return 1

    def __or__(self, other: Mapping[str, str]) -> dict[str, str]:
        return self._headers() | dict(other)

    def __ror__(self, other: Mapping[str, str]) -> dict[str, str]:
        return dict(other) | self._headers()


ADMIN = FreshPrincipal(Role.admin, "test-admin")
SERVICE = FreshPrincipal(Role.service, "test-service")


def agency_headers(agency_id: str) -> dict[str, str]:
    return principal_headers(Role.agency, agency_id=agency_id, subject=f"key-{agency_id}")


# --- settings of each service in tests (the conftest's fixtures, and module-scoped platforms)

IN_TESTS: dict[str, Any] = {
    "environment": "test",
    "principal_secret": TEST_SECRET,
    "log_json": False,
    "log_level": "WARNING",
}


def registry_settings_for(database_url: str, data_dir: Path) -> RegistrySettings:
    return RegistrySettings(
        database_url=database_url,
        data_dir=data_dir,
        **IN_TESTS,
        matching_url="",  # Stack.start points it at matching when matching runs
    )


def gateway_settings_for(database_url: str, data_dir: Path) -> GatewaySettings:
    return GatewaySettings(
        database_url=database_url,
        data_dir=data_dir,
        **IN_TESTS,
        bootstrap_api_key=BOOTSTRAP_KEY,
        registry_url="http://registry",
        matching_url="http://matching",
        reporting_url="http://reporting",
        events_url="http://events",
        # A loaded CI machine renders a chart in more than the default 10 s; tests of the
        # deadline itself set their own.
        upstream_deadline_seconds=30,
        upstream_read_timeout=30,
        upstream_retries=1,
        breaker_failure_threshold=3,
        breaker_reset_seconds=0.5,
    )


def matching_settings_for(database_url: str, data_dir: Path) -> MatchingSettings:
    return MatchingSettings(
        database_url=database_url,
        data_dir=data_dir,
        **IN_TESTS,
        registry_url="http://registry",
        feed_wait_seconds=1.0,
        deadline_sweep_seconds=3600,  # tests sweep when they mean to (app.state.deadlines.sweep())
    )


def reporting_settings_for(database_url: str, data_dir: Path) -> ReportingSettings:
    return ReportingSettings(
        database_url=database_url,
        data_dir=data_dir,
        **IN_TESTS,
        registry_url="http://registry",
        matching_url="http://matching",
        feed_wait_seconds=0.5,
    )


def events_settings_for(database_url: str, data_dir: Path) -> EventsSettings:
    return EventsSettings(
        database_url=database_url,
        data_dir=data_dir,
        **IN_TESTS,
        registry_url="http://registry",
        matching_url="http://matching",
        feed_wait_seconds=0.5,
        webhook_allowed_hosts=["127.0.0.1/32"],  # the tests' webhook receivers
    )


class AdminConnection:
    """One PostgreSQL admin connection for a whole test process, on a thread of its own.

    Creating a database from a template takes about 20 ms on a warm connection and
    about 80 ms when each statement opens one; tests run on per-test event loops, so the
    connection lives on its own loop and statements are handed to it.
    """

    def __init__(self, admin_url: str) -> None:
        self.dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="postgres-admin", daemon=True)
        self._thread.start()
        self._connection: asyncpg.Connection | None = None
        self._lock: asyncio.Lock | None = None

    def _run(self) -> None:
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def execute(self, statement: str) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._execute(statement), self._loop))

    async def _execute(self, statement: str) -> None:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._connection is None or self._connection.is_closed():
                self._connection = await asyncpg.connect(self.dsn)
            await self._connection.execute(statement)

    def close(self) -> None:
        if self._connection is not None:
            asyncio.run_coroutine_threadsafe(self._connection.close(), self._loop).result(timeout=10)
            self._connection = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


class Backend:
    """Migrated databases of one kind (SQLite or PostgreSQL), one fresh one per test.

    PostgreSQL databases are named after the test process (``lk_test_<pid>_…``) and
    dropped when it ends by a detached process (``drop_databases``): each DROP DATABASE
    forces a checkpoint, so dropping a run's few hundred databases takes tens of
    seconds that nobody needs to wait for. That process also drops what earlier test
    processes, now gone, left behind.
    """

    def __init__(self, name: str, workdir: Path, admin_url: str | None = None) -> None:
        self.name = name
        self.workdir = workdir
        self.admin_url = admin_url
        self._admin = AdminConnection(admin_url) if admin_url else None
        self._templates: dict[Path, str] = {}
        self._created: list[str] = []
        # Templates are named per backend, so that backends of one process (the tests'
        # own and a platform's started by a test) or of parallel runs never share one.
        self._template_prefix = f"{DATABASE_PREFIX}tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def fresh(self, migrations: Path) -> str:
        """The URL of a newly created, fully migrated database."""
        if self.name == "sqlite":
            template = self.workdir / f"template-{migrations.parent.name}.db"
            if migrations not in self._templates:
                await upgrade(migrations, f"sqlite+aiosqlite:///{template}")
                self._templates[migrations] = str(template)
            target = self.workdir / f"{uuid.uuid4().hex}.db"
            shutil.copyfile(template, target)
            return f"sqlite+aiosqlite:///{target}"
        template_name = f"{self._template_prefix}_{migrations.parent.name}"
        if migrations not in self._templates:
            await self._execute(f'CREATE DATABASE "{template_name}"')
            self._created.append(template_name)
            await upgrade(migrations, self._url(template_name))
            self._templates[migrations] = template_name
        name = self._new_name()
        await self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
        self._created.append(name)
        return self._url(name)

    async def empty(self) -> str:
        """The URL of a newly created database without tables (to test a migration)."""
        if self.name == "sqlite":
            return f"sqlite+aiosqlite:///{self.workdir / uuid.uuid4().hex}.db"
        name = self._new_name()
        await self._execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return self._url(name)

    @staticmethod
    def _new_name() -> str:
        return f"{DATABASE_PREFIX}test_{os.getpid()}_{uuid.uuid4().hex[:12]}"

    def _url(self, database: str) -> str:
        assert self.admin_url is not None
        return async_database_url(make_url(self.admin_url).set(database=database).render_as_string(hide_password=False))

    async def _execute(self, statement: str) -> None:
        assert self._admin is not None
        await self._admin.execute(statement)

    def drop_all(self) -> None:
        """Leave every database this backend created to a detached process that drops them."""
        if self.name != "postgres" or self._admin is None:
            return
        self._admin.close()
        # Through a shell that puts it in the background and exits: the dropper is nobody's child.
        subprocess.run(
            [
                "/bin/sh",
                "-c",
                'exec "$@" &',
                "sh",
                sys.executable,
                "-m",
                "tests.support",
                self._admin.dsn,
                *self._created,
            ],
            cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # and no part of the test run's process group
            check=True,
        )


DATABASE_PREFIX = "lk_"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def drop_databases(dsn: str, names: list[str], connections: int = 4) -> None:
    """Drop ``names``, and the test databases of test processes no longer running,
    over a few connections at once (concurrent drops share their checkpoints)."""
    admin = await asyncpg.connect(dsn)
    try:
        existing = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"{DATABASE_PREFIX}%")
    finally:
        await admin.close()
    for (datname,) in existing:
        parts = datname.split("_")  # lk_test_<pid>_<hex>, lk_tpl_<pid>_<hex>_<service>
        if len(parts) > 2 and parts[2].isdigit() and not _process_alive(int(parts[2])):
            names.append(datname)
    names = list(dict.fromkeys(names))

    async def drop(share: list[str]) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            for name in share:
                with contextlib.suppress(asyncpg.PostgresError):
                    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    await asyncio.gather(*(drop(names[i::connections]) for i in range(connections)))


@asynccontextmanager
async def running(app: FastAPI, base_url: str = "http://test") -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and give a client that talks to it in process."""
    async with LifespanManager(app, **LIFESPAN_TIMEOUTS) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[int]:
    """Serve the ASGI ``app`` (its lifespan already running, if it has one) with uvicorn on a
    free local port, as ``python -m gateway serve`` does (same HTTP parser), in this event loop."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await task


class LateTransport(httpx.AsyncBaseTransport):
    """An in-process transport to an app that starts later: requests wait for it."""

    def __init__(self) -> None:
        self._started = asyncio.Event()
        self._transport: httpx.ASGITransport | None = None

    def start(self, app: Any) -> None:
        self._transport = httpx.ASGITransport(app=app)
        self._started.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._started.wait()
        assert self._transport is not None
        return await self._transport.handle_async_request(request)


class Stack:
    """The gateway with in-process upstreams; ``client`` talks to the gateway."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        gateway: FastAPI,
        upstreams: dict[str, FastAPI],
        apps: dict[str, FastAPI] | None = None,
    ) -> None:
        self.client = client
        self.gateway = gateway
        self.upstreams = upstreams  # each running upstream as an ASGI app
        self.apps = apps or {}  # the FastAPI objects behind them, for their state (e.g. matching's clock)

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        registry_settings: object,
        gateway_settings: object,
        *,
        matching_settings: object | None = None,
        reporting_settings: object | None = None,
        events_settings: object | None = None,
        extra_upstreams: dict[str, FastAPI] | None = None,
        **gateway_options: object,
    ) -> AsyncIterator[Stack]:
        """Registry and gateway (and matching, reporting and events, given their settings) wired in one process."""
        from gateway.app import create_app as create_gateway
        from services.matching.app import create_app as create_matching
        from services.registry.app import create_app as create_registry

        async with AsyncExitStack() as stack:
            # The registry follows matching's feed (observed performance); matching starts after it.
            to_matching = LateTransport()
            if matching_settings is not None:
                registry_settings = registry_settings.model_copy(update={"matching_url": "http://matching"})  # type: ignore[attr-defined]
            registry_app = create_registry(registry_settings, http_mounts={"http://matching": to_matching})  # type: ignore[arg-type]
            registry = await stack.enter_async_context(LifespanManager(registry_app, **LIFESPAN_TIMEOUTS))
            mounts: dict[str, httpx.AsyncBaseTransport] = {"http://registry": httpx.ASGITransport(app=registry.app)}
            upstreams = {"registry": registry.app}
            apps: dict[str, FastAPI] = {"registry": registry_app}
            if matching_settings is not None:
                matching_app = create_matching(matching_settings, http_mounts=dict(mounts))  # type: ignore[arg-type]
                apps["matching"] = matching_app
                matching = await stack.enter_async_context(LifespanManager(matching_app, **LIFESPAN_TIMEOUTS))
                mounts["http://matching"] = httpx.ASGITransport(app=matching.app)
                to_matching.start(matching.app)
                # Stopped before matching: no poll of the registry's may outlive matching's database.
                stack.push_async_callback(registry_app.state.matching_follower.stop)
                upstreams["matching"] = matching.app
            if reporting_settings is not None:  # follows the registry's and (when running) matching's feeds
                from services.reporting.app import create_app as create_reporting

                reporting = await stack.enter_async_context(
                    LifespanManager(
                        create_reporting(reporting_settings, http_mounts=dict(mounts)),  # type: ignore[arg-type]
                        **LIFESPAN_TIMEOUTS,
                    )
                )
                mounts["http://reporting"] = httpx.ASGITransport(app=reporting.app)
                upstreams["reporting"] = reporting.app
            if events_settings is not None:  # follows the registry's and (when running) matching's feeds
                from services.events.app import create_app as create_events

                events_app = create_events(events_settings, http_mounts=dict(mounts))  # type: ignore[arg-type]
                apps["events"] = events_app
                events = await stack.enter_async_context(LifespanManager(events_app, **LIFESPAN_TIMEOUTS))
                mounts["http://events"] = httpx.ASGITransport(app=events.app)
                upstreams["events"] = events.app
            for name, upstream in (extra_upstreams or {}).items():
                mounts[f"http://{name}"] = httpx.ASGITransport(app=upstream, raise_app_exceptions=False)
            gateway_app = create_gateway(gateway_settings, http_mounts=mounts, **gateway_options)  # type: ignore[arg-type]
            gateway = await stack.enter_async_context(LifespanManager(gateway_app, **LIFESPAN_TIMEOUTS))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway")
            )
            yield cls(client, gateway_app, upstreams, apps)  # type: ignore[arg-type]

    async def issue_key(self, admin_key: str, **body: object) -> str:
        response = await self.client.post(
            "/v1/api-keys", json={"name": "test key", **body}, headers={"Authorization": f"Bearer {admin_key}"}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["key"])


async def feed_items(client: httpx.AsyncClient, *, after: int = 0, vocabulary: bool = False) -> list[dict[str, Any]]:
    """Every change after ``after``, all pages; without the seeded certification vocabulary
    (which every registry feed starts with) unless ``vocabulary``."""
    items: list[dict[str, Any]] = []
    while True:
        page = (await client.get("/v1/changes", params={"after": after, "limit": 1000}, headers=SERVICE)).json()
        items += page["items"]
        after = page["next_after"]
        if not page["has_more"]:
            break
    return [i for i in items if vocabulary or i["entity"] != "certification_scheme"]


def route_paths(routes: Sequence[object], prefix: str = "") -> list[str]:
    """The path templates of ``routes``, those of included routers too."""
    paths = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router, resolved lazily
        if included is not None:
            paths += route_paths(included.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        elif hasattr(route, "path"):
            paths.append(prefix + route.path)
    return paths


# Ports for services under test come from below Linux's ephemeral range (32768-60999): a
# port the kernel hands out for bind(0) is also one it may give the next outgoing
# connection of any test, which then holds it when the service binds it (uvicorn exits 3).
_SERVICE_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a service process under test),
    never the same twice in one process."""
    for _ in range(1000):
        port = random.choice(_SERVICE_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port for a service under test")


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None, *, field: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem of ``status`` (of type ``slug``, naming ``field``
    among its errors, when given) whose request_id is the X-Request-ID header; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = dict(response.json())
    assert problem["status"] == status
    assert problem["title"]
    if slug is not None:
        assert problem["type"].endswith(f"/{slug}"), problem["type"]
    if field is not None:
        assert field in [e["field"] for e in problem.get("errors") or []], problem
    assert response.headers.get("x-request-id"), "every response carries X-Request-ID"
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem


if __name__ == "__main__":  # Backend.drop_all: python -m tests.support ADMIN_DSN DATABASE...
    asyncio.run(drop_databases(sys.argv[1], sys.argv[2:]))


def csv_records(response: httpx.Response) -> list[dict[str, str]]:
    """The rows of a CSV download, which starts with a UTF-8 byte order mark (for Excel)."""
    assert response.content.startswith(codecs.BOM_UTF8), response.content[:40]
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(path, route) of every API route of ``app``, its included routers' too."""
    for context in iter_route_contexts(app.router.routes):
        if isinstance(context.original_route, APIRoute):
            yield context.path_format or context.original_route.path, context.original_route
