#!/usr/bin/env bash
# Superset's PostgreSQL role for the compose stack (the `superset-db-init` service):
# a login `superset` that owns the `superset` metadata database and may only read the
# adjoin database, as deploy/superset/README.md recommends for a server.
#
# Runs as the adjoin owner (PGHOST, PGUSER, PGPASSWORD, PGDATABASE from the compose
# file) on every `docker compose up`; every step is idempotent, and the password is
# set again each time so that changing ADJOIN_SUPERSET_DB_PASSWORD takes effect.
set -euo pipefail
: "${SUPERSET_DB_PASSWORD:?SUPERSET_DB_PASSWORD must be set}"

psql -v ON_ERROR_STOP=1 -v password="$SUPERSET_DB_PASSWORD" -v owner="$PGUSER" <<'SQL'
SELECT 'CREATE ROLE superset LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'superset') \gexec
ALTER ROLE superset LOGIN PASSWORD :'password';
-- CREATE DATABASE cannot run in a function or DO block, hence \gexec.
SELECT 'CREATE DATABASE superset OWNER superset'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'superset') \gexec
-- The sink creates its tables and views (migrations) as the adjoin owner, possibly
-- after this runs: default privileges cover those, the GRANT what exists already.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO superset;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO superset;
SQL
echo "superset role and metadata database ready"
