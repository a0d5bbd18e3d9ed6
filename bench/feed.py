"""The matching catalogue built from the registry's change feed, at any size.

    bench/run.sh feed --size 10000000

``bench/matching.py`` measures this beside the engine up to ``--feed-max-size`` (2M):
it holds the generated suppliers while the catalogue reads them all back from its
store, which at 10M does not fit in the benchmark machine's memory (docs/benchmarks.md).
Here the generated suppliers are streamed into the feed's pages
(``catalogue_gen.iter_suppliers``), so only the catalogue's own build holds them all.
It prints a markdown table and writes ``bench/results/feed-*.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from bench.catalogue_gen import DEFAULT_SEED, iter_suppliers  # noqa: E402
from bench.matching import measure_feed_build  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="firm changes a page")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=None, help="the JSON result file")
    args = parser.parse_args(argv)
    n = args.size
    print(f"== build from the feed, N = {n:,} (suppliers generated as the pages are sent)", flush=True)
    started = time.perf_counter()
    result = measure_feed_build(iter_suppliers(n, args.seed), n, batch=args.batch)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    print(f"\n### Build from the feed, N = {n:,} ({args.batch:,} changes a page)\n")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| pages parsed and stored | {result['pages_s']:.1f} s ({n / max(result['pages_s'], 1e-9):,.0f} firms/s) |")
    print(f"| build from the store and snapshot (the last page) | {result['build_s']:.1f} s |")
    print(f"| total, not generating the suppliers | {result['total_s']:.1f} s (wall with it {wall:.0f} s) |")
    print(f"| peak RSS of the process | {peak / 2**30:.1f} GiB ({peak / n:.0f} B/supplier) |")
    out = args.out or ROOT / "bench" / "results" / f"feed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "feed", "n": n, "wall_s": wall, "peak_rss_bytes": peak, **result}
    out.write_text(json.dumps(report, indent=1))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
