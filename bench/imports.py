"""End-to-end throughput of ``POST /v1/imports``: upload, validation, insert, outbox, duplicates.

Builds the registry app in process on a fresh PostgreSQL database (or SQLite),
writes a CSV of N generated firms (``bench/firmgen.py``: about a fifth of them
corrupted copies of others, so the duplicate detector has work), uploads it as a
client would (streamed, 1 MiB chunks) and waits for the job. Rows per second are
end to end: from the first byte uploaded to the job's completion. Memory is the
process's resident set, sampled while the job runs.

    python bench/imports.py --rows 1000000 [--backend sqlite] [--rows-only] [--copy-limit]

The duplicate check follows the rows on the registry's change feed (it runs while the
rows go in, and the job completes before it): the run waits for both, and reports
when each was done. ``--check-behind`` imports the rows with the check off, then
starts the registry again with it on and times it alone, from the feed's tail to its
head: the check's rows per second per worker (one replica, one process).

``--rows-only`` stops once every row is in (the duplicate check is left unfinished),
to compare the rows phase alone; it also reports the CPU seconds the registry
process, the validating workers and PostgreSQL's backends of the benchmark's
database spent until then, which a shared machine disturbs less than wall time.
The duplicate check runs in the registry process while the rows go in, so its CPU
is the registry's too; with ``--check-behind`` as well it is off, and the figures
are the rows phase's alone. ``--copy-limit`` first times a plain ``COPY`` of the
same file into an unindexed table: the physical limit of getting the rows in.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from asgi_lifespan import LifespanManager  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from bench.firmgen import labelled  # noqa: E402
from services.common.migrations import upgrade  # noqa: E402
from services.common.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal  # noqa: E402
from services.common.settings import async_database_url  # noqa: E402
from services.registry.app import MIGRATIONS, create_app  # noqa: E402
from services.registry.settings import RegistrySettings  # noqa: E402

SECRET = "bench-principal-secret-0123456789abcdef"
HEADER = [
    "name",
    "national_ids",
    "roles",
    "size_class",
    "employees",
    "isic_codes",
    "country",
    "subdivision",
    "locality",
    "postal_code",
    "street",
    "latitude",
    "longitude",
]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        written = 0
        for firm in labelled(max(1, int(rows / 1.28)), seed=3):
            f = firm.fields
            ids = "; ".join(f"{i['scheme']}:{i['value']}" for i in f["national_ids"])
            writer.writerow(
                [
                    f["name"],
                    ids,
                    "; ".join(f["roles"]),
                    f["size_class"],
                    f["employees"],
                    "; ".join(f["isic_codes"]),
                    f["country"],
                    f["subdivision"],
                    f["locality"],
                    f["postal_code"] or "",
                    f["street"] or "",
                    "" if f["latitude"] is None else f["latitude"],
                    "" if f["longitude"] is None else f["longitude"],
                ]
            )
            written += 1
            if written == rows:
                break


def headers(principal: Principal) -> dict[str, str]:
    return {PRINCIPAL_HEADER: sign_principal(principal, SECRET, ttl_seconds=240)}


BENCH_ADMIN = Principal(subject="bench", role=Role.admin)


@asynccontextmanager
async def bench_registry(
    settings: RegistrySettings, *, agency: bool = True
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, str]]:
    """The registry in process, a client of it, and an agency of its own: (app, client, agency id)."""
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://bench", timeout=600
        ) as client,
    ):
        if not agency:
            yield app, client, ""
            return
        created = await client.post(
            "/v1/agencies", json={"name": "Bench agency", "country": "IN"}, headers=headers(BENCH_ADMIN)
        )
        assert created.status_code == 201, created.text
        yield app, client, created.json()["id"]


async def database(backend: str, workdir: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'registry.db'}"
        await upgrade(MIGRATIONS, url)
        return url, None
    admin = (
        os.environ.get("BENCH_POSTGRES_URL")
        or os.environ.get("TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"lk_bench_{uuid.uuid4().hex[:10]}"
    engine = create_async_engine(async_database_url(admin), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    url = async_database_url(admin.rsplit("/", 1)[0] + "/" + name)
    await upgrade(MIGRATIONS, url)
    return url, name


async def drop(name: str | None) -> None:
    if name is None:
        return
    admin = (
        os.environ.get("BENCH_POSTGRES_URL")
        or os.environ.get("TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    engine = create_async_engine(async_database_url(admin), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


async def plain_copy_seconds(source: Path) -> float:
    """The physical limit: seconds to COPY the file, as text, into an unindexed table of a fresh database."""
    url, name = await database("postgres", source.parent)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            columns = ", ".join(f'"{column}" text' for column in HEADER)
            await connection.execute(text(f"CREATE UNLOGGED TABLE plain_copy ({columns})"))
            raw: Any = (await connection.get_raw_connection()).driver_connection
            started = time.perf_counter()
            await raw.copy_to_table("plain_copy", source=str(source), format="csv", header=True)
            return time.perf_counter() - started
    finally:
        await engine.dispose()
        await drop(name)


def cpu_seconds() -> tuple[float, float]:
    """CPU (user + system) of this process and of its finished children, in seconds."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def backend_cpu(database: str | None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving ``database``, read from ``/proc``
    (the server runs on this machine; its shared processes, WAL writer and checkpointer, are
    left out)."""
    if database is None:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                if database.encode() not in handle.read():
                    continue
            with open(f"/proc/{entry.name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()  # from the state on: utime, stime at 11, 12
        except OSError:
            continue  # gone meanwhile
        found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


async def time_check_behind(settings: RegistrySettings) -> tuple[float, float, int, int, float]:
    """Start the registry with the duplicate check on and time it to the feed's head:
    (seconds, CPU seconds of this process, changes checked, pairs queued, their scores' sum)."""
    cpu_before = cpu_seconds()[0]
    started = time.perf_counter()
    async with bench_registry(settings.model_copy(update={"duplicates_check": True}), agency=False) as (_, client, _):
        while True:
            status = (await client.get("/v1/duplicates/check", headers=headers(BENCH_ADMIN))).json()
            if status["lag"] == 0:
                break
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds()[0] - cpu_before
        pairs, scores = 0, 0.0
        cursor = None
        while True:  # every pair queued: a run of another version must queue as many
            page = (
                await client.get(
                    "/v1/duplicates",
                    params={"limit": 200} | ({"cursor": cursor} if cursor else {}),
                    headers=headers(BENCH_ADMIN),
                )
            ).json()
            pairs += len(page["items"])
            scores += sum(item["score"] for item in page["items"])
            if not (cursor := page["next_cursor"]):
                break
    return elapsed, cpu, int(status["head"]), pairs, scores


async def run(
    rows: int,
    backend: str,
    batch: int,
    workers: int,
    rows_only: bool = False,
    copy: bool = False,
    check_behind: bool = False,
) -> None:
    with tempfile.TemporaryDirectory(prefix="lk-bench-") as tmp:
        workdir = Path(tmp)
        source = workdir / "firms.csv"
        started = time.perf_counter()
        write_csv(source, rows)
        generated = time.perf_counter() - started
        copied = await plain_copy_seconds(source) if copy else None
        url, name = await database(backend, workdir)
        settings = RegistrySettings(
            database_url=url,
            data_dir=workdir,
            environment="test",
            principal_secret=SECRET,
            log_json=False,
            log_level="WARNING",
            import_max_bytes=8 * 1024**3,
            import_batch_rows=batch,
            import_workers=workers,
            import_parallel_min_bytes=0,
            duplicates_check=not check_behind,
        )
        behind: tuple[float, float, int, int, float] | None = None
        try:
            async with bench_registry(settings) as (app, client, agency):
                importer = Principal(subject="bench-agency", role=Role.agency, agency_id=agency)
                baseline = rss_mb()
                cpu_before = cpu_seconds()
                database_before = backend_cpu(name)

                async def chunks() -> AsyncIterator[bytes]:
                    with source.open("rb") as handle:
                        while chunk := handle.read(1024 * 1024):
                            yield chunk

                started = time.perf_counter()
                response = await client.post(
                    "/v1/imports", content=chunks(), headers=headers(importer) | {"Content-Type": "text/csv"}
                )
                assert response.status_code == 202, response.text
                uploaded = time.perf_counter() - started
                job_id = response.json()["id"]
                peak = rss_mb()
                rows_done = None
                check_done = None
                rows_cpu = 0.0
                database_cpu = 0.0
                while True:
                    job = (await client.get(f"/v1/imports/{job_id}", headers=headers(importer))).json()
                    peak = max(peak, rss_mb())
                    if rows_done is None and (
                        job["progress"]["rows_read"] >= rows or job["status"] != "running" and job["status"] != "queued"
                    ):
                        rows_done = time.perf_counter() - started
                        rows_cpu = cpu_seconds()[0] - cpu_before[0]
                        database_cpu = sum(
                            seconds - database_before.get(pid, 0.0) for pid, seconds in backend_cpu(name).items()
                        )
                    finished = job["status"] in ("completed", "failed")
                    if finished and check_done is None and job["progress"]["duplicate_check"] != "pending":
                        check_done = time.perf_counter() - started
                    if (finished and (check_behind or check_done is not None)) or (rows_only and rows_done):
                        break
                    await asyncio.sleep(0.2)
                elapsed = time.perf_counter() - started
                feed = (
                    await client.get("/v1/changes", params={"after": 0, "limit": 1}, headers=headers(BENCH_ADMIN))
                ).json()
            if check_behind and not rows_only:
                behind = await time_check_behind(settings)
            engine = create_async_engine(url)
            async with engine.connect() as connection:
                firms = (await connection.execute(text("SELECT count(*) FROM firms"))).scalar_one()
                outbox = (
                    await connection.execute(text("SELECT count(*) FROM outbox WHERE entity = 'firm'"))
                ).scalar_one()
                queued = (await connection.execute(text("SELECT count(*) FROM duplicate_candidates"))).scalar_one()
            await engine.dispose()
            children_cpu = cpu_seconds()[1] - cpu_before[1]  # the workers have been joined by now
        finally:
            await drop(name)
    progress = job["progress"]
    size = source.stat().st_size if source.exists() else 0
    load = os.getloadavg()[0]
    print(
        f"\n### Bulk import, {backend} ({rows:,} rows, batches of {batch:,}, {workers} validating worker process(es); "
        f"CSV generated in {generated:.0f} s; load average {load:.1f} on {os.cpu_count()} cores)\n"
    )
    assert rows_done is not None
    check_column = "not waited for" if check_done is None else f"{check_done - rows_done:+.1f} s after the rows"
    print(
        "| backend | rows | status | accepted | rejected | skipped | upload | rows in (validate, insert, outbox) | "
        "rows/s | duplicate check done | pairs queued | total | rows/s end to end | firms | outbox rows | "
        "RSS before | peak RSS | worker peak RSS |"
    )
    print("| " + " | ".join(["---"] * 18) + " |")
    print(
        f"| {backend} | {progress['rows_read']:,} | {job['status']} | {progress['rows_accepted']:,} | "
        f"{progress['rows_rejected']:,} | {progress['rows_skipped']:,} | {uploaded:.1f} s | {rows_done:.1f} s | "
        f"{rows / rows_done:,.0f} | {check_column} | "
        f"{queued:,} | "
        f"{elapsed:.1f} s | {rows / elapsed:,.0f} | {firms:,} | {outbox:,} | {baseline:,.0f} MB | "
        f"{max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024):,.0f} MB | "
        f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:,.0f} MB |"
    )
    print(
        f"\nCPU until every row was in: registry process {rows_cpu:.1f} s ({rows_cpu / rows * 1e6:.0f} µs a row), "
        f"validating workers {children_cpu:.1f} s in all ({children_cpu / rows * 1e6:.0f} µs a row)"
        + (
            f", PostgreSQL's backends {database_cpu:.1f} s ({database_cpu / rows * 1e6:.0f} µs a row)"
            if backend == "postgres"
            else ""
        )
    )
    if copied is not None:
        print(
            f"\nPlain COPY of the same file into an unindexed, unlogged table of text columns "
            f"(the physical limit): {copied:.1f} s, {rows / copied:,.0f} rows/s"
        )
    if behind is not None:
        seconds, cpu, head, pairs, scores = behind
        accepted = progress["rows_accepted"]
        print(
            f"\nDuplicate check behind the import, alone (one replica, started after the rows): "
            f"{accepted:,} new firms ({head:,} changes) in {seconds:.1f} s, "
            f"{accepted / seconds:,.0f} rows/s per worker, "
            f"CPU {cpu:.1f} s ({cpu / accepted * 1e6:.0f} µs a row), {pairs:,} pairs queued "
            f"(scores summing to {scores:,.4f}); "
            f"load average {os.getloadavg()[0]:.1f}"
        )
    if job["status"] == "failed":
        print(f"\nThe job failed: {job['error']}")
    del size, feed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes validating rows (0: a thread)")
    parser.add_argument("--rows-only", action="store_true", help="stop once every row is in (no duplicate check)")
    parser.add_argument("--copy-limit", action="store_true", help="also time a plain COPY of the file (PostgreSQL)")
    parser.add_argument(
        "--check-behind", action="store_true", help="rows with the check off, then time the duplicate check alone"
    )
    args = parser.parse_args()
    asyncio.run(
        run(args.rows, args.backend, args.batch, args.workers, args.rows_only, args.copy_limit, args.check_behind)
    )


if __name__ == "__main__":
    main()
