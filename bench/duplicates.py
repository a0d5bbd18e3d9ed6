"""Quality and speed of the duplicate detector (``services/registry/duplicates/detector.py``).

1. Precision, recall and F1 on a labelled set of generated firms with realistic
   corruptions (``bench/firmgen.py``), and on a set of *common names*: firms
   sharing their town's name and trade words by the thousand ("Otavalo Textiles
   449", "Sri Balaji Hosiery Works"), whose copies differ by two letters swapped in
   any word, a legal form written out or abbreviated, or two digits swapped, with
   the place within 100 m and every other field equal.
2. The same on the FEBRL benchmark data shipped with the ``recordlinkage``
   package, next to the recordlinkage toolkit's own published example pipeline
   (``examples/dedup_deterministic.py``: blocking on given name, surname and
   social security id, seven comparisons, fixed logistic weights) run on the same
   data here. FEBRL records are people, mapped onto firm fields (name = given name
   and surname, national id = social security id, street, locality = suburb,
   postal code); the detector has no date of birth, which the reference uses.
3. Blocking at scale: pairs compared and time for N generated firms.

    python bench/duplicates.py --firms 1000000 --quality 20000
    python bench/duplicates.py --code /path/to/other/checkout ...   # measure another revision's detector
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas comes with recordlinkage, imported only where FEBRL runs
    import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from bench.firmgen import Firm, common_names, labelled, true_pairs  # noqa: E402


def _code_under_test() -> None:
    """With ``--code DIR``, the detector measured is the one of that checkout (a side-by-side run)."""
    if "--code" in sys.argv:
        sys.path.insert(0, str(Path(sys.argv[sys.argv.index("--code") + 1]).resolve()))


_code_under_test()
from services.registry.duplicates import detector  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prf(predicted: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float, float]:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def detect(
    profiles: list[detector.Profile], chunk: int = 200_000
) -> tuple[set[tuple[int, int]], int, int, dict[str, float]]:
    """Blocking, then scoring in chunks: (likely pairs, candidate pairs, keys, timings)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    pairs = detector.candidate_pairs(profiles)
    timings["blocking"] = time.perf_counter() - started
    started = time.perf_counter()
    table = detector.ProfileTable(profiles)
    likely: set[tuple[int, int]] = set()
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        scores = detector.scores(detector.table_weights(table, part[:, 0], part[:, 1]))
        likely |= {(int(i), int(j)) for i, j in part[scores >= detector.THRESHOLD].tolist()}
    timings["scoring"] = time.perf_counter() - started
    return likely, len(pairs), 0, timings


def firm_profiles(firms: list[Firm]) -> list[detector.Profile]:
    return [detector.profile_of_firm(f.fields, id=f.id) for f in firms]


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def synthetic_quality(n: int) -> None:
    print("\n### Duplicate detector on generated firms\n")
    print(
        row("data", "records", "true pairs", "pairs compared", "blocking recall", "precision", "recall", "F1", "time")
    )
    print(row(*["---"] * 9))
    _quality("generated firms", list(labelled(n, seed=11)))
    _quality("common names", list(common_names(n, seed=23)))


def _quality(label: str, firms: list[Firm]) -> None:
    truth = true_pairs(firms)
    started = time.perf_counter()
    profiles = firm_profiles(firms)
    likely, compared, _, _ = detect(profiles)
    elapsed = time.perf_counter() - started
    candidates = {tuple(p) for p in detector.candidate_pairs(profiles).tolist()}
    precision, recall, f1 = prf(likely, truth)
    blocking_recall = len(candidates & truth) / len(truth)
    print(
        row(
            label,
            f"{len(firms):,}",
            f"{len(truth):,}",
            f"{compared:,}",
            f"{blocking_recall:.3f}",
            f"{precision:.3f}",
            f"{recall:.3f}",
            f"{f1:.3f}",
            f"{elapsed:.1f} s",
        )
    )


# --------------------------------------------------------------------------- FEBRL


def _febrl_profiles(frame: pd.DataFrame) -> list[detector.Profile]:
    def text(value: object) -> str:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()

    profiles = []
    for rec_id, r in frame.iterrows():
        name = " ".join(t for t in (text(r.given_name), text(r.surname)) if t) or "?"
        street = " ".join(t for t in (text(r.street_number), text(r.address_1), text(r.address_2)) if t)
        ssn = text(r.soc_sec_id)
        profiles.append(
            detector.profile(
                id=str(rec_id),
                name=name,
                country="AU",
                national_ids=[("SSN", ssn)] if ssn else [],
                street=street,
                locality=text(r.suburb),
                postal_code=text(r.postcode),
            )
        )
    return profiles


