#!/bin/sh
# Creates one database per service (LINKAGES_DATABASES, space-separated), owned by
# POSTGRES_USER. The PostgreSQL image runs this once, on the first start with an
# empty data volume (/docker-entrypoint-initdb.d). It is idempotent, so after adding
# a service to an existing deployment run it again:
#
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/10-linkages-databases.sh
set -eu
for linkages_db in ${LINKAGES_DATABASES:-registry matching reporting events gateway}; do
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres --quiet \
        --set=db="$linkages_db" --set=owner="${POSTGRES_USER:-postgres}" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
    echo "linkages: database '$linkages_db' is there"
done
