"""The whole platform as real processes on fresh PostgreSQL databases.

``make fuzz`` (``scripts/fuzz.sh``) and the fuzz test run schemathesis against it:
the registry, matching, reporting, events and the gateway each under uvicorn, each with a
database of its own created (and migrated) for the run and dropped after it, and
API keys of three kinds for the callers. ``python -m tests.platform_processes ENV_FILE`` starts
it, writes ``FUZZ_URL``, ``FUZZ_ADMIN_KEY``, ``FUZZ_VIEWER_KEY`` and
``FUZZ_AGENCY_KEY`` to ``ENV_FILE`` once it is ready, and runs until it is
terminated.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import POSTGRES_ENV, Backend, free_port

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVICES = ("services.registry", "services.matching", "services.reporting", "services.events", "gateway")


@dataclass(frozen=True)
class Platform:
    """A running platform: the gateway's URL and a key per kind of caller."""

    url: str
    admin_key: str
    viewer_key: str
    agency_key: str


def _migrations(module: str) -> Path:
    return Path(__file__).parent.parent / module.replace(".", "/") / "migrations"


def wait_ready(url: str, processes: dict[str, subprocess.Popen[bytes]] | None = None, seconds: float = 120) -> None:
    """Wait until ``url`` answers 200; fail at once if one of ``processes`` has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for module, process in (processes or {}).items():
            if process.poll() is not None:
                raise RuntimeError(f"{module} exited with {process.returncode} before {url} was ready")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {seconds} s")


def _issue_key(client: httpx.Client, **body: object) -> str:
    response = client.post("/v1/api-keys", json={"name": f"fuzz {body['role']}", **body})
    response.raise_for_status()
    return str(response.json()["key"])


@contextmanager
def running_platform(workdir: Path, admin_url: str | None = None, **env: str) -> Iterator[Platform]:
    """Start the platform on fresh PostgreSQL databases; stop it and drop them after.

    ``env`` adds or overrides environment variables of every service.
    """
    backend = Backend("postgres", workdir, admin_url=admin_url or os.environ.get(POSTGRES_ENV) or DEFAULT_ADMIN_URL)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        urls = {module: asyncio.run(backend.fresh(_migrations(module))) for module in SERVICES}
        ports = {module: free_port() for module in SERVICES}
        base = {module: f"http://127.0.0.1:{port}" for module, port in ports.items()}
        admin_key = "lk_fuzz_" + secrets.token_urlsafe(32)
        environment = os.environ | {
            "DATA_DIR": str(workdir),
            "PRINCIPAL_SECRET": secrets.token_urlsafe(32),
            "LOG_JSON": "true",
            "LOG_LEVEL": "WARNING",
            "GATEWAY_BOOTSTRAP_API_KEY": admin_key,
            "GATEWAY_REGISTRY_URL": base["services.registry"],
            "GATEWAY_MATCHING_URL": base["services.matching"],
            "GATEWAY_REPORTING_URL": base["services.reporting"],
            "GATEWAY_EVENTS_URL": base["services.events"],
            "MATCHING_REGISTRY_URL": base["services.registry"],
            "REGISTRY_MATCHING_URL": base["services.matching"],
            "REPORTING_REGISTRY_URL": base["services.registry"],
            "REPORTING_MATCHING_URL": base["services.matching"],
            "EVENTS_REGISTRY_URL": base["services.registry"],
            "EVENTS_MATCHING_URL": base["services.matching"],
            # Fuzzing is not a test of the rate limits: they would only turn examples into 429s.
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "6000000",
            "GATEWAY_RATE_LIMIT_BURST": "1000000",
            # ...nor of the budget of failed key checks: schemathesis probes every operation
            # without a key and with a wrong one, from one address, and expects 401 or 403.
            "GATEWAY_AUTH_FAILURES_PER_MINUTE": "6000000",
            "GATEWAY_AUTH_FAILURES_BURST": "1000000",
        }
        for module in SERVICES:
            prefix = "GATEWAY" if module == "gateway" else module.rsplit(".", 1)[-1].upper()
            environment |= {f"{prefix}_PORT": str(ports[module]), f"{prefix}_DATABASE_URL": urls[module]}
        environment |= env
        for module in SERVICES:
            with open(workdir / f"{module}.log", "ab") as log:  # the child keeps its own descriptor
                processes[module] = subprocess.Popen(
                    [sys.executable, "-m", module, "serve", "--no-migrate"], env=environment, stdout=log, stderr=log
                )
        for module in SERVICES:
            wait_ready(base[module] + "/readyz", processes)
        with httpx.Client(
            base_url=base["gateway"], headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
        ) as client:
            agency = client.post("/v1/agencies", json={"name": "Fuzz agency", "country": "EC"})
            agency.raise_for_status()
            viewer_key = _issue_key(client, role="viewer")
            agency_key = _issue_key(client, role="agency", agency_id=agency.json()["id"])
        yield Platform(base["gateway"], admin_key, viewer_key, agency_key)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
        backend.drop_all()


def main(env_file: str) -> None:
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workdir = Path(os.environ.get("FUZZ_WORKDIR") or tempfile.mkdtemp(prefix="linkages-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    with running_platform(workdir) as platform:
        Path(env_file).write_text(
            f"FUZZ_URL={platform.url}\nFUZZ_ADMIN_KEY={platform.admin_key}\n"
            f"FUZZ_VIEWER_KEY={platform.viewer_key}\nFUZZ_AGENCY_KEY={platform.agency_key}\n"
            f"FUZZ_LOGS={workdir}\n"
        )
        while not stop:
            time.sleep(0.2)


if __name__ == "__main__":
    main(sys.argv[1])
