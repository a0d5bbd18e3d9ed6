"""Before and after: the engine of a git revision against the working tree, one run.

    python bench/matching_compare.py --size 1000000 --baseline HEAD
    python bench/matching_compare.py --size 200000 --cache /tmp/bench-cache   # reuse generated records
    python bench/matching_compare.py --size 10000000 --snapshot /tmp/snap-10M    # build once, then load

The baseline's ``services/matching/catalogue`` is read with ``git show`` into a
temporary package, so both engines run in one process on the same records and the
same queries (``matching_queries``), timed interleaved query by query (the order
alternates each pass), which keeps a busy machine's noise out of the comparison.
Every answer (ids, order, scores, contributions, counts, development candidates and
gaps) must be identical, or the run exits with status 1. It also times saving and
loading the working tree's snapshot (a restart) and a query right after loading.

With ``--snapshot DIR`` the first run saves the working tree's view of the generated
catalogue there, and later runs load it into both engines instead of generating and
building (far quicker at scale: docs/benchmarks.md); the two revisions must then share
the snapshot format, or the baseline reads its own with ``--baseline-snapshot DIR`` (a
snapshot of the same catalogue saved by the baseline, e.g. by an earlier run of this
script at that revision).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from pyroaring import BitMap

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from bench.catalogue_gen import DEFAULT_SEED, generate, world  # noqa: E402
from bench.matching import percentiles  # noqa: E402
from bench.matching_queries import BUCKETS, BenchQuery, bucket_of, make_queries  # noqa: E402
from services.matching.catalogue import catalogue as current  # noqa: E402
from services.matching.catalogue import snapshot  # noqa: E402
from services.matching.catalogue.records import SupplierRecord  # noqa: E402

PACKAGE = "services/matching/catalogue"


def load_baseline(revision: str, folder: Path) -> ModuleType:
    """The ``catalogue`` module of ``revision``, imported as ``baseline_catalogue.catalogue``."""
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{revision}:{PACKAGE}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    package = folder / "baseline_catalogue"
    package.mkdir()
    for name in names:
        if name.endswith(".py"):
            source = subprocess.run(
                ["git", "show", f"{revision}:{PACKAGE}/{name}"], cwd=ROOT, check=True, capture_output=True, text=True
            ).stdout
            (package / name).write_text(source.replace("services.matching.catalogue.", "baseline_catalogue."))
    sys.path.insert(0, str(folder))
    return importlib.import_module("baseline_catalogue.catalogue")


def load_view(module: ModuleType, path: Path) -> Any:
    """A view of the snapshot at ``path``, read by ``module``'s own snapshot code."""
    snapshots = importlib.import_module(module.__name__.rsplit(".", 1)[0] + ".snapshot")
    main_segment, text, seq = snapshots.load(path)
    return module.View(
        main=main_segment, text=text, removed=BitMap(), delta=None, delta_records={}, seq=seq, main_seq=seq
    )


