"""The matching benchmark still runs, and its peers still agree with the engine.

``bench/matching.py --quick`` on a tiny catalogue (2,000 suppliers, 40 queries) with
both peers: PostgreSQL (the local server; the benchmark creates and drops its own
database) and tantivy. The benchmark itself fails when any peer's shortlist differs
from the engine's; this test checks that it ran to the end and said so.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import POSTGRES_ENV

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]


def _requirements() -> str:
    """The PostgreSQL admin URL, or skip (fail in CI) when the benchmark cannot run here."""
    missing = [m for m in ("tantivy", "psutil") if importlib.util.find_spec(m) is None]
    if missing:
        message = f"the benchmark needs the 'bench' dependency group ({', '.join(missing)} missing)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {POSTGRES_ENV} is not set")
        pytest.skip(f"the benchmark's PostgreSQL peer needs {POSTGRES_ENV}")
    return url


def test_quick_benchmark_completes_and_peers_agree(tmp_path: Path) -> None:
    url = _requirements()
    out = tmp_path / "matching.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "matching.py"), "--quick", "--pg-url", url, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["ok"] is True
    [size] = result["sizes"]
    assert size["n"] == 2000
    assert set(size["peers"]) == {"postgres", "tantivy"}
    assert size["mismatches"] == []
    assert sum(size["engine"]["bucket_counts"].values()) == 40
    assert all(update["missed"] == 0 for update in size["updates"].values())
    assert size["feed_build"]["total_s"] > 0  # the catalogue rebuilt from 2,000 firm changes (it asserts their count)
    assert "| peers vs engine | identical" in completed.stdout


def test_endpoint_benchmark_answers_over_http_equal_the_engine() -> None:
    """``bench/endpoint.py`` on a tiny catalogue: real registry, matching and gateway processes,
    and registry changes timed until shortlists through the gateway show them."""
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "endpoint.py"),
            "--size",
            "2000",
            "--queries",
            "24",
            "--repeat",
            "1",
            "--changes",
            "3",
            "--clients",
            "4",
            "--load-seconds",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert "Answers over HTTP equal to the engine's: all" in completed.stdout
    assert "| through the gateway | all | 24 |" in completed.stdout
    assert "| GET /v1/firms/{id} through the gateway | 24 |" in completed.stdout
    assert "| floor: raw ASGI app through the gateway | 24 |" in completed.stdout
    assert "| all | 9 |" in completed.stdout  # three firms created, changed and deleted, each seen in a shortlist
    assert "| clients | shortlists | per second |" in completed.stdout
    assert "\n| 4 httpx | " in completed.stdout and "\n| 4 lean | " in completed.stdout  # both loads, none failed


def test_feed_benchmark_streams_every_supplier_into_the_catalogue(tmp_path: Path) -> None:
    """``bench/feed.py``: generated suppliers streamed as feed pages (the last one short), the
    catalogue built from its store with every one of them (``measure_feed_build`` asserts the count)."""
    out = tmp_path / "feed.json"
    command = [sys.executable, str(ROOT / "bench" / "feed.py"), "--size", "2500", "--batch", "1000", "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["n"] == 2500 and result["batch"] == 1000
    assert result["pages_s"] > 0 and result["build_s"] > 0
    assert "| pages parsed and stored |" in completed.stdout


def test_consortia_benchmark_runs_both_shortlists_side_by_side() -> None:
    """``bench/consortia.py`` on a tiny catalogue: both kinds of shortlist timed, and consortia found."""
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "consortia.py"),
            *("--size", "3000", "--networks", "150", "--queries", "24", "--repeat", "1"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    out = completed.stdout
    assert "| single firms | 24 |" in out and "| with consortia | 24 |" in out
    assert "p99 ratio" in out
    eligible = out.split("eligible consortia per query: median ")[1].split(",")[0]
    assert float(eligible.replace(",", "")) > 0  # the mix finds consortia, not only empty lists
