"""Matching engine benchmark: latency, memory, update visibility, and two exact peers.

    python bench/matching.py                       # 100k and 1M suppliers (default)
    python bench/matching.py --sizes 10000000 --peers none   # 10M, engine only (see docs/benchmarks.md)
    python bench/matching.py --quick               # a tiny run: a few seconds, peers included

For each size N it generates a realistic synthetic catalogue (``catalogue_gen``), builds
the engine's view (time, ``view.main.nbytes / N``, RSS growth and peak), runs a fixed
set of queries (``matching_queries``: at least 200 by default, labelled with their
measured selectivity bucket) after a warm-up pass, applies single-supplier changes with
``with_delta`` and times until a query sees them, then loads the same suppliers into
PostgreSQL and tantivy (``peers_postgres``, ``peers_tantivy``) and runs the same
queries there, interleaved with the engine's. Every query's shortlist (ids, order,
scores, contributions, eligible count) must be identical across the three: any
difference is printed and the run exits with status 1.

It prints one markdown table per size and writes ``bench/results/matching-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import itertools
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from bench.catalogue_gen import DEFAULT_SEED, REF_DATE, describe, generate, world  # noqa: E402
from bench.matching_queries import BUCKETS, BenchQuery, bucket_of, make_queries  # noqa: E402
from bench.matching_reference import Answer, Item, Reference  # noqa: E402
from services.matching.catalogue.catalogue import ShortlistResult, View, build_view, run_query, with_delta  # noqa: E402
from services.matching.catalogue.query import Query  # noqa: E402
from services.matching.catalogue.records import Certificate, SupplierRecord  # noqa: E402
from services.matching.catalogue.store import CatalogueStore  # noqa: E402

# The targets: core latency at 1M and (looser) at 10M; memory and visibility at every size.
LATENCY_TARGETS = {1_000_000: {"p50_ms": 1.0, "p99_ms": 10.0}, 10_000_000: {"p50_ms": 5.0, "p99_ms": 30.0}}
TARGETS = {"bytes_per_supplier": 250.0, "visible_s": 1.0, "at": 1_000_000}


def latency_targets(n: int) -> dict[str, float]:
    """The latency targets of the largest target size at or below ``n`` (1M's below 1M)."""
    return LATENCY_TARGETS[max([size for size in LATENCY_TARGETS if size <= n], default=1_000_000)]


DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


# --------------------------------------------------------------------------- helpers


def percentiles(samples: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p95/p99/max in milliseconds (nearest-rank), and the sample count."""
    if not samples:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(np.ceil(p / 100 * len(ordered))) - 1))] * 1e3

    return {"n": len(ordered), "p50": rank(50), "p95": rank(95), "p99": rank(99), "max": ordered[-1] * 1e3}


class RssSampler:
    """Peak resident set size while a block runs (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def engine_answer(result: ShortlistResult) -> Answer:
    return Answer([Item(r.id, r.score, tuple(r.contributions.items())) for r in result.items], result.eligible_count)


def differences(engine: Answer, peer: Answer) -> list[str]:
    """What differs between two answers (empty when identical)."""
    problems: list[str] = []
    if engine.eligible_count != peer.eligible_count:
        problems.append(f"eligible {engine.eligible_count} != {peer.eligible_count}")
    mine = [(i.id, i.score) for i in engine.items]
    theirs = [(i.id, i.score) for i in peer.items]
    if mine != theirs:
        for position, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            if a != b:
                problems.append(f"first difference at #{position + 1}: engine {a} peer {b}")
                break
        if len(mine) != len(theirs):
            problems.append(f"{len(mine)} items != {len(theirs)}")
    else:
        for engine_item, peer_item in zip(engine.items, peer.items, strict=True):
            if dict(engine_item.contributions) != dict(peer_item.contributions):
                problems.append(
                    f"contributions of {engine_item.id}: engine {dict(engine_item.contributions)}"
                    f" peer {dict(peer_item.contributions)}"
                )
                break
    return problems


def segment_parts(segment: Any) -> dict[str, int]:
    """Bytes of the main segment by kind (whatever arrays the engine keeps today)."""
    parts = {
        "postings": int(segment.postings.nbytes),
        "names": int(segment.names.nbytes),
        "bitmaps": int(sum(len(b.serialize()) for b in segment.facets.values())),
        "certificates": int(sum(c.rows.nbytes + c.start.nbytes + c.end.nbytes for c in segment.certificates.values())),
    }
    arrays = {name: value for name, value in vars(segment).items() if isinstance(value, np.ndarray)}
    parts["ids"] = int(sum(a.nbytes for name, a in arrays.items() if "ids" in name))
    parts["columns"] = int(sum(a.nbytes for name, a in arrays.items() if "ids" not in name))
    return parts


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def ms(value: float | int | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# --------------------------------------------------------------------------- phases


def measure_engine(view: View, queries: list[BenchQuery], repeat: int) -> dict[str, Any]:
    cold: list[float] = []
    results: list[ShortlistResult] = []
    for q in queries:  # the first pass: caches (certificates on the date, lazy imports) fill here
        seconds, result = timed(partial(run_query, view, q.query))
        cold.append(seconds)
        results.append(result)
    samples: list[list[float]] = [[] for _ in queries]
    cpu_samples: list[float] = []  # this thread's CPU time per query: less sensitive to a busy machine
    passes: list[dict[str, float]] = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for i, q in enumerate(queries):
            thread_cpu = time.thread_time()
            seconds, _ = timed(partial(run_query, view, q.query))
            cpu_samples.append(time.thread_time() - thread_cpu)
            samples[i].append(seconds)
        passes.append({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu})
    wall = statistics.median(p["wall"] for p in passes)
    return {
        "results": results,
        "cold": cold,
        "samples": samples,
        "cpu": percentiles(cpu_samples),
        "qps": len(queries) / wall,
        "qps_per_cpu_second": len(cpu_samples) / sum(cpu_samples) if sum(cpu_samples) else None,
        "cpu_per_wall": statistics.median(p["cpu"] / p["wall"] for p in passes),
    }


def changed(record: SupplierRecord, marker: str, version: int) -> SupplierRecord:
    """A realistic edit: a new certificate, a capacity and performance update."""
    return dataclasses.replace(
        record,
        certificates=record.certificates
        + (Certificate(marker, REF_DATE - timedelta(days=30), REF_DATE + timedelta(days=3 * 365)),),
        monthly_capacity=round((record.monthly_capacity or 100.0) * 1.1 + version, 1),
        quality_score=0.9,
        on_time_delivery_rate=0.95,
    )


def measure_updates(
    view: View, records: Sequence[SupplierRecord], count: int, seed: int, prefill: Sequence[int]
) -> dict[str, Any]:
    """Time from a change to a query that sees it: store write + ``with_delta`` + the query."""
    marker = "iso-50001"  # held by few (electrical sector only); the edited supplier must show up with it
    rnd = random.Random(seed)
    eligible_rows = [i for i in range(len(records)) if not records[i].isic_codes[0].startswith("27")]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        store = CatalogueStore(Path(folder) / "store.sqlite3")
        try:
            for base_delta in [0, *prefill]:
                if base_delta >= len(records) // 2:
                    continue
                delta: dict[str, tuple[int, SupplierRecord | None]] = {}
                seq = len(records)
                for row in rnd.sample(eligible_rows, base_delta):
                    seq += 1
                    delta[records[row].id] = (seq, changed(records[row], "iso-45001", seq))
                current = with_delta(view, delta, seq) if delta else view
                runs = count if base_delta == 0 else max(3, count // 5)
                totals, store_s, delta_s, query_s = [], [], [], []
                missed = 0
                for _ in range(runs):
                    row = rnd.choice(eligible_rows)
                    seq += 1
                    record = changed(records[row], marker, seq)
                    query = Query(
                        on_date=REF_DATE,
                        isic_codes=(record.isic_codes[0],),
                        countries=(record.country,),
                        required_certifications=(marker,),
                        description=record.capabilities,
                        limit=1000,
                    )
                    started = time.perf_counter()
                    store.apply([(record.id, seq, record)], seq)
                    stored = time.perf_counter()
                    updated = dict(current.delta_records)
                    updated[record.id] = (seq, record)
                    current = with_delta(current, updated, seq)
                    applied = time.perf_counter()
                    result = run_query(current, query)
                    done = time.perf_counter()
                    # only the new version holds the marker certificate: seeing the supplier is seeing the change
                    if not any(item.id == record.id for item in result.items):
                        missed += 1
                    totals.append(done - started)
                    store_s.append(stored - started)
                    delta_s.append(applied - stored)
                    query_s.append(done - applied)
                out[str(base_delta)] = {
                    "runs": runs,
                    "missed": missed,
                    "visible": percentiles(totals),
                    "store": percentiles(store_s),
                    "with_delta": percentiles(delta_s),
                    "query": percentiles(query_s),
                    "delta_size_after": len(current.delta_records),
                }
        finally:
            store.close()
    return out


def firm_document(record: SupplierRecord) -> dict[str, Any]:
    """The registry's JSON of the firm behind ``record`` (what its change feed carries)."""
    suffix = f" {record.name}"  # the catalogue appends the name to the capabilities
    capabilities = record.capabilities[: -len(suffix)] if record.capabilities.endswith(suffix) else record.capabilities
    return {
        "id": record.id,
        "name": record.name,
        "agency_id": record.agency_id,
        "roles": ["supplier"],
        "country": record.country,
        "subdivision": record.subdivision,
        "latitude": record.latitude,
        "longitude": record.longitude,
        "size_class": record.size_class,
        "isic_codes": list(record.isic_codes),
        "hs_codes": list(record.hs_codes),
        "certifications": [
            {
                "scheme": c.scheme,
                "valid_from": c.valid_from.isoformat() if c.valid_from else None,
                "valid_until": c.valid_until.isoformat() if c.valid_until else None,
            }
            for c in record.certificates
        ],
        "monthly_capacity": record.monthly_capacity,
        "capacity_unit": record.capacity_unit,
        "quality_score": record.quality_score,
        "on_time_delivery_rate": record.on_time_delivery_rate,
        "capabilities": capabilities,
        "cluster_ids": list(record.cluster_ids),
    }


def measure_feed_build(records: Iterable[SupplierRecord], n: int, batch: int) -> dict[str, Any]:
    """The catalogue built from the registry's change feed, as a new matching service
    builds it: pages of ``batch`` firm changes as JSON are parsed and applied by
    ``CatalogueLifecycle.apply`` (stored with the cursor in its SQLite store), and the last page
    triggers the build from the store and the snapshot save. What the registry takes to
    read the pages and send them is not included. ``records`` (``n`` of them) may be a
    stream: only a page of them is held at a time."""
    from services.common.changefeed import ChangePage
    from services.matching.catalogue.lifecycle import CatalogueLifecycle

    def page_json(start: int, chunk: list[SupplierRecord]) -> str:
        items = [
            {
                "seq": start + i + 1,
                "entity": "firm",
                "entity_id": r.id,
                "op": "created",
                "version": 1,
                "agency_id": r.agency_id,
                "occurred_at": "2026-06-30T00:00:00Z",
                "data": firm_document(r),
            }
            for i, r in enumerate(chunk)
        ]
        return json.dumps({"items": items, "next_after": start + len(chunk), "has_more": start + len(chunk) < n})

    async def replay(folder: Path) -> dict[str, Any]:
        live = CatalogueLifecycle(store=CatalogueStore(folder / "store.sqlite3"), snapshots=folder / "snapshots")
        try:
            await live.load_cursor()
            pages_s = 0.0
            stream, start = iter(records), 0
            while chunk := list(itertools.islice(stream, batch)):
                text = page_json(start, chunk)  # the registry's side: not timed
                start += len(chunk)
                started = time.perf_counter()
                page = ChangePage.model_validate_json(text)
                if not page.has_more:
                    break
                await live.apply(page)
                pages_s += time.perf_counter() - started
            started = time.perf_counter()
            await live.apply(page)  # the last page: stored, then the build and the snapshot
            last_s = time.perf_counter() - started
            assert live.catalogue.view is not None and live.catalogue.view.size == n
            return {"pages_s": pages_s, "build_s": last_s, "total_s": pages_s + last_s, "batch": batch}
        finally:
            live.store.close()

    with tempfile.TemporaryDirectory(prefix="bench-feed-") as folder:
        return asyncio.run(replay(Path(folder)))


def run_peers(
    peers: list[Any], view: View, queries: list[BenchQuery], engine_results: list[ShortlistResult], n: int
) -> dict[str, Any]:
    """Check every peer against the engine on every query, then time all three interleaved."""
    mismatches: list[dict[str, Any]] = []
    for peer in peers:
        started = time.perf_counter()
        for i, (q, result) in enumerate(zip(queries, engine_results, strict=True)):  # warm-up doubles as the check
            if i and i % 40 == 0:
                print(f"   {peer.name}: checked {i}/{len(queries)} ({time.perf_counter() - started:.0f}s)", flush=True)
            problems = differences(engine_answer(result), peer.run(q.query))
            if problems:
                mismatches.append(
                    {
                        "peer": peer.name,
                        "query": q.name,
                        "problems": problems,
                        "bucket": bucket_of(result.eligible_count, n),
                    }
                )
    samples: dict[str, list[float]] = {"engine": [], **{p.name: [] for p in peers}}
    print("   timing engine and peers, interleaved", flush=True)
    for q in queries:
        samples["engine"].append(timed(partial(run_query, view, q.query))[0])
        for peer in peers:
            samples[peer.name].append(timed(partial(peer.run, q.query))[0])
    return {"mismatches": mismatches, "samples": samples}


def by_bucket(labels: list[str], samples: Sequence[list[float] | float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for bucket in [*BUCKETS, "all"]:
        chosen: list[float] = []
        for label, s in zip(labels, samples, strict=True):
            if bucket in ("all", label):
                chosen.extend(s if isinstance(s, list) else [s])
        out[bucket] = percentiles(chosen)
    return out


def profile_engine(view: View, queries: list[BenchQuery], path: Path) -> str:
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for q in queries:
        run_query(view, q.query)
    profiler.disable()
    profiler.dump_stats(str(path))
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    return text.getvalue()


# --------------------------------------------------------------------------- one size


def run_size(n: int, args: argparse.Namespace, queries: list[BenchQuery], results_dir: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"n": n}
    print(f"\n== N = {n:,}: generating", flush=True)
    generate_s, records = timed(lambda: generate(n, args.seed))
    report["generate_s"] = generate_s
    report["catalogue"] = describe(records)
    gc.collect()
    gc.freeze()  # the records stay alive for the peers; keep the collector from rescanning them

    print(f"   building the view ({generate_s:.1f}s to generate)", flush=True)
    before = rss()
    with RssSampler() as sampler:
        build_s, view = timed(lambda: build_view(records, seq=n, epoch=1))
    gc.collect()
    gc.freeze()
    after = rss()
    report["build"] = {
        "seconds": build_s,
        "bytes": view.main.nbytes,
        "bytes_per_supplier": view.main.nbytes / n,
        "rss_growth_bytes": after - before,
        "rss_growth_per_supplier": (after - before) / n,
        "rss_peak_growth_bytes": sampler.peak - before,
        "vocabulary": view.text.vocabulary_size,
        "parts": segment_parts(view.main),
    }
    print(
        f"   built in {build_s:.1f}s, {view.main.nbytes / n:.0f} B/supplier; running {len(queries)} queries "
        f"x {args.repeat}",
        flush=True,
    )

    engine = measure_engine(view, queries, args.repeat)
    labels = [bucket_of(r.eligible_count, n) for r in engine["results"]]
    report["queries"] = [
        {
            "name": q.name,
            "intent": q.intent,
            "bucket": label,
            "text": q.has_text,
            "eligible": r.eligible_count,
            "selectivity": r.eligible_count / n,
            "p50_ms": statistics.median(s) * 1e3,
            "cold_ms": c * 1e3,
        }
        for q, label, r, s, c in zip(queries, labels, engine["results"], engine["samples"], engine["cold"], strict=True)
    ]
    report["engine"] = {
        "by_bucket": by_bucket(labels, engine["samples"]),
        "text": percentiles([x for q, s in zip(queries, engine["samples"], strict=True) if q.has_text for x in s]),
        "no_text": percentiles(
            [x for q, s in zip(queries, engine["samples"], strict=True) if not q.has_text for x in s]
        ),
        "cold": by_bucket(labels, engine["cold"])["all"],
        "qps": engine["qps"],
        "qps_per_cpu_second": engine["qps_per_cpu_second"],
        "cpu": engine["cpu"],
        "cpu_per_wall": engine["cpu_per_wall"],
        "bucket_counts": {b: labels.count(b) for b in BUCKETS},
        "bucket_text_counts": {
            b: sum(1 for q, label in zip(queries, labels, strict=True) if label == b and q.has_text) for b in BUCKETS
        },
    }
    print("   update visibility", flush=True)
    report["updates"] = measure_updates(view, records, args.updates, args.seed, prefill=args.prefill)
    if n <= args.feed_max_size:
        print("   build from the feed", flush=True)
        report["feed_build"] = measure_feed_build(records, len(records), batch=1000)

    if args.profile:
        path = results_dir / f"matching-{n}.prof"
        report["profile"] = profile_engine(view, queries, path)
        print(report["profile"])

    peers: list[Any] = []
    if args.peers and n <= args.peer_max_size:
        try:
            print("   peers: reference columns", flush=True)
            ref_s, reference = timed(lambda: Reference(records, view.text))
            report["reference_s"] = ref_s
            if "tantivy" in args.peers:
                from bench.peers_tantivy import TantivyPeer

                print("   peers: tantivy index", flush=True)
                peers.append(TantivyPeer(records, reference))
            if "postgres" in args.peers:
                from bench.peers_postgres import PostgresPeer

                print("   peers: PostgreSQL load", flush=True)
                peers.append(PostgresPeer(args.pg_url, f"bench_matching_{os.getpid()}", records, reference))
            report["peers"] = {p.name: {"build_s": p.build_seconds, "disk_bytes": p.disk_bytes} for p in peers}
            print("   peers: checking and timing", flush=True)
            outcome = run_peers(peers, view, queries, engine["results"], n)
            report["mismatches"] = outcome["mismatches"]
            report["side_by_side"] = {name: by_bucket(labels, s) for name, s in outcome["samples"].items()}
        finally:
            for peer in peers:
                peer.close()
    gc.unfreeze()  # the records and the view go when this returns
    return report


# --------------------------------------------------------------------------- report


def table(report: dict[str, Any]) -> str:
    n = report["n"]
    b = report["build"]
    e = report["engine"]
    lines = [f"### N = {n:,}", "", "| measure | value |", "| --- | --- |"]
    lines.append(f"| build_view | {b['seconds']:.1f} s (generate {report['generate_s']:.1f} s) |")
    lines.append(
        f"| bytes per supplier (view.main.nbytes / N) | {b['bytes_per_supplier']:.0f} B "
        f"({', '.join(f'{k} {v / n:.0f}' for k, v in b['parts'].items())}) |"
    )
    lines.append(
        f"| RSS growth (peak during build) | {b['rss_growth_bytes'] / n:.0f} B/supplier "
        f"({b['rss_growth_bytes'] / 2**20:.0f} MiB; peak +{b['rss_peak_growth_bytes'] / 2**20:.0f} MiB) |"
    )
    if "feed_build" in report:
        f = report["feed_build"]
        lines.append(
            f"| build from the feed ({f['batch']:,} changes a page) | {f['total_s']:.1f} s "
            f"(pages parsed and stored {f['pages_s']:.1f} s, {n / max(f['pages_s'], 1e-9):,.0f} firms/s; "
            f"build and snapshot {f['build_s']:.1f} s) |"
        )
    lines.append(
        f"| QPS, one core (sequential pass, median of passes) | {e['qps']:.0f} (CPU/wall {e['cpu_per_wall']:.2f}) |"
    )
    lines.append(
        f"| CPU time per query (this thread), p50 / p95 / p99 | {ms(e['cpu']['p50'], 3)} / {ms(e['cpu']['p95'])} / "
        f"{ms(e['cpu']['p99'])} ms ({e['qps_per_cpu_second']:.0f} queries per CPU-second) |"
    )
    lines.append(f"| cold first pass p50 / max | {ms(e['cold']['p50'])} / {ms(e['cold']['max'], 0)} ms |")
    for delta, u in report["updates"].items():
        lines.append(
            f"| change visible (delta {delta} -> {u['delta_size_after']}), p50 / p99 | "
            f"{ms(u['visible']['p50'])} / {ms(u['visible']['p99'])} ms (store {ms(u['store']['p50'])}, "
            f"with_delta {ms(u['with_delta']['p50'])}, query {ms(u['query']['p50'])}; "
            f"missed {u['missed']}/{u['runs']}) |"
        )
    for name, peer in report.get("peers", {}).items():
        lines.append(f"| {name} load | {peer['build_s']:.1f} s, {peer['disk_bytes'] / 2**20:.0f} MiB on disk |")
    if "mismatches" in report:
        verdict = (
            "identical (ids, order, scores, contributions, eligible counts) on every query"
            if not report["mismatches"]
            else f"**{len(report['mismatches'])} MISMATCHES**"
        )
        lines.append(f"| peers vs engine | {verdict} |")
    lines += [
        "",
        "Engine latency (ms; warm; every query x passes):",
        "",
        "| bucket | queries (with text) | p50 | p95 | p99 | max |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for bucket in [*BUCKETS, "all"]:
        p = e["by_bucket"][bucket]
        count = e["bucket_counts"].get(bucket, sum(e["bucket_counts"].values()))
        texts = e["bucket_text_counts"].get(bucket, sum(e["bucket_text_counts"].values()))
        lines.append(
            f"| {bucket} | {count} ({texts}) | {ms(p['p50'], 3)} | {ms(p['p95'])} | {ms(p['p99'])} | {ms(p['max'])} |"
        )
    lines.append(
        f"| with text / without | | {ms(e['text']['p50'], 3)} / {ms(e['no_text']['p50'], 3)} | "
        f"{ms(e['text']['p95'])} / {ms(e['no_text']['p95'])} | {ms(e['text']['p99'])} / "
        f"{ms(e['no_text']['p99'])} | {ms(e['text']['max'])} / {ms(e['no_text']['max'])} |"
    )
    if "side_by_side" in report:
        names = list(report["side_by_side"])
        lines += [
            "",
            "Side by side, same queries, interleaved in one pass (ms, p50 / p95 / p99):",
            "",
            "| bucket | " + " | ".join(names) + " |",
            "| --- |" + " --- |" * len(names),
        ]
        for bucket in [*BUCKETS, "all"]:
            cells = []
            for name in names:
                p = report["side_by_side"][name][bucket]
                cells.append(f"{ms(p['p50'])} / {ms(p['p95'])} / {ms(p['p99'])}")
            lines.append(f"| {bucket} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> list[str]:
    e = report["engine"]["by_bucket"]["all"]
    latency = latency_targets(report["n"])
    # the worst p99 over the delta sizes measured: a change must show within 1 s up to delta_limit too
    visible = max(u["visible"]["p99"] for u in report["updates"].values())
    worst_visible = max(u["visible"]["max"] for u in report["updates"].values())
    checks = [
        (f"core p50 <= {latency['p50_ms']:g} ms", e["p50"] <= latency["p50_ms"], f"{e['p50']:.3f} ms"),
        (f"core p99 <= {latency['p99_ms']:g} ms", e["p99"] <= latency["p99_ms"], f"{e['p99']:.2f} ms"),
        (
            "<= 250 B/supplier",
            report["build"]["bytes_per_supplier"] <= TARGETS["bytes_per_supplier"],
            f"{report['build']['bytes_per_supplier']:.0f} B",
        ),
        (
            "change visible <= 1 s",
            visible / 1e3 <= TARGETS["visible_s"],
            f"worst p99 over delta sizes {visible:.1f} ms, max {worst_visible:.1f} ms",
        ),
    ]
    return [f"- {'met' if ok else 'MISSED'}: {name} ({value})" for name, ok, value in checks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated catalogue sizes")
    parser.add_argument("--quick", action="store_true", help="a tiny run (2,000 suppliers, 40 queries)")
    parser.add_argument("--queries", type=int, default=240, help="number of queries (>= 200 for a full run)")
    parser.add_argument("--repeat", type=int, default=3, help="measured passes over the queries (engine)")
    parser.add_argument("--updates", type=int, default=100, help="single-supplier changes to time")
    parser.add_argument(
        "--prefill",
        default="1000,4900",
        help="also time changes on top of a delta of this many suppliers (comma-separated)",
    )
    parser.add_argument("--peers", default="postgres,tantivy", help="comma-separated peers, or 'none'")
    parser.add_argument("--peer-max-size", type=int, default=2_000_000, help="skip the peers above this size")
    parser.add_argument(
        "--feed-max-size", type=int, default=2_000_000, help="skip the build from the feed above this size"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL") or DEFAULT_PG_URL,
        help="an admin URL; the benchmark creates and drops its own database",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--profile", action="store_true", help="cProfile one pass of the queries per size")
    parser.add_argument("--out", type=Path, default=None, help="the JSON result file")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.queries, args.repeat, args.updates, args.prefill = "2000", 40, 1, 5, "200"
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.peers = [] if args.peers.strip() in ("", "none") else [p.strip() for p in args.peers.split(",")]
    args.prefill = [int(p) for p in str(args.prefill).split(",") if p.strip()]
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    out = args.out or results_dir / f"matching-{time.strftime('%Y%m%d-%H%M%S')}.json"

    world(args.seed)
    queries = make_queries(args.queries, args.seed, id_pool=min(sizes))
    reports = []
    failed = False
    for n in sizes:
        report = run_size(n, args, queries, results_dir)
        reports.append(report)
        print()
        print(table(report))
        if n >= TARGETS["at"] or n == max(sizes):
            print(
                "\nTargets (issue: core p50 <= 1 ms and p99 <= 10 ms at 1M, <= 5 ms and <= 30 ms at 10M; "
                f"<= 250 B/supplier; visible <= 1 s), at N = {n:,}:"
            )
            print("\n".join(targets(report)))
        for m in report.get("mismatches", []):
            failed = True
            print(f"MISMATCH {m['peer']} {m['query']} [{m['bucket']}]: {'; '.join(m['problems'])}", file=sys.stderr)
        missed = sum(u["missed"] for u in report["updates"].values())
        if missed:
            failed = True
            print(f"UPDATE NOT VISIBLE in {missed} runs", file=sys.stderr)
    payload = {
        "benchmark": "matching",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "memory_bytes": psutil.virtual_memory().total,
            "load_average": os.getloadavg(),
        },
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "sizes": reports,
        "ok": not failed,
    }
    out.write_text(json.dumps(payload, indent=1, default=str))
    print(f"\nresults: {out}")
    if failed:
        print("FAILED: the peers disagree with the engine (see MISMATCH lines above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