def records_for(n: int, seed: int, cache: Path | None) -> list[SupplierRecord]:
    path = cache / f"records-{n}.pkl" if cache else None
    if path is not None and path.exists() and seed == DEFAULT_SEED:
        with open(path, "rb") as handle:
            loaded: list[SupplierRecord] = pickle.load(handle)  # our own cache file
            return loaded
    records = generate(n, seed)
    if path is not None and seed == DEFAULT_SEED:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            pickle.dump(records, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return records


def answer(result: Any) -> tuple[Any, ...]:
    """Everything a client sees of a shortlist but the time taken."""

    def items(rows: list[Any]) -> list[Any]:
        return [(r.id, r.name, r.score, r.values, r.contributions, r.gap and vars(r.gap)) for r in rows]

    return (
        result.eligible_count,
        items(result.items),
        result.development_count,
        items(result.development),
        result.weights,
        result.catalogue_version,
    )


def timed_query(module: ModuleType, view: Any, query: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = module.run_query(view, query)
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--baseline", default="HEAD", help="the git revision to compare against")
    parser.add_argument("--queries", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=3, help="measured passes (after one warm-up pass)")
    parser.add_argument("--development", action="store_true", help="also ask every query for development candidates")
    parser.add_argument("--cache", type=Path, default=None, help="a folder to keep generated records in")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--snapshot", type=Path, default=None, help="a folder to keep the built view in (see above)")
    parser.add_argument(
        "--baseline-snapshot", type=Path, default=None, help="the baseline's own snapshot folder (see above)"
    )
    args = parser.parse_args(argv)

    n = args.size
    world(args.seed)
    # the query set of `bench/run.sh matching --sizes N` (its exclusions drawn from all N ids)
    queries: list[BenchQuery] = make_queries(args.queries, args.seed, id_pool=n)
    if args.development:
        queries = [
            BenchQuery(q.name, q.intent, dataclasses.replace(q.query, include_development=True)) for q in queries
        ]
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch:
        baseline = load_baseline(args.baseline, Path(scratch))
        saved = {"current": snapshot.latest(args.snapshot) if args.snapshot else None}
        saved["baseline"] = snapshot.latest(args.baseline_snapshot) if args.baseline_snapshot else saved["current"]
        engines: dict[str, tuple[ModuleType, Any]] = {}
        builds: dict[str, float] = {}
        if None in saved.values():
            started = time.perf_counter()
            records = records_for(n, args.seed, args.cache)
            print(f"records: {n:,} in {time.perf_counter() - started:.1f}s", flush=True)
            gc.collect()
            gc.freeze()
        for name, module in (("baseline", baseline), ("current", current)):
            started = time.perf_counter()
            path = saved[name]
            if path is None:
                view = module.build_view(records, seq=n, epoch=1)
            else:
                view = load_view(module, path)
                if view.main.n != n:
                    raise SystemExit(f"{path} holds {view.main.n:,} suppliers, not {n:,}")
            builds[name] = time.perf_counter() - started
            engines[name] = (module, view)
            print(f"{name}: {'built' if path is None else 'loaded'} in {builds[name]:.1f}s", flush=True)
        if None in saved.values():
            del records  # the views hold what the queries need
        if saved["current"] is None and args.snapshot:
            view = engines["current"][1]
            snapshot.save(args.snapshot, view.main, view.text, epoch=1, seq=n)
        gc.collect()
        gc.freeze()

        restart: dict[str, float] = {}
        folder = Path(scratch) / "snapshots"
        view = engines["current"][1]
        started = time.perf_counter()
        path = snapshot.save(folder, view.main, view.text, epoch=1, seq=n)
        restart["save_s"] = time.perf_counter() - started
        started = time.perf_counter()
        loaded = load_view(current, path)
        restart["load_s"] = time.perf_counter() - started
        restart["first_query_s"] = timed_query(current, loaded, queries[0].query)[0]
        restart["disk_bytes"] = sum(p.stat().st_size for p in path.iterdir())

        mismatches: list[str] = []
        samples: dict[str, list[list[float]]] = {name: [[] for _ in queries] for name in engines}
        labels: list[str] = []
        for number in range(args.repeat + 1):  # pass 0 warms caches and checks identity
            order = list(engines) if number % 2 == 0 else list(reversed(engines))
            for i, q in enumerate(queries):
                outcome: dict[str, Any] = {}
                for name in order:
                    module, engine_view = engines[name]
                    seconds, result = timed_query(module, engine_view, q.query)
                    outcome[name] = result
                    if number:
                        samples[name][i].append(seconds)
                if number == 0:
                    labels.append(bucket_of(outcome["current"].eligible_count, n))
                    same = answer(outcome["baseline"]) == answer(outcome["current"])
                    if not same:
                        mismatches.append(q.name)
                    if loaded is not None and answer(current.run_query(loaded, q.query)) != answer(outcome["current"]):
                        mismatches.append(f"{q.name} (after snapshot load)")

    print(f"\n### N = {n:,}: baseline {args.baseline} vs working tree ({args.repeat} passes, interleaved)\n")
    print("| measure | baseline | current |")
    print("| --- | --- | --- |")
    print(f"| build_view (or snapshot load) | {builds['baseline']:.1f} s | {builds['current']:.1f} s |")
    print(
        f"| bytes per supplier | {engines['baseline'][1].main.nbytes / n:.1f} | "
        f"{engines['current'][1].main.nbytes / n:.1f} |"
    )
    print(
        f"| restart from snapshot (load; first query) | | {restart['load_s']:.2f} s; "
        f"{restart['first_query_s'] * 1e3:.1f} ms (save {restart['save_s']:.1f} s, "
        f"{restart['disk_bytes'] / n:.0f} B/supplier on disk) |"
    )
    print("\nLatency in ms, p50 / p95 / p99 / max (warm, every query x passes):\n")
    print("| bucket | queries | baseline | current |")
    print("| --- | --- | --- | --- |")
    for bucket in [*BUCKETS, "all"]:
        cells = []
        chosen = [i for i, label in enumerate(labels) if bucket in ("all", label)]
        for name in engines:
            p = percentiles([s for i in chosen for s in samples[name][i]])
            cells.append(
                "-" if p["p50"] is None else f"{p['p50']:.3f} / {p['p95']:.2f} / {p['p99']:.2f} / {p['max']:.1f}"
            )
        print(f"| {bucket} | {len(chosen)} | {cells[0]} | {cells[1]} |")
    slowest = sorted(range(len(queries)), key=lambda i: -statistics.median(samples["current"][i]))[:5]
    print(
        "\nSlowest (current, median ms): "
        + ", ".join(f"{queries[i].name} {statistics.median(samples['current'][i]) * 1e3:.1f}" for i in slowest)
    )
    if mismatches:
        print(f"\n**{len(mismatches)} MISMATCHES**: {', '.join(mismatches[:20])}", file=sys.stderr)
        return 1
    print(f"\nidentical answers on all {len(queries)} queries (and after the snapshot load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
