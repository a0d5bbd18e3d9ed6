"""The command line every service shares: ``python -m services.<name> COMMAND``.

``migrate`` upgrades the service's database to the newest migration, ``serve`` runs
it under uvicorn (migrating first unless told not to), ``revision -m MSG``
autogenerates a migration from the table models. Logging is configured before
anything runs, so migrations, uvicorn's own lines and a failure that ends the
command are JSON lines like the service's (with ``LOG_JSON``, the default).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from alembic import command
from pydantic import ValidationError

from services.common.logging import configure_logging
from services.common.migrations import alembic_config, upgrade
from services.common.principal import Principal, Role, sign_principal
from services.common.settings import ServiceSettings

ExtraCommand = Callable[[ServiceSettings, argparse.Namespace], Coroutine[Any, Any, None]]


def run_cli(
    *,
    name: str,
    settings_factory: Callable[[], ServiceSettings],
    app_path: str,
    migrations: Path,
    extra: dict[str, tuple[str, ExtraCommand]] | None = None,
    extra_arguments: dict[str, Callable[[argparse.ArgumentParser], None]] | None = None,
    workers: dict[str, tuple[str, str]] | None = None,
) -> None:
    """``extra`` adds commands (name: help and handler); ``extra_arguments`` adds the
    options of those that take any (name: a function adding them to its parser).
    ``workers`` adds commands that serve another app of the service under uvicorn, as
    ``serve`` does but never migrating (name: help and the app factory's import path):
    background work in processes of its own, with health and metrics."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service under uvicorn")
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate first")
    serve.add_argument("--workers", type=int, default=1)
    for command_name, (help_text, _) in (workers or {}).items():
        commands.add_parser(command_name, help=help_text)
    commands.add_parser("migrate", help="upgrade the database to the newest migration")
    revision = commands.add_parser("revision", help="autogenerate a migration")
    revision.add_argument("-m", "--message", required=True)
    mint = commands.add_parser(
        "principal", help="print a signed principal header for calling the service directly (development)"
    )
    mint.add_argument("--role", choices=[r.value for r in Role], default=Role.admin.value)
    mint.add_argument("--agency-id")
    mint.add_argument("--firm-id")
    mint.add_argument("--subject", default="cli")
    for command_name, (help_text, _) in (extra or {}).items():
        extra_parser = commands.add_parser(command_name, help=help_text)
        add_arguments = (extra_arguments or {}).get(command_name)
        if add_arguments is not None:
            add_arguments(extra_parser)
    args = parser.parse_args()
    try:
        settings = settings_factory()
    except ValidationError as exc:
        configure_logging()
        structlog.get_logger(__name__).error(
            "invalid_settings", errors=exc.errors(include_url=False, include_input=False, include_context=False)
        )
        sys.exit(2)
    configure_logging(settings.log_level, settings.log_json)
    logging.captureWarnings(True)
    structlog.contextvars.bind_contextvars(service=settings.service_name)
    try:
        _run_command(args, settings, migrations, app_path, extra, workers or {})
    except Exception:
        structlog.get_logger(__name__).exception("command_failed", command=args.command)
        sys.exit(1)


def _run_command(
    args: argparse.Namespace,
    settings: ServiceSettings,
    migrations: Path,
    app_path: str,
    extra: dict[str, tuple[str, ExtraCommand]] | None,
    workers: dict[str, tuple[str, str]],
) -> None:
    url = settings.effective_database_url
    if args.command == "migrate":
        asyncio.run(upgrade(migrations, url))
    elif args.command == "revision":
        config = alembic_config(migrations, url)
        asyncio.run(upgrade(migrations, url))
        command.revision(config, message=args.message, autogenerate=True)
    elif args.command == "principal":
        principal = Principal(
            subject=args.subject, role=Role(args.role), agency_id=args.agency_id, firm_id=args.firm_id
        )
        print(
            sign_principal(
                principal, settings.principal_secret.get_secret_value(), ttl_seconds=settings.principal_max_age_seconds
            )
        )
    elif args.command == "serve":
        if not args.no_migrate:
            asyncio.run(upgrade(migrations, url))
        _serve(app_path, settings, args.workers)
    elif args.command in workers:
        _serve(workers[args.command][1], settings, 1)
    else:
        _, handler = (extra or {})[args.command]
        asyncio.run(handler(settings, args))


def _serve(app_path: str, settings: ServiceSettings, processes: int) -> None:
    uvicorn.run(
        app_path,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=processes,
        # uvloop's event loop and httptools' parser (uvicorn[standard]), named so that a
        # build without them fails at start instead of silently serving slower: through
        # the gateway (docs/benchmarks.md). uvicorn would pick them anyway when installed.
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
    )
