#!/usr/bin/env bash
# The services adjoin's tests need, installed and started idempotently.
#
#   scripts/test-stack.sh install   OpenSSL headers, PostgreSQL running, Tansu and cargo-fuzz,
#                                   the dashboard check's tools (below) and the deploy
#                                   checks' (deploy/tools/install.sh)
#   scripts/test-stack.sh up        PostgreSQL running; fails if Tansu is missing
#   scripts/test-stack.sh tansu     run a Tansu broker in the foreground (memory storage)
#                                   on TANSU_PORT (default 19092), for trying things by hand
#
# PostgreSQL: DATABASE_URL if set, else the local server on 127.0.0.1:5432 (started if
# it is down, installed with apt only where it is missing). Tests create and drop a
# throwaway database each. Tansu is started per system test by the test itself, on a
# free port, and stopped at the end.
#
# The Superset dashboard check (deploy/superset/tools/check.sh) needs Apache Superset
# in a venv (SUPERSET_VENV, default ~/.cache/adjoin/superset-venv), Debian's Chromium
# and npm playwright-core (PLAYWRIGHT_NODE_MODULES, default
# ~/.cache/adjoin/playwright/node_modules): scripts/cache-paths.sh.
set -euo pipefail

TANSU_VERSION=0.6.0
TANSU_FEATURES=dynostore,postgres
# Tansu 0.6.0's memory storage answers a fetch from inside a record batch with the
# batches after it, silently skipping the rest of that batch; every consumer that
# resumes from a committed offset lands inside a batch. The tests run Tansu built
# with this fix (docs/testing.md).
TANSU_PATCH="$(cd "$(dirname "$0")" && pwd)/tansu/dynostore-fetch-inside-batch.patch"
CARGO_FUZZ_VERSION=0.13.1
PLAYWRIGHT_VERSION=1.65.1
REPO="$(cd "$(dirname "$0")/.." && pwd)"
. "$REPO/scripts/cache-paths.sh"

log() { printf '[test-stack] %s\n' "$*" >&2; }

cargo_bin() { echo "${CARGO_HOME:-$HOME/.cargo}/bin"; }

ensure_postgres() {
    if [ -n "${DATABASE_URL:-}" ]; then
        log "using DATABASE_URL for PostgreSQL"
        if command -v psql >/dev/null && ! psql "$DATABASE_URL" -Atqc 'select 1' >/dev/null; then
            log "cannot connect to DATABASE_URL; check the server and the URL"
            return 1
        fi
        return 0
    fi
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        log "PostgreSQL is running on 127.0.0.1:5432"
        return 0
    fi
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        log "PostgreSQL is not installed: installing it with apt"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        # Tests connect as postgres over TCP without a password, as on the dev machines.
        sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/' "/etc/postgresql/$version/main/pg_hba.conf"
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    log "starting PostgreSQL $version"
    # A fresh install may have started the cluster already: reload so an edited
    # pg_hba.conf takes effect either way.
    pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p 5432 && { log "PostgreSQL is up"; return 0; }
        sleep 1
    done
    log "PostgreSQL did not come up on 127.0.0.1:5432; see /var/log/postgresql/"
    return 1
}

# The same lookup as the tests (adjoin_shared::testing::Tansu): TANSU_BIN, else
# ~/.cargo/bin/tansu.
tansu_bin() { echo "${TANSU_BIN:-$(cargo_bin)/tansu}"; }

# Names the patch applied, so a Tansu built without it (or with an older one) is
# rebuilt. TANSU_BIN, when set, is taken as it is.
tansu_marker() { echo "$(tansu_bin).adjoin-$(sha256sum "$TANSU_PATCH" | cut -c1-16)"; }

