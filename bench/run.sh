#!/usr/bin/env bash
# Every benchmark, each a script printing Markdown tables.
#
#   bench/run.sh [SIZE]              all of them; SIZE (default 1000000) rows imported, firms
#                                    deduplicated at scale and catalogue size for matching
#   bench/run.sh NAME [ARGS...]      one of them with its own arguments:
#                                    imports (--rows N), duplicates (--firms N --quality N), matching,
#                                    endpoint (--size N: POST /v1/shortlists over HTTP through the gateway),
#                                    feed (--size N: the matching catalogue built from the change feed),
#                                    alerts (--suppliers N --standards 10000,100000: reverse matching),
#                                    search (--firms N: firm search as you type, GET /v1/firms?q=),
#                                    consortia (--size N --networks M: shortlists with consortia),
#                                    check_isolation (--firms N: the API's reads while the duplicate
#                                    check works, in the API's process or its own)
#
# `make bench SIZE=50000` is a quick run. PostgreSQL comes from BENCH_POSTGRES_URL or
# TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=.venv/bin/python
export PYTHONPATH=.

case "${1:-}" in
  imports|duplicates|matching|endpoint|feed|alerts|search|consortia|check_isolation)
    name="$1"; shift
    exec "$PYTHON" "bench/${name}.py" "$@" ;;
esac

SIZE="${1:-1000000}"
echo "# Benchmarks (size ${SIZE}) on $(nproc) cores, $(date -u +%Y-%m-%d), load average $(cut -d' ' -f1 /proc/loadavg)"
"$PYTHON" bench/imports.py --rows "$SIZE"
"$PYTHON" bench/duplicates.py --firms "$SIZE"
"$PYTHON" bench/matching.py --sizes "$SIZE"
"$PYTHON" bench/endpoint.py --size "$SIZE"
"$PYTHON" bench/alerts.py --suppliers "$(( SIZE < 100000 ? SIZE : 100000 ))"
"$PYTHON" bench/search.py --firms "$(( SIZE < 100000 ? SIZE : 100000 ))"
"$PYTHON" bench/consortia.py --size "$SIZE" --networks "$(( SIZE / 20 ))"
