#!/usr/bin/env bash
# Start the platform locally on SQLite (under ./data) with demo data: the registry,
# matching, reporting, events and the gateway in front of them, each as its own process, and
# the demo's requests, answers, awards and scorecards written through the gateway in
# the background once it is ready. Ctrl-C stops them all.
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
demo_pid=()
cleanup() { kill "${pids[@]}" "${demo_pid[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$PY -m services.registry migrate
$PY -m services.registry demo
$PY -m services.matching migrate
$PY -m services.reporting migrate
$PY -m services.events migrate
$PY -m gateway migrate
$PY -m services.registry serve --no-migrate & pids+=($!)
$PY -m services.matching serve --no-migrate & pids+=($!)
$PY -m services.reporting serve --no-migrate & pids+=($!)
$PY -m services.events serve --no-migrate & pids+=($!)
$PY -m gateway serve --no-migrate & pids+=($!)
# Not one of the platform's processes: when it ends (done, or failed and logged why)
# the platform runs on. It does nothing when its requests exist already.
$PY -m services.matching demo --gateway "http://127.0.0.1:${GATEWAY_PORT:-8000}" & demo_pid=($!)

cat <<MSG
The platform is starting:
  API and docs:  http://127.0.0.1:${GATEWAY_PORT:-8000}/docs
  admin API key: in $KEY_FILE (or GATEWAY_BOOTSTRAP_API_KEY)
  try:           curl -H "Authorization: Bearer \$(cat $KEY_FILE)" http://127.0.0.1:${GATEWAY_PORT:-8000}/v1/clusters
  demo linkages: requests, answers, awards and scorecards load in the background (a line says when)
  indicators:    curl -H "Authorization: Bearer \$(cat $KEY_FILE)" http://127.0.0.1:${GATEWAY_PORT:-8000}/v1/indicators
  events:        curl -H "Authorization: Bearer \$(cat $KEY_FILE)" http://127.0.0.1:${GATEWAY_PORT:-8000}/v1/events
MSG
wait -n "${pids[@]}"
