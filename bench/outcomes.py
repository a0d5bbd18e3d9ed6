"""The firm outcome indicators at national scale: SQL (window functions) against the Python loop.

Builds a migrated reporting database (SQLite by default, or ``--postgres URL``) holding
``--results`` firm results of ``results / 5`` firms (five periods each, a year or quarter
mix, one firm in ten in another currency later, one in six with no exports), every firm in
one of 200 clusters and half of them in networks, then times the unfiltered outcome
indicators (``service.outcomes``: jobs created in supported clusters, sales and exports
change of network members) with the SQL of ``firm_outcome`` and with the Python computation
it replaced (``tests/reporting/outcome_reference.py``), interleaved in one process, and
checks that both give the same figures.

    python bench/outcomes.py --results 100000 [--rounds 5] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from services.common.db import create_engine, create_sessionmaker  # noqa: E402
from services.common.migrations import upgrade  # noqa: E402
from services.reporting.app import MIGRATIONS  # noqa: E402
from services.reporting.indicators import service  # noqa: E402
from services.reporting.indicators.scope import Scope  # noqa: E402
from tests.reporting.outcome_reference import reference_outcome  # noqa: E402

PERIODS = {  # period: (start, end, months)
    **{str(y): (date(y, 1, 1), date(y, 12, 31), 12) for y in range(2021, 2026)},
    **{f"2025-Q{q}": (date(2025, 3 * q - 2, 1), date(2025, 3 * q, 28), 3) for q in range(1, 5)},
}


def dataset(results: int, seed: int = 7) -> dict[Any, list[dict[str, Any]]]:
    rng = random.Random(seed)
    firms = results // 5
    day = date(2020, 1, 1)
    rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in (service.CLUSTERS, service.FIRMS, service.FIRM_CLUSTERS)}
    rows |= {service.NETWORKS: [], service.MEMBERS: [], service.FIRM_RESULTS: []}
    rows[service.CLUSTERS] = [
        {"id": f"clu_{c}", "agency_id": "agy_1", "name": f"C{c}", "country": "IN", "sector_isic": "1410"}
        | {"registered_on": day}
        for c in range(200)
    ]
    for f in range(firms):
        firm = f"frm_{f:07d}"
        rows[service.FIRMS].append(
            {"id": firm, "agency_id": "agy_1", "name": firm, "size_class": "small", "is_supplier": True}
            | {"is_lead_firm": False, "country": "IN", "registered_on": day}
        )
        rows[service.FIRM_CLUSTERS].append({"firm_id": firm, "cluster_id": f"clu_{f % 200}"})
        if f % 2 == 0:
            network = f"net_{f // 20}"
            if f % 20 == 0:
                rows[service.NETWORKS].append(
                    {"id": network, "agency_id": "agy_1", "name": network, "kind": "horizontal"}
                    | {"status": "active", "registered_on": day}
                )
            rows[service.MEMBERS].append({"network_id": network, "firm_id": firm, "role": "member"})
        periods = rng.sample(list(PERIODS), 5)
        employees, sales = rng.randint(1, 200), rng.uniform(1e4, 1e6)
        for i, period in enumerate(sorted(periods, key=lambda p: PERIODS[p][1])):
            start, end, months = PERIODS[period]
            currency = "EUR" if f % 10 == 0 and i == 4 else "USD"
            rows[service.FIRM_RESULTS].append(
                {"id": f"frr_{f}_{i}", "agency_id": "agy_1", "firm_id": firm, "period": period}
                | {"period_start": start, "period_end": end, "months": months, "currency": currency}
                | {"employees": employees + rng.randint(-5, 10), "sales": round(sales * rng.uniform(0.8, 1.3), 2)}
                | {"exports": None if f % 6 == 0 else round(sales * rng.uniform(0, 0.5), 2)}
            )
    return rows


async def load(engine: AsyncEngine, rows: dict[Any, list[dict[str, Any]]]) -> None:
    async with create_sessionmaker(engine)() as session, session.begin():
        for table, items in rows.items():
            for start in range(0, len(items), 5000):
                await session.execute(insert(table), items[start : start + 5000])
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", help="an admin URL: a throwaway database is made on that server")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-outcomes-", dir=os.environ.get("TMPDIR"))
    drop = None
    if args.postgres:
        import asyncpg

        name = f"bench_outcomes_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = args.postgres.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + f"/{name}"
        drop = (admin, name)
    else:
        url = f"sqlite+aiosqlite:///{folder}/reporting.db"
    await upgrade(MIGRATIONS, url)
    engine = create_engine(url)
    try:
        started = time.perf_counter()
        await load(engine, dataset(args.results))
        print(f"{args.results} firm results loaded into {engine.dialect.name} in {time.perf_counter() - started:.1f} s")
        sql_outcome = service.firm_outcome
        timings: dict[str, list[float]] = {"python": [], "sql": []}
        answers: dict[str, Any] = {}
        period = service.Period(None, date(2025, 12, 31))
        for _ in range(args.rounds):
            for name, implementation in (("python", reference_outcome), ("sql", sql_outcome)):
                service.firm_outcome = implementation  # type: ignore[assignment]
                async with create_sessionmaker(engine, read_only=True)() as session:
                    started = time.perf_counter()
                    answers[name] = await service.outcomes(session, Scope(), period)
                    timings[name].append(time.perf_counter() - started)
        service.firm_outcome = sql_outcome
        assert answers["python"] == answers["sql"], answers
        for key, figure in answers["sql"].items():
            print(f"  {key}: {figure.value} {figure.breakdown}")
        python, sql = statistics.median(timings["python"]), statistics.median(timings["sql"])
        print(f"unfiltered outcomes, median of {args.rounds}: python {python * 1000:.0f} ms, sql {sql * 1000:.0f} ms")
        print(f"ratio {python / sql:.1f}x; load average {os.getloadavg()[0]:.2f}")
    finally:
        await engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)
        if drop is not None:
            admin, name = drop
            await admin.execute(f'DROP DATABASE "{name}"')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