def _reference(
    frame: pd.DataFrame, links: pd.MultiIndex, frame_b: pd.DataFrame | None = None
) -> tuple[int, float, float, float]:
    """The recordlinkage toolkit's published deterministic example, on the same data."""
    import recordlinkage as rl
    from recordlinkage.compare import Exact, String
    from recordlinkage.index import Block

    indexer = rl.Index()
    indexer.add(Block("given_name"))
    indexer.add(Block("surname"))
    indexer.add(Block("soc_sec_id"))
    candidates = indexer.index(frame) if frame_b is None else indexer.index(frame, frame_b)
    comparer = rl.Compare()
    comparer.add(Exact("given_name", "given_name", label="given_name"))
    comparer.add(String("surname", "surname", method="jarowinkler", threshold=0.85, label="surname"))
    comparer.add(Exact("date_of_birth", "date_of_birth", label="date_of_birth"))
    comparer.add(Exact("suburb", "suburb", label="suburb"))
    comparer.add(Exact("state", "state", label="state"))
    comparer.add(String("address_1", "address_1", threshold=0.85, label="address_1"))
    comparer.add(String("address_2", "address_2", threshold=0.85, label="address_2"))
    features = comparer.compute(candidates, frame) if frame_b is None else comparer.compute(candidates, frame, frame_b)
    classifier = rl.LogisticRegressionClassifier(coefficients=[2.0, 3.0, 7.0, 6.0, 2.5, 5.0, 5.5], intercept=-9.5)
    predicted = classifier.predict(features)
    precision = rl.precision(links, predicted)
    recall = rl.recall(links, predicted)
    return len(candidates), precision, recall, rl.fscore(links, predicted)


def febrl() -> None:
    warnings.filterwarnings("ignore")
    from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

    print("\n### Duplicate detector on FEBRL (recordlinkage datasets), beside the toolkit's published example\n")
    print(
        row(
            "data",
            "records",
            "true pairs",
            "ours: pairs compared",
            "ours: P",
            "ours: R",
            "ours: F1",
            "reference: pairs",
            "reference: P",
            "reference: R",
            "reference: F1",
        )
    )
    print(row(*["---"] * 11))
    for label, loader in (("FEBRL1", load_febrl1), ("FEBRL2", load_febrl2), ("FEBRL3", load_febrl3)):
        frame, links = loader(return_links=True)
        profiles = _febrl_profiles(frame)
        position = {p.id: i for i, p in enumerate(profiles)}
        truth = {tuple(sorted((position[a], position[b]))) for a, b in links}
        likely, compared, _, _ = detect(profiles)
        precision, recall, f1 = prf(likely, truth)  # type: ignore[arg-type]
        ref = _reference(frame, links)
        print(
            row(
                label,
                f"{len(frame):,}",
                f"{len(truth):,}",
                f"{compared:,}",
                f"{precision:.3f}",
                f"{recall:.3f}",
                f"{f1:.3f}",
                f"{ref[0]:,}",
                f"{ref[1]:.3f}",
                f"{ref[2]:.3f}",
                f"{ref[3]:.3f}",
            )
        )
    a, b, links = load_febrl4(return_links=True)
    profiles = _febrl_profiles(a) + _febrl_profiles(b)
    position = {p.id: i for i, p in enumerate(profiles)}
    truth = {tuple(sorted((position[x], position[y]))) for x, y in links}
    likely, compared, _, _ = detect(profiles)
    across = {p for p in likely if (p[0] < len(a)) != (p[1] < len(a))}  # linkage: pairs across the two files
    precision, recall, f1 = prf(across, truth)  # type: ignore[arg-type]
    ref = _reference(a, links, b)
    print(
        row(
            "FEBRL4 (link A-B)",
            f"{len(a) + len(b):,}",
            f"{len(truth):,}",
            f"{compared:,}",
            f"{precision:.3f}",
            f"{recall:.3f}",
            f"{f1:.3f}",
            f"{ref[0]:,}",
            f"{ref[1]:.3f}",
            f"{ref[2]:.3f}",
            f"{ref[3]:.3f}",
        )
    )


# --------------------------------------------------------------------------- scale


def scale(n: int) -> None:
    originals = max(1, int(n / 1.3))
    started = time.perf_counter()
    firms = list(labelled(originals, seed=5))[:n]
    generated = time.perf_counter() - started
    truth = true_pairs(firms)
    started = time.perf_counter()
    profiles = firm_profiles(firms)
    profiled = time.perf_counter() - started
    del firms
    likely, compared, _, timings = detect(profiles)
    precision, recall, f1 = prf(likely, truth)
    total = profiled + timings["blocking"] + timings["scoring"]
    print(f"\n### Blocking at scale ({len(profiles):,} generated firms; generating them took {generated:.0f} s)\n")
    print(
        row(
            "firms",
            "pairs compared",
            "pairs per firm",
            "normalise",
            "blocking",
            "scoring",
            "total",
            "firms/s",
            "precision",
            "recall",
            "F1",
            "peak RSS",
        )
    )
    print(row(*["---"] * 12))
    print(
        row(
            f"{len(profiles):,}",
            f"{compared:,}",
            f"{compared / len(profiles):.2f}",
            f"{profiled:.1f} s",
            f"{timings['blocking']:.1f} s",
            f"{timings['scoring']:.1f} s",
            f"{total:.1f} s",
            f"{len(profiles) / total:,.0f}",
            f"{precision:.3f}",
            f"{recall:.3f}",
            f"{f1:.3f}",
            f"{peak_rss_mb():,.0f} MB",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=1_000_000, help="firms for the blocking-at-scale run")
    parser.add_argument("--quality", type=int, default=20_000, help="originals in the labelled quality set")
    parser.add_argument("--skip-febrl", action="store_true")
    parser.add_argument("--code", help="a checkout whose detector is measured instead of this one's")
    args = parser.parse_args()
    synthetic_quality(args.quality)
    if not args.skip_febrl:
        febrl()
    if args.firms:
        scale(args.firms)


if __name__ == "__main__":
    main()
