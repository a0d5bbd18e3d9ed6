"""The registry's API while the duplicate check works: the check in the API's process, or in its own.

Imports ``--firms`` generated firms (``bench/imports.py``'s CSV: about a fifth are
corrupted copies) into a PostgreSQL database with the duplicate check off, then, for
each layout in turn (alternating, ``--rounds`` times), copies that database and starts
the registry as real processes on the copy:

- ``in process``: ``python -m services.registry serve`` with the check on (the default,
  as ``make run`` runs it);
- ``own process``: ``serve`` with ``REGISTRY_DUPLICATES_CHECK=false``, and
  ``python -m services.registry duplicates`` beside it (as compose and Kubernetes run it).

While the check works through the firms from the feed's start, one client reads
``GET /v1/firms/{id}`` one request at a time (10 ms apart); once the check has reached
the feed's head, the same reads again. It prints the latency percentiles of both and
how long the check took.

    .venv/bin/python bench/check_isolation.py --firms 10000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from bench.imports import BENCH_ADMIN, SECRET, headers, write_csv  # noqa: E402
from services.common.principal import Principal, Role  # noqa: E402
from tests.platform_processes import wait_ready  # noqa: E402
from tests.support import free_port  # noqa: E402

SOURCE = "bench_check_isolation"
COPY = "bench_check_isolation_run"


def _database_url(pg_url: str, name: str) -> str:
    return pg_url.rsplit("/", 1)[0] + f"/{name}"


def _admin(pg_url: str, *statements: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(pg_url)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def _recreate(pg_url: str, name: str, template: str | None = None) -> None:
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    _admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', create)


def _drop(pg_url: str, name: str) -> None:
    _admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Processes:
    """Registry processes on one database and one port (the API's)."""

    def __init__(self, database_url: str, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = os.environ | {
            "DATA_DIR": str(work),
            "PRINCIPAL_SECRET": SECRET,
            "REGISTRY_DATABASE_URL": database_url,
            "REGISTRY_PORT": str(self.port),
            "REGISTRY_MATCHING_URL": f"http://127.0.0.1:{free_port()}",  # nothing there: not measured
            "LOG_LEVEL": "WARNING",
        }
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, command: str, **env: str) -> None:
        environment = self.env | env
        if command == "duplicates":
            environment["REGISTRY_PORT"] = str(free_port())
        process = subprocess.Popen(
            [sys.executable, "-m", "services.registry", command],
            env=environment,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.started.append(process)
        wait_ready(f"http://127.0.0.1:{environment['REGISTRY_PORT']}/readyz", {command: process})

    def stop(self) -> None:
        for process in self.started:
            process.terminate()
        for process in self.started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.started = []


def prepare(pg_url: str, firms: int, work: Path) -> None:
    """The source database: ``firms`` firms imported with the check off."""
    _recreate(pg_url, SOURCE)
    registry = Processes(_database_url(pg_url, SOURCE), work)
    registry.start("serve", REGISTRY_DUPLICATES_CHECK="false")
    try:
        csv_path = work / "firms.csv"
        write_csv(csv_path, firms)
        with httpx.Client(base_url=registry.url, timeout=600, headers=headers(BENCH_ADMIN)) as client:
            agency = client.post("/v1/agencies", json={"name": "Bench", "country": "IN"}).json()["id"]
            importer = headers(Principal(subject="bench-agency", role=Role.agency, agency_id=agency))
            job = client.post(
                "/v1/imports", content=csv_path.read_bytes(), headers=importer | {"Content-Type": "text/csv"}
            ).json()
            while job["status"] not in ("completed", "failed"):
                time.sleep(0.5)
                job = client.get(f"/v1/imports/{job['id']}", headers=importer).json()
            assert job["status"] == "completed", job
    finally:
        registry.stop()


def _reads(client: httpx.Client, ids: list[str], *, until: Any, at_least: int) -> list[float]:
    """Milliseconds per ``GET /v1/firms/{id}``, one at a time, until ``until()`` (checked every
    25 reads) once ``at_least`` were made."""
    latencies: list[float] = []
    while True:
        start = time.perf_counter()
        response = client.get(f"/v1/firms/{random.choice(ids)}")
        latencies.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
        if len(latencies) >= at_least and len(latencies) % 25 == 0 and until():
            return latencies
        time.sleep(0.01)


def run(pg_url: str, layout: str, work: Path) -> dict[str, float]:
    _recreate(pg_url, COPY, template=SOURCE)
    processes = Processes(_database_url(pg_url, COPY), work)
    try:
        started = time.monotonic()
        if layout == "in process":
            processes.start("serve", REGISTRY_DUPLICATES_CHECK="true")
        else:
            processes.start("serve", REGISTRY_DUPLICATES_CHECK="false")
            processes.start("duplicates")
        with httpx.Client(base_url=processes.url, timeout=60, headers=headers(BENCH_ADMIN)) as client:
            ids = [firm["id"] for firm in client.get("/v1/firms", params={"limit": 200}).json()["items"]]

            def checked() -> bool:
                return bool(client.get("/v1/duplicates/check").json()["lag"] == 0)

            during = _reads(client, ids, until=checked, at_least=50)
            took = time.monotonic() - started
            after = _reads(client, ids, until=lambda: True, at_least=300)
    finally:
        processes.stop()
        _drop(pg_url, COPY)
    return {
        "check_seconds": took,
        "during_n": len(during),
        "during_p50": statistics.median(during),
        "during_p99": statistics.quantiles(during, n=100, method="inclusive")[98],
        "during_max": max(during),
        "after_p50": statistics.median(after),
        "after_p99": statistics.quantiles(after, n=100, method="inclusive")[98],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="check-isolation-") as directory:
        work = Path(directory)
        prepare(args.pg_url, args.firms, work)
        results: list[tuple[str, dict[str, float]]] = []
        try:
            for _ in range(args.rounds):
                for layout in ("in process", "own process"):
                    results.append((layout, run(args.pg_url, layout, work)))
        finally:
            _drop(args.pg_url, SOURCE)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"\n### GET /v1/firms/{{id}} while the duplicate check works ({args.firms:,} firms, load {load})\n")
    print("| check runs | check took | reads during | p50 / p99 / max during | p50 / p99 after |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for layout, r in results:
        print(
            f"| {layout} | {r['check_seconds']:.1f} s | {r['during_n']:.0f} | "
            f"{r['during_p50']:.1f} / {r['during_p99']:.1f} / {r['during_max']:.0f} ms | "
            f"{r['after_p50']:.1f} / {r['after_p99']:.1f} ms |"
        )


if __name__ == "__main__":
    main()
