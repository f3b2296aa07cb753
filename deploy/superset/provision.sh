#!/usr/bin/env bash
# Provisions Apache Superset 6.1.0 with the adjoin dashboard. Idempotent: run it again
# after changing the bundle or the database URL and it converges.
#
#   deploy/superset/provision.sh DATABASE_URL
#   deploy/superset/provision.sh --install    only the venv (step 1), e.g. for CI caches
#
# DATABASE_URL is the sink's PostgreSQL database, e.g.
#   postgres://adjoin:adjoin@127.0.0.1:5432/adjoin
# (postgres://, postgresql:// or postgresql+psycopg2://; stored in Superset as
# postgresql+psycopg2://, its password encrypted with SUPERSET_SECRET_KEY).
#
# Environment (README.md has the details):
#   SUPERSET_SECRET_KEY       required, unless SUPERSET_DEV=1 (local: insecure defaults)
#   SUPERSET_ADMIN_PASSWORD   required, unless SUPERSET_DEV=1 (then admin/admin)
#   SUPERSET_ADMIN_USER       default admin
#   SUPERSET_VENV             default deploy/superset/.venv
#   SUPERSET_HOME             default deploy/superset/.home (SQLite metadata DB, logs)
#   SUPERSET_METADATA_DB_URI  Superset's own database; default SQLite in SUPERSET_HOME
#   SUPERSET_PYTHON           interpreter for a new venv; default python3.11, python3
#   SUPERSET_SKIP_DB_CHECK=1  do not require DATABASE_URL to be reachable now
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUPERSET_VERSION=6.1.0

started=$SECONDS
log() { printf '[superset %3ds] %s\n' "$((SECONDS - started))" "$*"; }
die() { printf 'provision.sh: error: %s\n' "$*" >&2; exit 1; }
flag() { case "${!1:-}" in 1|true|TRUE|yes|on) return 0 ;; *) return 1 ;; esac; }

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
DATABASE_URL=$1
INSTALL_ONLY= SQLALCHEMY_URI=
[[ "$DATABASE_URL" == --install ]] && INSTALL_ONLY=1

# --- settings ------------------------------------------------------------------------

[[ -n "$INSTALL_ONLY" ]] || case "$DATABASE_URL" in
    postgres://*) SQLALCHEMY_URI="postgresql+psycopg2://${DATABASE_URL#postgres://}" ;;
    postgresql://*) SQLALCHEMY_URI="postgresql+psycopg2://${DATABASE_URL#postgresql://}" ;;
    postgresql+psycopg2://*) SQLALCHEMY_URI=$DATABASE_URL ;;
    *) die "DATABASE_URL must be a PostgreSQL URL (postgres://user:password@host:port/db), got '${DATABASE_URL%%://*}://...'" ;;
esac
# libpq's form of the same URL, for the reachability check.
LIBPQ_URL="postgresql://${SQLALCHEMY_URI#postgresql+psycopg2://}"

if [[ -z "$INSTALL_ONLY" && -z "${SUPERSET_SECRET_KEY:-}" ]] && ! flag SUPERSET_DEV; then
    die "SUPERSET_SECRET_KEY is not set.
  Production: export SUPERSET_SECRET_KEY=\"\$(openssl rand -base64 42)\" and keep it
              (Superset encrypts the stored database password with it).
  Local only: export SUPERSET_DEV=1 for an insecure built-in key and admin/admin."
fi
ADMIN_USER=${SUPERSET_ADMIN_USER:-admin}
if [[ -n "${SUPERSET_ADMIN_PASSWORD:-}" ]]; then
    ADMIN_PASSWORD=$SUPERSET_ADMIN_PASSWORD
elif flag SUPERSET_DEV || [[ -n "$INSTALL_ONLY" ]]; then
    ADMIN_PASSWORD=admin
else
    die "SUPERSET_ADMIN_PASSWORD is not set (only SUPERSET_DEV=1 defaults it to 'admin')."
fi

VENV=${SUPERSET_VENV:-$HERE/.venv}
export SUPERSET_HOME=${SUPERSET_HOME:-$HERE/.home}
export SUPERSET_CONFIG_PATH=${SUPERSET_CONFIG_PATH:-$HERE/superset_config.py}
export FLASK_APP=superset
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
mkdir -p "$SUPERSET_HOME"
LOG=$SUPERSET_HOME/provision.log
: >"$LOG"

