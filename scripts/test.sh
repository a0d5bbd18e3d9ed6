#!/usr/bin/env bash
# Run the test suite. Database tests run on SQLite always, and on PostgreSQL when
# TEST_POSTGRES_URL is set or a PostgreSQL server answers on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${TEST_POSTGRES_URL:-}" ]] && command -v pg_isready >/dev/null \
    && pg_isready -q -h 127.0.0.1 -p 5432 -U postgres; then
  export TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:5432/postgres"
fi
echo "PostgreSQL tests: ${TEST_POSTGRES_URL:-skipped (no server)}"
exec .venv/bin/pytest "$@"
