"""A registry list page, before and after, in one run: ``GET /v1/firms?limit=20``.

    TMPDIR=/dev/shm .venv/bin/python bench/list_page.py --tree main=/dev/shm/base --tree new=. \
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--requests 2000] [--rounds 2]

Each ``--tree`` (a checkout, e.g. ``git archive main | tar -x -C /dev/shm/base``) serves the
registry with ``python -m services.registry serve`` from its own folder, on SQLite (the
default) or in a fresh PostgreSQL database of its own, holding the 20 firms of
``bench/endpoint.py``'s hot reads. A keep-alive client sends the page to each registry in
turn, the order reversed every request, as the gateway would (a signed admin principal).
Per round and registry it prints the p50, p90 and p99 and the registry process's CPU per
request. The bodies must be the same size in every tree (ids and times differ).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402

from bench.endpoint import SECRET, free_port, read_firm, service, wait_ready  # noqa: E402
from bench.matching import percentiles  # noqa: E402
from services.common.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal  # noqa: E402

PAGE = {"limit": "20"}


def admin() -> dict[str, str]:
    """An admin principal, signed anew (signatures expire)."""
    return {PRINCIPAL_HEADER: sign_principal(Principal(subject="bench-list", role=Role.admin), SECRET)}


def seed(client: httpx.Client) -> None:
    agency = client.post("/v1/agencies", json={"name": "Reads agency", "country": "EC"}, headers=admin())
    agency.raise_for_status()
    for index in range(20):
        client.post("/v1/firms", json=read_firm(agency.json()["id"], index), headers=admin()).raise_for_status()


async def _admin_sql(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def run(trees: dict[str, Path], database_url: str | None, requests: int, rounds: int) -> None:
    databases: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lk-list-") as tmp, contextlib.ExitStack() as stack:
        clients: dict[str, httpx.Client] = {}
        processes: dict[str, psutil.Process] = {}
        for label, tree in trees.items():
            root = Path(tmp) / f"registry-{len(clients)}"
            root.mkdir()
            port = free_port()
            env = {
                "PYTHONPATH": str(tree),
                "PRINCIPAL_SECRET": SECRET,
                "ENVIRONMENT": "production",
                "LOG_LEVEL": "WARNING",
                "DATA_DIR": str(root),
                "REGISTRY_PORT": str(port),
            }
            if database_url:
                name = f"lk_bench_list_{uuid.uuid4().hex[:10]}"
                asyncio.run(_admin_sql(database_url, f'CREATE DATABASE "{name}"'))
                databases.append(name)
                env["REGISTRY_DATABASE_URL"] = database_url.rsplit("/", 1)[0] + f"/{name}"
            process = stack.enter_context(service("services.registry", env, root / "registry.log", cwd=tree))
            url = f"http://127.0.0.1:{port}"
            wait_ready(url + "/readyz")
            client = stack.enter_context(httpx.Client(base_url=url))
            seed(client)
            clients[label], processes[label] = client, psutil.Process(process.pid)
        sizes = {
            label: len(client.get("/v1/firms", params=PAGE, headers=admin()).content)
            for label, client in clients.items()
        }
        if len(set(sizes.values())) != 1:
            raise SystemExit(f"the pages differ in size: {sizes}")
        backend = "PostgreSQL" if database_url else "SQLite"
        print(
            f"{backend}: {requests} requests to each registry a round, in turn; each page {sizes.popitem()[1]} bytes\n"
        )
        print("| round | tree | p50 ms | p95 ms | p99 ms | registry CPU ms/request | load average |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        order = list(clients.items())
        for round_ in range(1, rounds + 1):
            for _ in range(50):  # warm
                for _, client in order:
                    client.get("/v1/firms", params=PAGE, headers=admin())
            times: dict[str, list[float]] = {label: [] for label in clients}
            cpu = {label: sum(p.cpu_times()[:2]) for label, p in processes.items()}
            for index in range(requests):
                for label, client in order if index % 2 else order[::-1]:
                    headers = admin()
                    started = time.perf_counter()
                    response = client.get("/v1/firms", params=PAGE, headers=headers)
                    times[label].append(time.perf_counter() - started)
                    if response.status_code != 200:
                        raise SystemExit(f"{label}: {response.status_code} {response.text[:300]}")
            load = os.getloadavg()[0]
            for label, samples in times.items():
                spent = (sum(processes[label].cpu_times()[:2]) - cpu[label]) / requests * 1000
                p = percentiles(samples)
                p50, p95, p99 = (float(p[k] or 0) for k in ("p50", "p95", "p99"))
                print(f"| {round_} | {label} | {p50:.2f} | {p95:.2f} | {p99:.2f} | {spent:.2f} | {load:.1f} |")
    for name in databases:
        assert database_url is not None
        asyncio.run(_admin_sql(database_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", required=True, help="LABEL=PATH of a checkout (repeat)")
    parser.add_argument("--database-url", help="a PostgreSQL admin URL: each registry gets a fresh database")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    trees = {label: Path(path).resolve() for label, path in (item.split("=", 1) for item in args.tree)}
    run(trees, args.database_url, args.requests, args.rounds)


if __name__ == "__main__":
    main()