# Runs a step with its output in $LOG; on failure shows the end of it.
run() {
    local what=$1; shift
    local t0=$SECONDS
    log "$what ..."
    if ! "$@" >>"$LOG" 2>&1; then
        printf 'provision.sh: error: %s failed; last lines of %s:\n' "$what" "$LOG" >&2
        tail -n 25 "$LOG" >&2
        exit 1
    fi
    log "$what: done ($((SECONDS - t0)) s)"
}

log "metadata: ${SUPERSET_METADATA_DB_URI:-sqlite in $SUPERSET_HOME}; log: $LOG"

# --- 1. virtualenv ---------------------------------------------------------------------

installed() {
    [[ -x "$VENV/bin/superset" ]] && "$VENV/bin/python" - "$SUPERSET_VERSION" <<'EOF' >/dev/null 2>&1
import sys, importlib.metadata as md
assert md.version("apache-superset") == sys.argv[1]
import psycopg2, rich, cachetools  # noqa: F401  (see constraints.txt)
EOF
}

if installed; then
    log "venv $VENV: apache-superset $SUPERSET_VERSION already installed"
else
    if [[ ! -x "$VENV/bin/python" ]]; then
        PY=${SUPERSET_PYTHON:-}
        if [[ -z "$PY" ]]; then
            for candidate in python3.11 python3; do
                command -v "$candidate" >/dev/null && { PY=$candidate; break; }
            done
        fi
        [[ -n "$PY" ]] || die "no python3 found (set SUPERSET_PYTHON)"
        "$PY" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))' \
            || die "$PY is Python $("$PY" -c 'import sys; print(sys.version.split()[0])'); Superset $SUPERSET_VERSION needs 3.10-3.12 (constraints.txt was frozen on 3.11): set SUPERSET_PYTHON"
        run "create venv $VENV ($("$PY" --version 2>&1))" "$PY" -m venv "$VENV"
    fi
    run "pip install apache-superset==$SUPERSET_VERSION (a few minutes, ~830 MB)" \
        "$VENV/bin/pip" install --disable-pip-version-check -c "$HERE/constraints.txt" \
        "apache-superset==$SUPERSET_VERSION" psycopg2-binary rich cachetools
    installed || die "apache-superset $SUPERSET_VERSION is still not importable from $VENV (see $LOG)"
fi
SUPERSET=$VENV/bin/superset
PYTHON=$VENV/bin/python
[[ -z "$INSTALL_ONLY" ]] || exit 0

# Fails early, with the config's own message, on a missing secret key.
"$PYTHON" -c "import runpy; runpy.run_path('$SUPERSET_CONFIG_PATH')" \
    || die "$SUPERSET_CONFIG_PATH does not load"

# --- 2. the adjoin database ------------------------------------------------------------

if flag SUPERSET_SKIP_DB_CHECK; then
    log "adjoin database: not checked (SUPERSET_SKIP_DB_CHECK)"
else
    if [[ "$LIBPQ_URL" == *@* ]]; then SHOWN_URL="postgresql://...@${LIBPQ_URL##*@}"; else SHOWN_URL=$LIBPQ_URL; fi
    log "adjoin database: checking $SHOWN_URL is reachable"
    if ! missing=$("$PYTHON" - "$LIBPQ_URL" <<'EOF' 2>&1
import sys
import psycopg2
try:
    conn = psycopg2.connect(sys.argv[1], connect_timeout=10)
except psycopg2.Error as ex:
    print(str(ex).strip())
    sys.exit(1)
with conn, conn.cursor() as cur:
    views = ["kpis_minute", "ad_kpis_minute", "dimension_kpis_minute", "data_health_minute"]
    cur.execute("SELECT v FROM unnest(%s::text[]) AS v WHERE to_regclass(v) IS NULL", (views,))
    print(" ".join(row[0] for row in cur.fetchall()))
EOF
    ); then
        die "cannot connect to the adjoin database: $missing
  (check DATABASE_URL; SUPERSET_SKIP_DB_CHECK=1 provisions anyway)"
    fi
    if [[ -n "$missing" ]]; then
        log "WARNING: the database has no $missing yet: charts will show errors until the sink has run its migrations (services/sink/migrations/postgres)"
    else
        log "adjoin database: reachable, rollup views present"
    fi
