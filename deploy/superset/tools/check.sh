#!/usr/bin/env bash
# End-to-end check of the Superset provisioning, against a throw-away PostgreSQL
# database and a throw-away Superset metadata database:
#
#   1. creates database $CHECK_DB, applies the sink's migration and fills it: with
#      ADJOIN_BIN set (the adjoin binary), through the real pipeline (`adjoin demo`
#      into that database), else with tools/sample_data.sql (rollup rows only);
#   2. runs provision.sh twice (the second run must converge, not duplicate);
#   3. starts Superset on $CHECK_PORT and asks every chart's data endpoint for rows
#      (tools/check_charts.py);
#      with pipeline data, also compares every chart's numbers with an oracle
#      computed from the fact tables (tools/check_totals.py);
#   4. if Chromium and npm playwright-core are there, renders the dashboard and checks
#      every chart draws and sends its saved query (tools/check_render.cjs);
#      CHECK_REQUIRE_RENDER=1 makes their absence a failure (scripts/test.sh);
#   5. stops Superset and drops the database (CHECK_KEEP=1 keeps both).
#
#   deploy/superset/tools/check.sh
#
# Needs psql reaching PostgreSQL as $PGUSER at $PGHOST (default postgres@127.0.0.1,
# trust auth). Uses SUPERSET_VENV (default deploy/superset/.venv; provision.sh
# creates it if missing). Prints "N passed, N failed" last.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres} PGPORT=${PGPORT:-5432}
CHECK_DB=${CHECK_DB:-adjoin_superset_check}
CHECK_PORT=${CHECK_PORT:-8099}
WORK=$(mktemp -d /tmp/adjoin-superset-check.XXXXXX)
# A throw-away Superset: dev defaults (admin/admin), SQLite metadata in $WORK.
unset SUPERSET_SECRET_KEY SUPERSET_ADMIN_PASSWORD SUPERSET_ADMIN_USER SUPERSET_METADATA_DB_URI SUPERSET_CONFIG_PATH
export SUPERSET_HOME=$WORK/home SUPERSET_DEV=1 SUPERSET_PORT=$CHECK_PORT
export SUPERSET_VENV=${SUPERSET_VENV:-$HERE/.venv}
SERVER_PID=
passed=0 failed=0

step() { printf '\n== %s\n' "$*"; }
result() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; }
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${CHECK_KEEP:-}" != 1 ]]; then
        psql -q -d postgres -c "DROP DATABASE IF EXISTS $CHECK_DB" >/dev/null 2>&1 || true
        rm -rf "$WORK"
    else
        echo "kept: database $CHECK_DB, $WORK"
    fi
}
trap cleanup EXIT

step "scratch database $CHECK_DB"
psql -q -d postgres -c "DROP DATABASE IF EXISTS $CHECK_DB" -c "CREATE DATABASE $CHECK_DB"
URL="postgres://$PGUSER@$PGHOST:$PGPORT/$CHECK_DB"
if [[ -n "${ADJOIN_BIN:-}" ]]; then
    # Through the real pipeline: the demo (generator, ingest, join, sink on the
    # embedded mock cluster) writing into the scratch database.
    # A 20 s join window and 5 s allowed lateness instead of 15 and 1 minutes, so that
    # orphan clicks are settled as no_impression and displaced ones tagged late within
    # the run: the data-health charts then have something to show.
    step "filling $CHECK_DB through the pipeline: adjoin demo for ${CHECK_FILL_SECONDS:-75}s"
    env -u ADJOIN_CONFIG ADJOIN__DATABASE__URL="$URL" ADJOIN__JOIN__WINDOW=20s \
        ADJOIN__WATERMARK__ALLOWED_LATENESS=5s \
        ADJOIN__METRICS__LISTEN="127.0.0.1:${CHECK_DEMO_PORT:-9398}" RUST_LOG=warn \
        "$ADJOIN_BIN" demo --rate 300 --every 15s --duration "${CHECK_FILL_SECONDS:-75}s"
    FACTS=1
else
    psql -q -v ON_ERROR_STOP=1 -d "$CHECK_DB" -f "$REPO/services/sink/migrations/postgres/0001_schema.sql"
    psql -q -v ON_ERROR_STOP=1 -d "$CHECK_DB" -f "$HERE/tools/sample_data.sql"
    FACTS=
fi

step "provision.sh (first run)"
t0=$SECONDS
result "$HERE/provision.sh" "$URL"
echo "first provisioning: $((SECONDS - t0)) s"

step "provision.sh (second run: must converge)"
t0=$SECONDS
result "$HERE/provision.sh" "$URL"
echo "second provisioning: $((SECONDS - t0)) s"
counts=$("$SUPERSET_VENV/bin/python" -c "
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(*[c.execute(f'SELECT count(*) FROM {t}').fetchone()[0] for t in ('dbs', 'tables', 'slices', 'dashboards')])
" "$SUPERSET_HOME/superset.db")
if [[ "$counts" == "1 4 21 1" ]]; then
    echo "ok   metadata holds 1 database, 4 datasets, 21 charts, 1 dashboard"; passed=$((passed + 1))
else
    echo "FAIL metadata holds (databases datasets charts dashboards) $counts, expected 1 4 21 1"; failed=$((failed + 1))
fi

step "Superset on 127.0.0.1:$CHECK_PORT"
"$HERE/serve.sh" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 90); do
    curl -fs "http://127.0.0.1:$CHECK_PORT/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$WORK/serve.log"; exit 1; }
    sleep 1
done

step "chart data endpoints"
result "$SUPERSET_VENV/bin/python" "$HERE/tools/check_charts.py" "http://127.0.0.1:$CHECK_PORT"

if [[ -n "$FACTS" ]]; then
    step "every chart against the facts"
    result "$SUPERSET_VENV/bin/python" "$HERE/tools/check_totals.py" "http://127.0.0.1:$CHECK_PORT" "$URL"
fi

step "rendering"
NODE_MODULES=${PLAYWRIGHT_NODE_MODULES:-}
if [[ -z "$NODE_MODULES" ]]; then
    NODE_MODULES=$(cd "$HERE/tools" && node -e "console.log(require('path').dirname(require('path').dirname(require.resolve('playwright-core'))))" 2>/dev/null || true)
fi
if command -v node >/dev/null && [[ -x "${CHROMIUM:-/usr/bin/chromium}" && -n "$NODE_MODULES" ]]; then
    result env NODE_PATH="$NODE_MODULES" node "$HERE/tools/check_render.cjs" \
        "http://127.0.0.1:$CHECK_PORT" admin admin "${CHECK_SCREENSHOT:-}"
elif [[ "${CHECK_REQUIRE_RENDER:-}" == 1 ]]; then
    echo "FAIL rendering needs node, Chromium (apt-get install chromium) and npm playwright-core"
    echo "     (PLAYWRIGHT_NODE_MODULES=/path/to/node_modules); scripts/test-stack.sh install has them"
    failed=$((failed + 1))
else
    echo "skipped: needs node, Chromium (apt-get install chromium) and npm playwright-core"
    echo "         (PLAYWRIGHT_NODE_MODULES=/path/to/node_modules)"
fi

echo
echo "superset check: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
