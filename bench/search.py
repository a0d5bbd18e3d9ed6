"""Firm search as you type: ``GET /v1/firms?q=…`` latency on a registry of N firms.

Loads N generated firms (``bench/firmgen.py``, with capabilities in words taken from
their ISIC classes' labels) through the registry's own write path (``create_drafts``
and the typo-word index), then sends the queries a person typing would: each word
of a sample of firm names, towns and capabilities typed from its 2nd letter on, two
words with the second still being typed, and whole words with one typo. Each query
is one request through the app (``limit=20``, relevance order), after a warm-up.

    python bench/search.py --firms 100000 [--backend postgres|sqlite] [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.firmgen import labelled  # noqa: E402
from bench.imports import BENCH_ADMIN, SECRET, bench_registry, database, drop, headers  # noqa: E402
from services.common.codes import isic_codes  # noqa: E402
from services.common.folding import words  # noqa: E402
from services.registry.firms.resource import FIRMS  # noqa: E402
from services.registry.firms.schemas import FirmCreate  # noqa: E402
from services.registry.firms.search import document_words, index_words  # noqa: E402
from services.registry.records import create_drafts, draft  # noqa: E402
from services.registry.settings import RegistrySettings  # noqa: E402

BATCH = 5000


def firm_documents(n: int, agency: str) -> Iterator[dict[str, object]]:
    """N distinct generated firms, each with capabilities in words (its ISIC labels)."""
    labels = isic_codes()
    rng = random.Random(11)
    for firm in labelled(n, duplicate_share=0.0):
        fields = dict(firm.fields)
        described = [labels.get(code, "") for code in fields["isic_codes"]]
        extra = rng.choice(["export quality", "small batches", "custom orders", "ISO certified", "on time"])
        fields["capabilities"] = "; ".join([*described, extra])
        fields["agency_id"] = agency
        yield fields


def typed_queries(samples: list[str], rng: random.Random, count: int) -> dict[str, list[str]]:
    """Queries by kind: a word typed letter by letter, two words, and one typo."""
    single: list[str] = []
    pairs: list[str] = []
    typos: list[str] = []
    for sample in samples:
        tokens = [w for w in words(sample) if len(w) >= 3]
        if not tokens:
            continue
        word = rng.choice(tokens)
        single += [word[:end] for end in range(2, len(word) + 1)]
        if len(tokens) >= 2:
            first, second = tokens[0], tokens[1]
            pairs += [f"{first} {second[:end]}" for end in range(1, len(second) + 1)]
        long_words = [w for w in tokens if len(w) >= 5]
        if long_words:
            w = rng.choice(long_words)
            at = rng.randrange(1, len(w) - 1)
            typos.append(w[:at] + w[at + 1] + w[at] + w[at + 2 :])  # two neighbours swapped
    return {
        "one word, as typed (prefix)": rng.sample(single, min(count, len(single))),
        "two words, last one as typed": rng.sample(pairs, min(count, len(pairs))),
        "whole word with one typo": rng.sample(typos, min(count, len(typos))),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(n: int, backend: str, count: int, keep: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="lk-bench-") as tmp:
        workdir = Path(tmp)
        url, name = await database(backend, workdir)
        settings = RegistrySettings(
            database_url=url,
            data_dir=workdir,
            environment="test",
            principal_secret=SECRET,
            log_json=False,
            log_level="WARNING",
            matching_url="",  # no feed to follow: the registry alone
        )
        try:
            async with bench_registry(settings) as (app, client, agency):
                started = time.perf_counter()
                samples: list[str] = []
                batch: list[dict[str, object]] = []
                sessions = app.state.sessionmaker
                rng = random.Random(5)

                async def flush() -> None:
                    drafts = [draft(FIRMS, FirmCreate.model_validate(d)) for d in batch]
                    async with sessions() as session, session.begin():
                        await create_drafts(session, FIRMS, principal=BENCH_ADMIN, drafts=drafts, notify=False)
                        await index_words(session, set().union(*(document_words(d.columns) for d in drafts)))
                    batch.clear()

                for document in firm_documents(n, agency):
                    batch.append(document)
                    if rng.random() < 0.01:
                        samples += [str(document["name"]), str(document["locality"]), str(document["capabilities"])]
                    if len(batch) == BATCH:
                        await flush()
                if batch:
                    await flush()
                loaded = time.perf_counter() - started
                async with sessions() as session, session.begin():  # the planner's statistics, as autovacuum would
                    await session.execute(text("ANALYZE"))
                queries = typed_queries(samples, random.Random(3), count)
                load = os.getloadavg()[0]
                print(f"\n## Firm search as you type ({backend}, {n:,} firms, loaded in {loaded:.0f} s)\n")
                print(f"Load average before the queries: {load:.1f} on {os.cpu_count()} cores.\n")
                print("| queries | n | p50 ms | p95 ms | p99 ms | max ms | mean hits |")
                print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
                reader = headers(BENCH_ADMIN)
                for q in list(queries.values())[0][:20]:  # warm-up: caches, plans
                    await client.get("/v1/firms", params={"q": q, "limit": 20}, headers=reader)
                for kind, texts in queries.items():
                    times: list[float] = []
                    hits: list[int] = []
                    for q in texts:
                        begun = time.perf_counter()
                        response = await client.get("/v1/firms", params={"q": q, "limit": 20}, headers=reader)
                        times.append((time.perf_counter() - begun) * 1000)
                        assert response.status_code == 200, response.text
                        hits.append(len(response.json()["items"]))
                    print(
                        f"| {kind} | {len(times)} | {statistics.median(times):.1f} | "
                        f"{percentile(times, 0.95):.1f} | {percentile(times, 0.99):.1f} | {max(times):.1f} | "
                        f"{statistics.mean(hits):.1f} |"
                    )
        finally:
            if keep and name:
                print(f"\nkept database {name}")
            else:
                await drop(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--queries", type=int, default=300, help="queries of each kind")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database (to explain queries)")
    args = parser.parse_args()
    asyncio.run(run(args.firms, args.backend, args.queries, args.keep))


if __name__ == "__main__":
    main()
