#!/usr/bin/env bash
# Start the platform locally on SQLite (under ./data) with demo data.
# Every service runs as its own process; Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATA_DIR="${DATA_DIR:-data}" LOG_JSON="${LOG_JSON:-false}"
PY=.venv/bin/python
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$PY -m services.registry migrate
$PY -m services.registry demo
$PY -m services.registry serve --no-migrate & pids+=($!)

echo "registry: http://127.0.0.1:${REGISTRY_PORT:-8001}/docs"
wait -n "${pids[@]}"