fi

# --- 3. Superset's metadata database, admin, roles -------------------------------------

run "superset db upgrade" "$SUPERSET" db upgrade

log "admin user '$ADMIN_USER' ..."
out=$("$SUPERSET" fab create-admin --username "$ADMIN_USER" --firstname Admin \
    --lastname adjoin --email "$ADMIN_USER@adjoin.invalid" --password "$ADMIN_PASSWORD" 2>&1) \
    || { printf '%s\n' "$out" >>"$LOG"; die "superset fab create-admin failed: $(tail -n 5 <<<"$out")"; }
printf '%s\n' "$out" >>"$LOG"
if grep -q "Admin User $ADMIN_USER created" <<<"$out"; then
    log "admin user '$ADMIN_USER': created"
elif grep -q "already exists" <<<"$out"; then
    if [[ -n "${SUPERSET_ADMIN_PASSWORD:-}" ]]; then
        run "admin user '$ADMIN_USER' exists: setting its password from SUPERSET_ADMIN_PASSWORD" \
            "$SUPERSET" fab reset-password --username "$ADMIN_USER" --password "$ADMIN_PASSWORD"
    else
        log "admin user '$ADMIN_USER': exists, password left as it is"
    fi
else
    die "superset fab create-admin did not create '$ADMIN_USER': $(tail -n 5 <<<"$out")"
fi

run "superset init (roles and permissions)" "$SUPERSET" init

# --- 4. the dashboard bundle -----------------------------------------------------------

BUILD=$SUPERSET_HOME/bundle
ZIP=$SUPERSET_HOME/adjoin-dashboard.zip
log "rendering bundle/ with the database URL into $ZIP"
"$PYTHON" - "$HERE/bundle" "$BUILD" "$ZIP" "$SQLALCHEMY_URI" <<'EOF' || die "could not render the bundle"
import json, pathlib, shutil, sys, zipfile
import yaml

src, build, zip_path, uri = map(str, sys.argv[1:])
src, build = pathlib.Path(src), pathlib.Path(build)
placeholder = "__ADJOIN_SQLALCHEMY_URI__"
shutil.rmtree(build, ignore_errors=True)
# Superset strips the first directory of every path in the ZIP.
root = build / "adjoin_dashboard"
files = sorted(p for p in src.rglob("*.yaml"))
if not files:
    sys.exit(f"no YAML files in {src}")
seen_placeholder = False
for path in files:
    text = path.read_text()
    if placeholder in text:
        seen_placeholder = True
        text = text.replace(placeholder, json.dumps(uri))  # JSON string = YAML scalar
    data = yaml.safe_load(text)  # every file must stay valid YAML
    if "sqlalchemy_uri" in data and data["sqlalchemy_uri"] != uri:
        sys.exit(f"{path}: sqlalchemy_uri did not render")
    out = root / path.relative_to(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
if not seen_placeholder:
    sys.exit(f"no {placeholder} in {src}/databases")
with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
    for path in sorted(root.rglob("*.yaml")):
        z.write(path, path.relative_to(build).as_posix())
EOF
chmod 600 "$ZIP"
rm -rf "$BUILD"  # holds the database password in clear

run "superset import-dashboards" "$SUPERSET" import-dashboards -p "$ZIP" -u "$ADMIN_USER"
# import-dashboards keeps databases, datasets and charts that exist already.
log "updating the database URL, datasets and charts in place ..."
summary=$("$PYTHON" "$HERE/sync_bundle.py" "$ZIP" "$ADMIN_USER" 2>>"$LOG" | grep '^dashboard ') || {
    tail -n 25 "$LOG" >&2
    die "sync_bundle.py failed (see above and $LOG)"
}
rm -f "$ZIP"
log "imported: $summary"
log "done in $((SECONDS - started)) s. Start Superset with: $HERE/serve.sh"
log "then open http://localhost:${SUPERSET_PORT:-8088}/superset/dashboard/adjoin/ (user '$ADMIN_USER')"
