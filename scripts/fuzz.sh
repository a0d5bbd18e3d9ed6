#!/usr/bin/env bash
# Fuzz the platform through the gateway with schemathesis, all phases: the whole
# platform starts on fresh PostgreSQL databases (tests/platform_processes.py), then one run
# with an admin key and one with an agency key. Fails on any 5xx and on any response
# that the OpenAPI document does not describe (status, media type, headers, body).
#   FUZZ_EXAMPLES  examples per operation and phase (default 100)
#   FUZZ_WORKERS   concurrent schemathesis workers (default 2)
#   FUZZ_REPORTS   where the reports go (default data/fuzz)
#   TEST_POSTGRES_URL  the PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES="${FUZZ_EXAMPLES:-100}"
REPORTS="${FUZZ_REPORTS:-data/fuzz}"
mkdir -p "$REPORTS"
ENV_FILE="$(mktemp)"
.venv/bin/python -m tests.platform_processes "$ENV_FILE" & platform=$!
cleanup() { kill "$platform" 2>/dev/null || true; wait "$platform" 2>/dev/null || true; rm -f "$ENV_FILE"; }
trap cleanup EXIT INT TERM
until [[ -s "$ENV_FILE" ]]; do
  kill -0 "$platform" 2>/dev/null || { echo "the platform did not start" >&2; exit 1; }
  sleep 1
done
# shellcheck disable=SC1090
source "$ENV_FILE"
echo "Platform at $FUZZ_URL (service logs in $FUZZ_LOGS); $EXAMPLES examples per operation"

status=0
for caller in admin agency; do
  key_var="FUZZ_${caller^^}_KEY"
  echo "== schemathesis as $caller"
  .venv/bin/st --config-file tests/schemathesis.toml run "$FUZZ_URL/openapi.json" \
    --header "Authorization: Bearer ${!key_var}" \
    --max-examples "$EXAMPLES" --workers "${FUZZ_WORKERS:-2}" \
    --report junit,ndjson --report-dir "$REPORTS/$caller" \
    || status=$?
done
exit "$status"