tansu_installed() {
    local bin
    bin="$(tansu_bin)"
    [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$TANSU_VERSION" &&
        { [ -n "${TANSU_BIN:-}" ] || [ -f "$(tansu_marker)" ]; }
}

ensure_tansu() {
    if tansu_installed; then
        log "tansu $TANSU_VERSION is installed ($(tansu_bin))"
        return 0
    fi
    log "installing tansu $TANSU_VERSION (features $TANSU_FEATURES) with $(basename "$TANSU_PATCH"); this takes 10-25 minutes on 2 cores"
    local build
    build="$(mktemp -d)"
    # The published crates, as cargo install would fetch them, with the storage
    # crate patched; every other dependency stays as tansu's Cargo.lock pins it.
    for crate in tansu tansu-storage; do
        curl -sSfL "https://static.crates.io/crates/$crate/$TANSU_VERSION/download" |
            tar -xz -C "$build"
    done
    patch -d "$build/tansu-storage-$TANSU_VERSION" -p1 <"$TANSU_PATCH"
    printf '\n[patch.crates-io]\ntansu-storage = { path = "../tansu-storage-%s" }\n' \
        "$TANSU_VERSION" >>"$build/tansu-$TANSU_VERSION/Cargo.toml"
    (cd "$build/tansu-$TANSU_VERSION" && cargo update --quiet -p tansu-storage)
    # Its own target directory, so it neither invalidates nor waits on the project's.
    CARGO_TARGET_DIR="${HOME}/.cache/adjoin/tansu-target" \
        cargo install --locked --force --path "$build/tansu-$TANSU_VERSION" --features "$TANSU_FEATURES"
    rm -rf "$build"
    rm -f "$(tansu_bin)".adjoin-*
    touch "$(tansu_marker)"
    tansu_installed || { log "tansu was installed but does not report version $TANSU_VERSION"; return 1; }
}

# rdkafka's `ssl` and sqlx's native TLS link the system OpenSSL; the Kafka TLS
# test (adjoin_shared::testing::TlsFront) makes certificates with the openssl
# command and terminates TLS in front of Tansu with socat.
ensure_build_libraries() {
    if pkg-config --exists openssl 2>/dev/null && command -v openssl >/dev/null &&
        command -v socat >/dev/null; then
        log "OpenSSL headers, openssl and socat are installed"
        return 0
    fi
    log "installing libssl-dev, pkg-config, openssl and socat with apt (TLS to Kafka and PostgreSQL)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libssl-dev pkg-config openssl socat >/dev/null
}

ensure_cargo_fuzz() {
    if [ -x "$(cargo_bin)/cargo-fuzz" ]; then
        log "cargo-fuzz is installed"
        return 0
    fi
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    CARGO_TARGET_DIR="${HOME}/.cache/adjoin/cargo-fuzz-target" \
        cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
}

ensure_dashboard_tools() {
    # provision.sh skips the install when the venv already has Superset.
    "$REPO/deploy/superset/provision.sh" --install
    if [ -x /usr/bin/chromium ]; then
        log "chromium is installed"
    else
        log "installing chromium with apt (headless rendering of the dashboard)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq chromium >/dev/null
    fi
    local installed
    installed=$(node -p "require('$PLAYWRIGHT_NODE_MODULES/playwright-core/package.json').version" 2>/dev/null || true)
    if [ "$installed" = "$PLAYWRIGHT_VERSION" ]; then
        log "playwright-core $PLAYWRIGHT_VERSION is installed ($PLAYWRIGHT_NODE_MODULES)"
    else
        log "installing playwright-core $PLAYWRIGHT_VERSION with npm into $(dirname "$PLAYWRIGHT_NODE_MODULES")"
        mkdir -p "$(dirname "$PLAYWRIGHT_NODE_MODULES")"
        npm install --silent --no-audit --no-fund --prefix "$(dirname "$PLAYWRIGHT_NODE_MODULES")" \
            "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null
    fi
}

dashboard_tools_installed() {
    [ -x "$SUPERSET_VENV/bin/superset" ] && [ -x /usr/bin/chromium ] &&
        [ -f "$PLAYWRIGHT_NODE_MODULES/playwright-core/package.json" ]
}

run_tansu() {
    tansu_installed || { log "tansu is missing: run scripts/test-stack.sh install"; return 1; }
    local url="tcp://127.0.0.1:${TANSU_PORT:-19092}"
    log "tansu on $url with memory storage; Ctrl-C stops it"
    exec "$(tansu_bin)" broker --listener-url "$url" --advertised-listener-url "$url" \
        --storage-engine memory://tansu/
}

case "${1:-up}" in
    install)
        ensure_build_libraries
        ensure_postgres
        ensure_tansu
        ensure_cargo_fuzz
        ensure_dashboard_tools
        "$REPO/deploy/tools/install.sh" >/dev/null
        ;;
    up)
        ensure_postgres
        tansu_installed || { log "tansu is missing: run scripts/test-stack.sh install"; exit 1; }
        dashboard_tools_installed ||
            { log "the dashboard check's tools are missing: run scripts/test-stack.sh install"; exit 1; }
        ;;
    tansu) run_tansu ;;
    *)
        echo "usage: $0 [install|up|tansu]" >&2
        exit 2
        ;;
esac
