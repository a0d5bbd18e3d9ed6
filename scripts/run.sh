#!/usr/bin/env bash
# Start the platform locally on SQLite (under ./data) with demo data: the registry,
# matching and the gateway in front of them, each as its own process. Ctrl-C stops
# them all.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATA_DIR="${DATA_DIR:-data}" LOG_JSON="${LOG_JSON:-false}"
PY=.venv/bin/python
mkdir -p "$DATA_DIR"

# The first admin key: GATEWAY_BOOTSTRAP_API_KEY, or one generated once and kept
# in $DATA_DIR/admin-api-key (readable by you only).
KEY_FILE="$DATA_DIR/admin-api-key"
if [[ -z "${GATEWAY_BOOTSTRAP_API_KEY:-}" ]]; then
  if [[ ! -s "$KEY_FILE" ]]; then
    (umask 077; $PY -c 'from gateway.keys.service import generate_key; print(generate_key())' > "$KEY_FILE")
    echo "Generated the first admin API key (kept in $KEY_FILE):"
    echo "  $(cat "$KEY_FILE")"
  fi
  GATEWAY_BOOTSTRAP_API_KEY="$(cat "$KEY_FILE")"
fi
export GATEWAY_BOOTSTRAP_API_KEY

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$PY -m services.registry migrate
$PY -m services.registry demo
$PY -m services.matching migrate
$PY -m services.reporting migrate
$PY -m gateway migrate
$PY -m services.registry serve --no-migrate & pids+=($!)
$PY -m services.matching serve --no-migrate & pids+=($!)
$PY -m services.reporting serve --no-migrate & pids+=($!)
$PY -m gateway serve --no-migrate & pids+=($!)

cat <<MSG
The platform is starting:
  API and docs:  http://127.0.0.1:${GATEWAY_PORT:-8000}/docs
  admin API key: in $KEY_FILE (or GATEWAY_BOOTSTRAP_API_KEY)
  try:           curl -H "Authorization: Bearer \$(cat $KEY_FILE)" http://127.0.0.1:${GATEWAY_PORT:-8000}/v1/clusters
  indicators:    curl -H "Authorization: Bearer \$(cat $KEY_FILE)" http://127.0.0.1:${GATEWAY_PORT:-8000}/v1/indicators
MSG
wait -n "${pids[@]}"
