"""Reverse matching: one supplier change against N saved standards with alerts.

    bench/run.sh alerts [--suppliers 100000] [--standards 10000,100000] [--changes 300]

The catalogue is ``catalogue_gen``'s synthetic world; the standards are
``matching_queries``' templates: ``--mix selective`` (the default) those aimed at under
0.1 % and at 0.1 to 1 % of the catalogue, half each (a lead firm's sector, products,
places, certificates, capacity, distance, with and without a description); ``--mix
wide`` adds a third aimed at 1 to 10 %. Broad templates (a whole section, a country,
everything) are left out: such standards, alerted, would name a large share of all
suppliers on every change. Half the alerts ask for any newly
eligible supplier, a quarter for a minimum score of 0.5, a quarter for a top 10 or 20.

Each change is one supplier, cycling through: a new supplier (no previous record), a
soft change (its quality score) and a hard change (one more certificate, a 50 % larger
capacity); each is judged over a view holding it and every change before it (a delta
over the catalogue, as the matching service publishes one per feed page). The indexed
reverse matching (``alerts.reverse.reverse_match``) is timed on every change, the naive
peer (every standards checked with the engine's calls, one by one, on an index of its
own) on the first ``--naive-changes``; both must find the same matches. The top N fields
are ranked before the changes are timed, as a running service has them (``--cold-fields``:
each is ranked when a change first needs it, and that time is in the change's). ``--baseline FILE`` also
times another ``reverse.py`` (say the previous commit's, from ``git show``) on the same
view and changes, alternating with this one change by change so both see the same load,
and checks that it finds the same matches. Prints Markdown tables and writes
``bench/results/alerts-*.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from bench.catalogue_gen import DEFAULT_SEED, REF_DATE, generate  # noqa: E402
from bench.matching_queries import BUCKETS, make_queries  # noqa: E402
from services.matching.alerts.reverse import Alert, StandardsIndex, SupplierChange, reverse_match  # noqa: E402
from services.matching.catalogue.catalogue import View, build_view, with_delta  # noqa: E402
from services.matching.catalogue.records import Certificate, SupplierRecord  # noqa: E402

MIXES = {"selective": set(BUCKETS[:2]), "wide": set(BUCKETS[:3])}
ENABLED = datetime(2026, 1, 1, tzinfo=UTC)


def make_alerts(count: int, seed: int, mix: str = "selective") -> list[Alert]:
    """``count`` alerted standards from the ``mix`` of query templates (see the module)."""
    rnd = random.Random(seed)
    aims = MIXES[mix]
    queries = [q.query for q in make_queries(count * 4 // len(aims) + 4, seed) if q.intent in aims][:count]
    alerts = []
    for i, query in enumerate(queries):
        kind = i % 4
        top_n = rnd.choice((10, 20)) if kind == 3 else None
        alerts.append(
            Alert(
                standards_id=f"bst{i:07d}",
                version=1,
                owner=f"firm:buyer{i % 997}",
                agency_id=None,
                firm_id=f"buyer{i % 997}",
                query=replace(query, limit=top_n or 1, include_development=False, development_limit=0),
                min_score=0.5 if kind == 2 else None,
                top_n=top_n,
                enabled_at=ENABLED,
            )
        )
    return alerts


def make_changes(records: list[SupplierRecord], count: int, seed: int) -> list[SupplierChange]:
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    changes = []
    for i in range(count):
        record = records[rnd.randrange(len(records))]
        kind = i % 3
        if kind == 0:
            changes.append(SupplierChange(record.id, 1, now, None, record))
        elif kind == 1:
            quality = round(rnd.uniform(0.3, 1.0), 4)
            changes.append(SupplierChange(record.id, 2, now, replace(record, quality_score=quality), record))
        else:
            scheme = rnd.choice(("iso-9001", "iso-14001", "oeko-tex-100", "gots", "haccp", "fssc-22000"))
            grown = replace(
                record,
                certificates=(*record.certificates, Certificate(scheme, None, None)),
                monthly_capacity=record.monthly_capacity * 1.5 if record.monthly_capacity else 500.0,
            )
            changes.append(SupplierChange(record.id, 2, now, record, grown))
    return changes


def views_of(view: View, changes: list[SupplierChange]) -> list[View]:
    """For each change, ``view`` with it and every change before it (one delta, as a feed page makes)."""
    delta: dict[str, tuple[int, SupplierRecord | None]] = {}
    views = []
    for seq, change in enumerate(changes, start=view.seq + 1):
        delta[change.supplier_id] = (seq, change.after)
        views.append(with_delta(view, dict(delta), seq))
    return views


def prepared(
    module: Any, alerts: list[Alert], view: View, changes: list[SupplierChange], cold: bool
) -> tuple[Any, float, float]:
    """An index of ``module`` (a ``reverse.py``) holding ``alerts``, its query vectors computed
    as a running service has them and, unless ``cold``, its top N fields ranked; and the seconds
    the alerts took to index and those fields to rank."""
    began = time.perf_counter()
    index = module.StandardsIndex()
    for alert in alerts:
        index.put(alert)
    indexing = time.perf_counter() - began
    began = time.perf_counter()
    for alert in alerts:
        if alert.top_n is not None:
            index.leaders(alert, view, index.query_on(alert, REF_DATE))
    fields = time.perf_counter() - began
    module.reverse_match(index, changes, view, REF_DATE)  # the candidates' query vectors and columns
    for alert in alerts:
        index.terms(alert, view.text)  # every standards' (the naive path reads them all)
    if cold:
        index.forget_leaders()
    return index, indexing, fields


CPU_SECONDS: dict[int, list[float]] = {}  # per index (its id): each timed change's CPU time


def timed(
    index: StandardsIndex, changes: list[SupplierChange], views: list[View], naive: bool, baseline: Any = None
) -> tuple[list[float], list[Any], list[float], list[Any]]:
    """Each change's seconds and matches; the same of ``baseline`` (another module's index),
    its turn alternating with this one's. The CPU time of each (this process's, which other
    work on the machine does not inflate as it does the wall time) goes to ``CPU_SECONDS``."""
    seconds: list[float] = []
    found: list[Any] = []
    other_seconds: list[float] = []
    other_found: list[Any] = []
    for i, (change, view) in enumerate(zip(changes, views, strict=False)):
        turns = [(index, reverse_match, seconds, found)]
        if baseline is not None:
            other = (baseline, sys.modules[type(baseline).__module__].reverse_match, other_seconds, other_found)
            turns = turns + [other] if i % 2 else [other, *turns]
        for of, match, times, results in turns:
            started, cpu = time.perf_counter(), time.process_time()
            of.changed([change])  # as matching does for each page: keep its top N fields true
            matches = match(of, [change], view, REF_DATE, naive=naive)
            times.append(time.perf_counter() - started)
            CPU_SECONDS.setdefault(id(of), []).append(time.process_time() - cpu)
            results.append(
                sorted((m.alert.standards_id, m.evaluation.ranked.score, m.evaluation.rank) for m in matches)
            )
    return seconds, found, other_seconds, other_found


def load_baseline(path: Path) -> ModuleType:
    """``path`` (a ``reverse.py``) as a module of its own."""
    spec = importlib.util.spec_from_file_location("baseline_reverse", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suppliers", type=int, default=100_000, help="catalogue size")
    parser.add_argument("--standards", default="10000,100000", help="comma-separated counts of alerted standards")
    parser.add_argument("--changes", type=int, default=300, help="supplier changes timed (indexed)")
    parser.add_argument("--naive-changes", type=int, default=30, help="of them, timed naively too")
    parser.add_argument("--mix", choices=sorted(MIXES), default="selective", help="the standards' templates")
    parser.add_argument("--quick", action="store_true", help="a tiny run (2,000 suppliers, 1,000 standards)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=None, help="the JSON result file")
    parser.add_argument("--baseline", type=Path, default=None, help="another reverse.py, timed alternately")
    parser.add_argument("--cold-fields", action="store_true", help="rank each top N field when first needed")
    args = parser.parse_args(argv)
    if args.quick:
        args.suppliers, args.standards, args.changes, args.naive_changes = 2000, "1000", 30, 5
    sizes = [int(s) for s in args.standards.split(",")]
    baseline_module = load_baseline(args.baseline) if args.baseline else None

    started = time.perf_counter()
    records = generate(args.suppliers, args.seed)
    view = build_view(records, 1, 1)
    print(f"== catalogue of {args.suppliers:,} suppliers built in {time.perf_counter() - started:.1f} s", flush=True)
    all_alerts = make_alerts(max(sizes), args.seed, args.mix)
    changes = make_changes(records, args.changes, args.seed + 1)
    views = views_of(view, changes)
    this_module = sys.modules[StandardsIndex.__module__]
    rows = []
    ok = True
    for size in sizes:
        alerts = all_alerts[:size]
        index, indexing, fields_s = prepared(this_module, alerts, view, changes, args.cold_fields)
        baseline = None
        if baseline_module is not None:
            baseline, _, _ = prepared(baseline_module, alerts, view, changes, args.cold_fields)
        CPU_SECONDS.clear()  # keyed by object ids, which a later size's indexes may reuse
        indexed, found, before, before_found = timed(index, changes, views, False, baseline)
        peer, _, _ = prepared(this_module, alerts, view, changes, args.cold_fields)  # its own fields, from the start
        naive, naive_found, _, _ = timed(peer, changes[: args.naive_changes], views, naive=True)
        agree = naive_found == found[: len(naive_found)] and (baseline is None or before_found == found)
        ok = ok and agree
        candidates = [len(index.candidates(c.after)) for c in changes if c.after is not None]
        row = {
            "standards": size,
            "changes": len(changes),
            "indexing_s": indexing,
            "fields_ranked_s": fields_s,
            "indexed_p50_ms": ms(indexed, 50),
            "indexed_p99_ms": ms(indexed, 99),
            "indexed_cpu_p50_ms": ms(CPU_SECONDS[id(index)], 50),
            "indexed_cpu_p99_ms": ms(CPU_SECONDS[id(index)], 99),
            "naive_changes": len(naive),
            "naive_p50_ms": ms(naive, 50),
            "naive_p99_ms": ms(naive, 99),
            "candidates_mean": float(np.mean(candidates)),
            "matches_mean": float(np.mean([len(f) for f in found])),
            "agree": agree,
        }
        if baseline is not None:
            row |= {
                "baseline_p50_ms": ms(before, 50),
                "baseline_p99_ms": ms(before, 99),
                "baseline_cpu_p50_ms": ms(CPU_SECONDS[id(baseline)], 50),
                "baseline_cpu_p99_ms": ms(CPU_SECONDS[id(baseline)], 99),
            }
        rows.append(row)
        print(f"   {size:,} standards: done", flush=True)

    print(f"\n### Reverse matching, one supplier change, {args.suppliers:,} suppliers, {args.mix} standards\n")
    print(
        "| alerted standards | indexed p50 | indexed p99 | naive p50 | naive p99 | candidates a change "
        "| matches a change | same matches |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r['standards']:,} | {r['indexed_p50_ms']:.2f} ms | {r['indexed_p99_ms']:.2f} ms "
            f"| {r['naive_p50_ms']:.1f} ms | {r['naive_p99_ms']:.1f} ms | {r['candidates_mean']:.1f} "
            f"| {r['matches_mean']:.2f} | {'yes' if r['agree'] else 'NO'} |"
        )
    print("\nCPU time of the same changes (this process's: not inflated by other work on the machine):\n")
    print("| alerted standards | indexed CPU p50 | indexed CPU p99 |")
    print("| ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['standards']:,} | {r['indexed_cpu_p50_ms']:.2f} ms | {r['indexed_cpu_p99_ms']:.2f} ms |")
    if baseline_module is not None:
        print(f"\nThe same changes, alternating with `{args.baseline}`:\n")
        print(
            "| alerted standards | baseline p50 | baseline p99 | indexed p50 | indexed p99 "
            "| baseline CPU p50 | baseline CPU p99 |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(
                f"| {r['standards']:,} | {r['baseline_p50_ms']:.2f} ms | {r['baseline_p99_ms']:.2f} ms "
                f"| {r['indexed_p50_ms']:.2f} ms | {r['indexed_p99_ms']:.2f} ms "
                f"| {r['baseline_cpu_p50_ms']:.2f} ms | {r['baseline_cpu_p99_ms']:.2f} ms |"
            )
    print(
        f"\n{len(changes)} changes timed indexed, the first {rows[0]['naive_changes']} naively "
        "(every standards through the engine's calls, one by one). "
        + (
            "Each top N field ranked when a change first needed it."
            if args.cold_fields
            else "Top N fields ranked before the changes: "
            + ", ".join(f"{r['fields_ranked_s']:.1f} s at {r['standards']:,} standards" for r in rows)
            + "."
        )
    )
    out = args.out or ROOT / "bench" / "results" / f"alerts-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "alerts",
                "suppliers": args.suppliers,
                "mix": args.mix,
                "cold_fields": args.cold_fields,
                "ok": ok,
                "sizes": rows,
            },
            indent=1,
        )
    )
    print(f"\nresults: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
