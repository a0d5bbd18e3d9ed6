"""Consortium shortlists beside single-firm ones, on the same catalogue and query mix.

    python bench/consortia.py                              # 1M suppliers, 50k networks
    python bench/consortia.py --size 100000 --networks 5000
    python bench/consortia.py --size 200000 --networks 10000 --kinds --baseline /tmp/old_consortia.py

It generates the synthetic catalogue (``catalogue_gen``) and ``--networks`` horizontal
networks of 3 to 30 members, each drawn from the suppliers of one cluster (or one town
and sector: as brokers form them), builds the engine's view with them, and runs the
benchmark's query mix (``matching_queries``, 240 queries) twice per pass, interleaved:
as asked, and with ``include_consortia`` (and development candidates, since the mix asks
for them in part). It prints the latencies of both, their ratio, the time to build the
membership index and resolve it against the catalogue, and how long a membership change
takes to be visible (the lifecycle changes the index and resolves it in a thread).
The issue's target: consortium shortlists' p99 at most twice the single-firm p99.

``--kinds`` also times each query of the mix with a minimum capacity (in its unit, else
pieces), and with that minimum and development candidates. ``--baseline FILE`` loads
another revision's ``consortia.py`` (``git show main:services/matching/catalogue/consortia.py``)
beside this one and times its consortia on the same view and queries, the two in
alternating order, and counts the queries whose answers differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from bench.catalogue_gen import DEFAULT_SEED, generate  # noqa: E402
from bench.matching import percentiles, rss  # noqa: E402
from bench.matching_queries import make_queries  # noqa: E402
from services.matching.catalogue import catalogue  # noqa: E402
from services.matching.catalogue.catalogue import View, build_view, run_query, with_networks  # noqa: E402
from services.matching.catalogue.consortia import ConsortiumQuery, MemberRows, NetworkEntry, NetworkIndex  # noqa: E402
from services.matching.catalogue.query import Query  # noqa: E402
from services.matching.catalogue.records import SupplierRecord  # noqa: E402

TARGET_P99_RATIO = 2.0
MINIMUM_PER_DESIRED = 3.0  # a minimum several members reach together
MINIMUM_PIECES = 3000.0  # where the query desires no capacity


def with_minimum(query: Query) -> Query:
    """``query`` with a minimum monthly capacity: three times its desired one, else 3,000 pieces."""
    if query.desired_monthly_capacity and query.capacity_unit:
        return dataclasses.replace(query, min_monthly_capacity=MINIMUM_PER_DESIRED * query.desired_monthly_capacity)
    return dataclasses.replace(query, min_monthly_capacity=MINIMUM_PIECES, capacity_unit="pieces")


KINDS: dict[str, Callable[[Query], Query]] = {
    "as asked": lambda q: q,
    "minimum capacity": with_minimum,
    "minimum, development": lambda q: dataclasses.replace(with_minimum(q), include_development=True),
}


def load_baseline(path: Path) -> Any:
    """The ``ConsortiumQuery`` of another revision's ``consortia.py``."""
    spec = importlib.util.spec_from_file_location("baseline_consortia", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.ConsortiumQuery


def timed(engine: Any, view: View, query: Query) -> tuple[float, dict[str, Any]]:
    """``run_query`` with ``engine`` ranking the consortia: seconds, and the consortia as plain data."""
    catalogue.ConsortiumQuery = engine  # type: ignore[attr-defined]
    try:
        started = time.perf_counter()
        result = run_query(view, query)
        elapsed = time.perf_counter() - started
    finally:
        catalogue.ConsortiumQuery = ConsortiumQuery  # type: ignore[attr-defined]
    assert result.consortia is not None
    return elapsed, dataclasses.asdict(result.consortia)


def networks_of(records: list[SupplierRecord], count: int, seed: int) -> list[NetworkEntry]:
    """``count`` networks of 3-30 members, each within one cluster, else one subdivision and sector."""
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for record in records:
        key = (record.cluster_ids[0],) if record.cluster_ids else (record.subdivision or "", record.isic_codes[0][:2])
        groups[key].append(record.id)
    pools = [ids for ids in groups.values() if len(ids) >= 3]
    weights = [len(ids) for ids in pools]
    rng = random.Random(seed)
    entries = []
    for i, pool in enumerate(rng.choices(pools, weights=weights, k=count)):
        members = rng.sample(pool, min(len(pool), rng.randint(3, 30)))
        entries.append(NetworkEntry(f"net_{i:07d}", f"Network {i}", None, tuple(sorted(members, key=str.encode))))
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--networks", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the mix (after one warm-up)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--kinds", action="store_true", help="also with a minimum capacity, and development")
    parser.add_argument("--baseline", type=Path, help="another revision's consortia.py, timed beside this one")
    args = parser.parse_args()
    engines: dict[str, Any] = {"this": ConsortiumQuery}
    if args.baseline:
        engines = {"baseline": load_baseline(args.baseline), **engines}
    kinds = KINDS if args.kinds else {"as asked": KINDS["as asked"]}

    started = time.perf_counter()
    records = generate(args.size, args.seed)
    entries = networks_of(records, args.networks, args.seed)
    generated = time.perf_counter() - started
    view = build_view(records, seq=1, epoch=1)
    before = rss()
    index_started = time.perf_counter()
    index = NetworkIndex(entries)
    index_seconds = time.perf_counter() - index_started
    view = with_networks(view, index, view.seq)
    resolve_started = time.perf_counter()
    _ = view.members
    resolve_seconds = time.perf_counter() - resolve_started
    index_bytes = rss() - before

    queries = make_queries(args.queries, args.seed)
    asked = [q.query for q in queries]
    joint = {k: [dataclasses.replace(make(q), include_consortia=True) for q in asked] for k, make in kinds.items()}
    for i, plain in enumerate(asked):  # warm-up: per-day certificate caches, figures
        run_query(view, plain)
        for kind in kinds:
            for engine in engines.values():
                timed(engine, view, joint[kind][i])
    single: list[float] = []
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    differing: dict[str, int] = defaultdict(int)
    eligible: list[int] = []
    for attempt in range(args.repeat):
        for i, plain in enumerate(asked):
            t0 = time.perf_counter()
            run_query(view, plain)
            single.append(time.perf_counter() - t0)
            for kind in kinds:
                order = list(engines.items())
                if (i + attempt) % 2:  # alternating: neither engine always runs on a warmer cache
                    order.reverse()
                answers = []
                for name, engine in order:
                    elapsed, answer = timed(engine, view, joint[kind][i])
                    samples[(kind, name)].append(elapsed)
                    answers.append(answer)
                if any(answer != answers[0] for answer in answers):
                    differing[kind] += 1
                if kind == "as asked":
                    eligible.append(answers[0]["eligible_count"])

    # A member leaving one network: the lifecycle changes the index (the other networks'
    # arrays and rows carried over) and the next view resolves it.
    leaving = dataclasses.replace(entries[0], member_ids=entries[0].member_ids[1:])
    change_started = time.perf_counter()
    updated = with_networks(view, index.changed({leaving.id: leaving}), view.seq + 1)
    MemberRows.resolve(updated.networks, updated.main, updated.removed, updated.delta)
    visible_seconds = time.perf_counter() - change_started

    s, j = percentiles(single), percentiles(samples[("as asked", "this")])
    members = sum(len(e.member_ids) for e in entries)
    print(f"\n## Consortia: {args.size:,} suppliers, {len(entries):,} networks ({members:,} memberships)\n")
    print(f"generated in {generated:.1f} s; {len(asked)} queries x {args.repeat} passes, interleaved\n")
    print("| shortlist | n | p50 ms | p95 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, p in (("single firms", s), ("with consortia", j)):
        print(f"| {label} | {p['n']} | {p['p50']:.2f} | {p['p95']:.2f} | {p['p99']:.2f} | {p['max']:.1f} |")
    assert s["p99"] and j["p99"] and s["p50"] and j["p50"]
    ratio = j["p99"] / s["p99"]
    verdict = "meets" if ratio <= TARGET_P99_RATIO else "MISSES"
    p50_ratio = j["p50"] / s["p50"]
    print(f"\np99 ratio {ratio:.2f} ({verdict} the target of {TARGET_P99_RATIO:g}); p50 ratio {p50_ratio:.2f}")
    print(f"eligible consortia per query: median {statistics.median(eligible):,.0f}, max {max(eligible):,}")
    print(
        f"membership index: built in {index_seconds:.2f} s, resolved in {resolve_seconds:.2f} s, "
        f"~{index_bytes / 2**20:.0f} MiB; a membership change visible after {visible_seconds:.2f} s"
    )
    if len(kinds) > 1 or len(engines) > 1:
        print("\n| queries | consortia by | n | p50 ms | p95 ms | p99 ms | max ms | p99 / single p99 |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for kind in kinds:
            for name in engines:
                p = percentiles(samples[(kind, name)])
                print(
                    f"| {kind} | {name} | {p['n']} | {p['p50']:.2f} | {p['p95']:.2f} | {p['p99']:.2f} "
                    f"| {p['max']:.1f} | {p['p99'] / s['p99']:.2f} |"  # type: ignore[operator]
                )
        if len(engines) > 1:
            print("\nanswers differing from the baseline's: " + ", ".join(f"{k} {differing[k]}" for k in kinds))


if __name__ == "__main__":
    main()
